"""Retrying a transaction that lost a lock race, instead of crashing the process.

SQLite allows one writer at a time. Its busy timeout makes most writers wait, but a deferred transaction
that read before another writer committed cannot wait (its snapshot is stale) and fails at once with
"database is locked". PostgreSQL reports serialization failures and deadlocks the same way. In each case
running the whole transaction again is correct.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from db.errors import DatabaseError

logger = logging.getLogger(__name__)

T = TypeVar("T")

_SQLITE_LOCK_MESSAGES = ("database is locked", "database table is locked", "database is busy")
# serialization_failure, deadlock_detected, lock_not_available
_POSTGRES_RETRY_STATES = frozenset({"40001", "40P01", "55P03"})


def is_lock_conflict(error: BaseException) -> bool:
    """Whether `error` means "another transaction holds a lock; try again", on SQLite or PostgreSQL."""
    if not isinstance(error, DBAPIError):
        return False
    if isinstance(error, OperationalError) and any(
        m in str(error.orig).lower() for m in _SQLITE_LOCK_MESSAGES
    ):
        return True
    return getattr(error.orig, "sqlstate", None) in _POSTGRES_RETRY_STATES


def retry_on_lock(
    action: Callable[[], T],
    *,
    attempts: int = 8,
    first_delay: float = 0.05,
    max_delay: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `action` (one whole transaction) again while it fails on a lock conflict.

    Args:
        action: Opens, runs and commits one transaction; it must be safe to run again after a rollback.
        attempts: How many times to try in all.
        first_delay: Seconds to wait after the first failure; doubled after each further one.
        max_delay: The longest single wait.
        sleep: Waits; tests pass a recorder.

    Returns:
        What `action` returned.

    Raises:
        DatabaseError: Still locked after the last attempt; the message says what to look for.
    """
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except DBAPIError as error:
            if not is_lock_conflict(error):
                raise
            if attempt == attempts:
                raise DatabaseError(
                    f"the database stayed locked by another writer through {attempts} attempts; look for a "
                    "long-running transaction or an open database shell holding the lock, then try again"
                ) from error
            logger.warning("database locked (attempt %d of %d); retrying in %.2fs", attempt, attempts, delay)
            sleep(delay)
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable: the loop returns or raises")
