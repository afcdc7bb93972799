"""Message events that arrive while the database is down: kept in memory, in order, written when it returns.

Collection must not lose what people write because the database restarted. Each new, edited or deleted
message is written on the collection thread; when the database does not answer, the event waits here
instead, and every later event waits behind it so that an edit never overtakes its message. A drain on the
same thread writes them, oldest first, once the database answers again.

The buffer is bounded (`capacity` events, 10,000 by default, about a few MB of chat text): beyond that the
newest event is dropped and logged by platform, channel and message id (never its text).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from db.retry import DatabaseUnavailable, retry_on_lock

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 10_000
# How long one event waits for the database before it is buffered, and how often a drain tries again.
WAIT_BEFORE_BUFFERING_S = 2.0
DRAIN_RETRY_S = (0.5, 5.0)


@dataclass(frozen=True)
class PendingWrite:
    """One message event that waits for the database: what it is (for logs) and the transaction to run."""

    description: str
    write: Callable[[], bool]


class PendingWrites:
    """The bounded, ordered buffer of message events written when the database returns.

    `apply` and `drain` run on the single collection thread; `len()` may be read from anywhere.

    Args:
        capacity: Most events kept waiting; later ones are dropped and logged.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"Received capacity {capacity}, expected at least 1 pending message event")
        self.capacity = capacity
        self.dropped = 0
        self.written_late = 0
        self._events: deque[PendingWrite] = deque()
        self._lock = threading.Lock()
        self.drain_task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def apply(self, event: PendingWrite) -> bool | None:
        """Write `event` now, or buffer it (None) when the database is down or others are waiting.

        Returns:
            What the write returned, or None when it was buffered or dropped.
        """
        if len(self) == 0:
            try:
                return retry_on_lock(event.write, outage_seconds=WAIT_BEFORE_BUFFERING_S)
            except DatabaseUnavailable:
                log.warning("database down: keeping message events in memory until it returns")
        self._add(event)
        return None

    def _add(self, event: PendingWrite) -> None:
        with self._lock:
            if len(self._events) < self.capacity:
                self._events.append(event)
                return
            self.dropped += 1
            dropped = self.dropped
        log.error(
            "database down and %d message events already waiting: dropped %s (%d dropped so far)",
            self.capacity,
            event.description,
            dropped,
        )

    def drain(self) -> bool:
        """Write waiting events, oldest first, until none is left or the database stops answering.

        Returns:
            True when nothing is left waiting.
        """
        while True:
            with self._lock:
                if not self._events:
                    return True
                event = self._events[0]
            try:
                retry_on_lock(event.write, outage_seconds=0.0)
            except DatabaseUnavailable:
                return False
            except Exception:  # a bad event must not block those behind it
                log.exception("could not write %s; skipped", event.description)
            with self._lock:
                self._events.popleft()
                self.written_late += 1
                left = len(self._events)
            if left == 0:
                log.info("database back: %d waiting message events written", self.written_late)
