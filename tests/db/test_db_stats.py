"""`/stats`'s counts: messages per UTC day, counted by the database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from db.messages import delete_message, messages_per_day, record_message
from db.models import Channel


def test_messages_are_counted_per_utc_day(session: Session, make_channel: Callable[..., Channel]) -> None:
    general, other = make_channel("general"), make_channel("random")
    late = datetime(2025, 3, 1, 23, 30, tzinfo=UTC)
    # 01:30 on March 2nd in UTC, though still March 1st where it was written (UTC-5).
    after_midnight = datetime(2025, 3, 1, 20, 30, tzinfo=timezone(timedelta(hours=-5)))
    for number, when in enumerate([late, late, after_midnight, late + timedelta(days=3)]):
        record_message(session, general, f"m{number}", "ann", f"hello {number}", when)
    record_message(session, general, "bot", "chatsmith", "a reply", late, author_is_bot=True)
    record_message(session, general, "gone", "ann", "deleted later", late)
    record_message(session, other, "elsewhere", "ann", "another channel", late)
    session.commit()
    delete_message(session, general, "gone")
    session.commit()
    if session.get_bind().dialect.name == "postgresql":
        # A server or session in another time zone still counts UTC days.
        session.execute(text("SET TIME ZONE 'America/New_York'"))

    assert messages_per_day(session, general.id) == [
        (date(2025, 3, 1), 2),
        (date(2025, 3, 2), 1),
        (date(2025, 3, 4), 1),
    ]
    assert messages_per_day(session, other.id) == [(date(2025, 3, 1), 1)]
    assert messages_per_day(session, 10_000) == []


def test_the_count_is_one_row_per_day_not_one_per_message(
    session: Session, make_channel: Callable[..., Channel]
) -> None:
    general = make_channel("general")
    start = datetime(2025, 1, 1, 12, tzinfo=UTC)
    for number in range(300):
        record_message(
            session, general, f"m{number}", "ann", f"line {number}", start + timedelta(hours=number)
        )
    session.commit()
    rows: list[int] = []

    def count_rows(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "GROUP BY" in statement.upper():
            rows.append(cursor.rowcount)

    engine = session.get_bind()
    event.listen(engine, "after_cursor_execute", count_rows)
    try:
        per_day = messages_per_day(session, general.id)
    finally:
        event.remove(engine, "after_cursor_execute", count_rows)
    assert len(rows) == 1, "one grouped query"
    assert len(per_day) == 13 and sum(count for _, count in per_day) == 300
