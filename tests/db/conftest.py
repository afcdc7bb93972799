"""Fixtures for the db tests: a fresh database per test, on SQLite and (when configured) PostgreSQL.

PostgreSQL tests need `CHATSMITH_TEST_POSTGRES_URL` (a role allowed to create databases); `.ci/run` starts
a server and sets it. Each test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from db.engine import create_database_engine, session_factory
from db.models import Channel
from db.scopes import Scope, get_or_create_channel, get_or_create_workspace
from tests.schema_template import copy_migrated_schema


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to the newest schema."""
    copy_migrated_schema(database_url)
    engine = create_database_engine(database_url, busy_timeout_ms=2000)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database, for tests about SQLite's own locking."""
    url = f"sqlite:///{tmp_path / 'sqlite' / 'chatsmith.db'}"
    copy_migrated_schema(url)
    engine = create_database_engine(url, busy_timeout_ms=2000)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session for arranging and checking; tests commit it themselves where other connections look."""
    with session_factory(engine)() as session:
        yield session


@pytest.fixture
def make_channel(session: Session) -> Callable[..., Channel]:
    """Create (and commit) a channel with collection on, in workspace `workspace` of `platform`."""

    def make(
        external_id: str = "general",
        workspace: str = "W1",
        *,
        platform: str = "console",
        collecting: bool = True,
    ) -> Channel:
        ws = get_or_create_workspace(session, platform, workspace, name=f"workspace {workspace}")
        channel = get_or_create_channel(session, ws, external_id, name=external_id)
        channel.collecting = collecting
        session.commit()
        return channel

    return make


@pytest.fixture
def make_scopes(session: Session) -> Callable[[int], list[Scope]]:
    """Create `n` workspaces (committed) and return their workspace scopes."""

    def make(n: int) -> list[Scope]:
        workspaces = [get_or_create_workspace(session, "console", f"scope-{i}") for i in range(n)]
        session.commit()
        return [Scope.of(ws) for ws in workspaces]

    return make
