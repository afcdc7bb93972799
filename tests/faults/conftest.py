"""Fixtures of the fault suite: a PostgreSQL server each test may stop and start, and databases on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.postgres_server import RestartablePostgres, postgres_bindir


@pytest.fixture(scope="session")
def restartable_postgres() -> Iterator[RestartablePostgres]:
    """A PostgreSQL server of the fault suite's own (see `tests.faults.postgres_server`)."""
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine; .ci/run installs them")
    server = RestartablePostgres(bindir)
    yield server
    server.close()
