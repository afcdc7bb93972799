"""The bot while its database goes away and comes back: nothing people write is lost, the bot never dies.

On PostgreSQL the server of the test's own is stopped at once (every connection cut) and started again;
on SQLite another process holds the write lock for longer than the bot waits. Either way the bot keeps
what arrives meanwhile in memory and writes it, in order, when the database answers again.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core import Services
from bot.core.collection import pending_writes
from bot.core.services import BotConfig
from db.engine import create_database_engine
from db.model_store import LocalModelStore
from db.models import Message
from db.schema import upgrade
from tests.bot.conftest import Chat
from tests.bot.conftest import base_bundle as base_bundle  # noqa: F401  (the session's tiny base model)
from tests.bot.helpers import answers
from tests.faults.postgres_server import RestartablePostgres

Outage = tuple[Callable[[], None], Callable[[], None]]


@pytest.fixture(params=["sqlite", "postgresql"])
def outage_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, int, Outage]]:
    """(database URL, SQLite busy timeout, (begin outage, end outage)) on each database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'data' / 'chatsmith.db'}"
        holder: list[sqlite3.Connection] = []

        def lock() -> None:
            blocker = sqlite3.connect(str(tmp_path / "data" / "chatsmith.db"), isolation_level=None)
            blocker.execute("BEGIN EXCLUSIVE")
            holder.append(blocker)

        def unlock() -> None:
            blocker = holder.pop()
            blocker.rollback()
            blocker.close()

        yield url, 20, (lock, unlock)
        return
    server: RestartablePostgres = request.getfixturevalue("restartable_postgres")
    yield server.new_database(), 5000, (server.stop, server.start)


def _stored_texts(services: Services) -> list[str]:
    with services.sessions() as session:
        return list(session.scalars(select(Message.text).order_by(Message.id)))


@pytest.mark.slow
def test_messages_said_while_the_database_is_down_are_kept_and_written_in_order_when_it_returns(
    outage_database: tuple[str, int, Outage], tmp_path: Path, base_bundle: Path
) -> None:
    """What must hold: every line said before, during and after the outage is stored, in order, once;
    the console answers every line and never exits; /generate answers with the base model meanwhile."""
    url, busy_timeout_ms, (begin_outage, end_outage) = outage_database
    engine = create_database_engine(url, busy_timeout_ms=busy_timeout_ms)
    upgrade(engine)
    services = Services(engine, BotConfig(base_model_path=base_bundle), store=LocalModelStore(tmp_path / "m"))
    chat = Chat(services, tmp_path / "files")
    try:
        admin, ann = chat.user("root", admin=True), chat.user("ann")
        assert "Collection is on" in admin.say("/collect on")
        lines = [f"line {index} of the conversation" for index in range(30)]
        for line in lines[:10]:
            ann.say(line)

        begin_outage()
        try:
            started = time.monotonic()
            for line in lines[10:20]:
                ann.say(line)  # never raises: the console carries on
            # Only the first line waits for the database; the rest go straight to the buffer.
            assert time.monotonic() - started < 30
            assert len(pending_writes(services)) == 10
            # The base model needs no database: /generate still answers.
            answer = ann.say("/generate to be")
            assert answers(answer, "to be") and ann.last_reply.model == "base model", answer
        finally:
            end_outage()
        for line in lines[20:]:
            ann.say(line)

        async def drained() -> None:
            deadline = time.monotonic() + 30
            while len(pending_writes(services)) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)

        chat.runner.run(drained())
        assert _stored_texts(services) == lines
        assert pending_writes(services).dropped == 0
    finally:
        chat.close()
        services.close()
