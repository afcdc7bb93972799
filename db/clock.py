"""The database server's clock: one time for every process that shares the queue.

Trainers on several hosts judge each other's heartbeats. Stamped with each host's own clock, a host whose
clock runs ahead would think a healthy job silent and requeue it; stamped and judged with the database
server's clock, skew between hosts does not matter.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session

# SQLite's 'now' is UTC, with milliseconds.
_SQLITE_NOW = text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")


def database_now(bind: Connection | Session) -> datetime:
    """The database server's current time as an aware UTC datetime (PostgreSQL: the transaction's start).

    Args:
        bind: A connection or session in the transaction that will use the time.
    """
    dialect = bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name
    if dialect == "sqlite":
        value = bind.execute(_SQLITE_NOW).scalar_one()
        return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)
    value = bind.execute(select(func.now())).scalar_one()
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    # A server without time zones answers in its own local time; PostgreSQL's timestamptz is aware.
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
