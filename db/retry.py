"""Retrying a transaction that lost a lock race or its connection, instead of crashing the process.

SQLite allows one writer at a time. Its busy timeout makes most writers wait, but a deferred transaction
that read before another writer committed cannot wait (its snapshot is stale) and fails at once with
"database is locked". PostgreSQL reports serialization failures and deadlocks the same way. In each case
running the whole transaction again is correct.

A database server that restarts, or a network that drops, is an expected event too: the engine checks
each pooled connection before use (`pool_pre_ping`), and a transaction that still fails because the
connection broke, or because the server is not answering yet, is run again after a growing pause. How long
to keep trying is the caller's choice: a bot answering someone waits seconds, a trainer holding a trained
model waits until the database answers or it is stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from db.errors import DatabaseError
from errortext import error_line

logger = logging.getLogger(__name__)

T = TypeVar("T")

_SQLITE_LOCK_MESSAGES = ("database is locked", "database table is locked", "database is busy")
# serialization_failure, deadlock_detected, lock_not_available
_POSTGRES_RETRY_STATES = frozenset({"40001", "40P01", "55P03"})
# admin_shutdown, crash_shutdown, cannot_connect_now (a server going down or starting up)
_POSTGRES_DOWN_STATES = frozenset({"57P01", "57P02", "57P03"})
_SQLITE_UNAVAILABLE_MESSAGES = ("unable to open database file", "disk i/o error")
# How long a bot waits for a database that does not answer, by default, before it gives up on one call.
DEFAULT_OUTAGE_SECONDS = 10.0


class DatabaseUnavailable(DatabaseError):
    """The database did not answer (server down or restarting, network gone) for as long as we waited."""


class DatabaseBusy(DatabaseUnavailable):
    """Another writer held the lock through every attempt: for the caller, the database did not answer."""


def is_lock_conflict(error: BaseException) -> bool:
    """Whether `error` means "another transaction holds a lock; try again", on SQLite or PostgreSQL."""
    if not isinstance(error, DBAPIError):
        return False
    if isinstance(error, OperationalError) and any(
        m in str(error.orig).lower() for m in _SQLITE_LOCK_MESSAGES
    ):
        return True
    return getattr(error.orig, "sqlstate", None) in _POSTGRES_RETRY_STATES


def is_disconnect(error: BaseException) -> bool:
    """Whether `error` means the database cannot be reached now: a dropped connection, a server that is
    down, restarting or refusing connections. Running the transaction again later is correct."""
    if not isinstance(error, DBAPIError) or is_lock_conflict(error):
        return False
    if error.connection_invalidated:
        return True
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate is not None:
        # Class 08 is "connection exception".
        return str(sqlstate).startswith("08") or sqlstate in _POSTGRES_DOWN_STATES
    if not isinstance(error, OperationalError):
        return False
    if type(error.orig).__module__.startswith("psycopg"):
        # psycopg reports a refused or lost connection without a SQLSTATE.
        return True
    return any(m in str(error.orig).lower() for m in _SQLITE_UNAVAILABLE_MESSAGES)


def retry_on_lock(
    action: Callable[[], T],
    *,
    attempts: int = 8,
    first_delay: float = 0.05,
    max_delay: float = 2.0,
    outage_seconds: float | None = DEFAULT_OUTAGE_SECONDS,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run `action` (one whole transaction) again while it fails on a lock conflict or a lost connection.

    Args:
        action: Opens, runs and commits one transaction; it must be safe to run again after a rollback.
        attempts: How many times to try in all while the database is locked.
        first_delay: Seconds to wait after the first failure; doubled after each further one.
        max_delay: The longest single wait.
        outage_seconds: How long to keep trying while the database cannot be reached; None: until it
            answers or `stop` is set.
        stop: When set, give up on an unreachable database at the next failure.
        sleep: Waits; tests pass a recorder.
        clock: Monotonic seconds; tests pass a fake.

    Returns:
        What `action` returned.

    Raises:
        DatabaseError: Still locked after the last attempt; the message says what to look for.
        DatabaseUnavailable: The database did not answer for `outage_seconds`, or `stop` was set.
    """
    delay = first_delay
    locked = 0
    outage_started: float | None = None
    while True:
        try:
            return action()
        except DBAPIError as error:
            if is_lock_conflict(error):
                locked += 1
                if locked >= attempts:
                    raise DatabaseBusy(
                        f"the database stayed locked by another writer through {attempts} attempts; look for "
                        "a long-running transaction or an open database shell holding the lock, then try again"
                    ) from error
                logger.warning(
                    "database locked (attempt %d of %d); retrying in %.2fs", locked, attempts, delay
                )
            elif is_disconnect(error):
                now = clock()
                if outage_started is None:
                    outage_started = now
                    # Debug only: the caller says once per outage what it does meanwhile.
                    logger.debug("database not answering (%s); retrying", error_line(error.orig))
                gave_up = outage_seconds is not None and now - outage_started + delay > outage_seconds
                if gave_up or (stop is not None and stop.is_set()):
                    raise DatabaseUnavailable(
                        "the database is not answering (server down or restarting?); chatsmith keeps "
                        "retrying, check the database server"
                    ) from error
            else:
                raise
        sleep(delay)
        delay = min(delay * 2, max_delay)
