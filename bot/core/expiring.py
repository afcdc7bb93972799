"""Values a bot reads from the database for every request, kept a short while.

A workspace's filter settings are read by every `/generate`, and change only when an admin runs `filter`
(in the process that answers them, which puts the new value in at once). Reading them again every time
cost a database round trip and an ORM query per reply; kept for `ttl` seconds, a change made elsewhere
(another process of the same platform) shows within that time.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    """Values by key, each kept `ttl` seconds after it was read, at most `max_entries` of them (the least
    recently read go first). Thread-safe.

    Args:
        ttl: Seconds a value is served before it is read again.
        max_entries: Most values kept.
        clock: Seconds, monotonic (tests pass their own).
    """

    def __init__(
        self, ttl: float, max_entries: int = 4096, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if ttl < 0:
            raise ValueError(f"Received ttl {ttl}, expected 0 or more")
        self.ttl = ttl
        self.max_entries = max_entries
        self.reads = 0  # values read (not served from memory), for tests and status
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def fresh(self, key: K) -> V | None:
        """The value kept for `key` if it has not expired, else None (nothing is read)."""
        entry = self._unexpired(key, self._clock())
        return entry[1] if entry is not None else None

    def get(self, key: K, read: Callable[[], V]) -> V:
        """The value of `key`: kept, or `read()` when it is not kept or has expired (an error of `read`
        is raised and nothing is kept)."""
        now = self._clock()
        entry = self._unexpired(key, now)
        if entry is not None:
            return entry[1]
        value = read()
        self.put(key, value, now)
        with self._lock:
            self.reads += 1
        return value

    def put(self, key: K, value: V, read_at: float | None = None) -> None:
        """Keep `value` for `key` (a value just written: the next `get` serves it)."""
        with self._lock:
            self._entries[key] = (self._clock() if read_at is None else read_at, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def _unexpired(self, key: K, now: float) -> tuple[float, V] | None:
        with self._lock:
            entry = self._entries.get(key)
        return entry if entry is not None and now - entry[0] < self.ttl else None
