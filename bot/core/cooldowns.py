"""Per-user and per-channel cooldowns: how often a command may run, and how long to wait otherwise."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class CooldownRule:
    """Seconds that must pass between two uses of a command by one user, and in one channel."""

    per_user: float = 0.0
    per_channel: float = 0.0


class Cooldowns:
    """Remembers until when each user and channel must wait before running each command again.

    `check_and_start` either returns 0 and records the use, or returns the seconds left to wait and
    records nothing, so a refused call does not push the wait further out. Thread-safe.

    Only running waits are kept: entries whose wait has passed are dropped every `prune_every` seconds
    (during a call, in one pass), so memory follows the users active within the longest cooldown rather
    than every user ever seen.
    """

    def __init__(
        self,
        rules: dict[str, CooldownRule],
        clock: Callable[[], float] = time.monotonic,
        prune_every: float = 60.0,
    ) -> None:
        self._rules = dict(rules)
        self._clock = clock
        self._until: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()
        self._prune_every = prune_every
        self._next_prune = clock() + prune_every

    def remembered(self) -> int:
        """How many waits are remembered now (users and channels within their cooldown, until pruned)."""
        with self._lock:
            return len(self._until)

    def check_and_start(self, command: str, user_key: tuple[str, ...], channel_key: tuple[str, ...]) -> float:
        """Seconds to wait before `command` may run again for this user in this channel; 0 means go.

        Args:
            command: The command name.
            user_key: Identifies the user (platform, workspace, user).
            channel_key: Identifies the channel (platform, workspace, channel).
        """
        rule = self._rules.get(command)
        if rule is None:
            return 0.0
        now = self._clock()
        keys = [
            (("user", command, *user_key), rule.per_user),
            (("channel", command, *channel_key), rule.per_channel),
        ]
        with self._lock:
            if now >= self._next_prune:
                self._prune(now)
            wait = 0.0
            for key, period in keys:
                until = self._until.get(key)
                if period > 0 and until is not None:
                    wait = max(wait, until - now)
            if wait > 0:
                return wait
            for key, period in keys:
                if period > 0:
                    self._until[key] = now + period
            return 0.0

    def _prune(self, now: float) -> None:
        """Forget the waits that have passed; the caller holds the lock."""
        self._until = {key: until for key, until in self._until.items() if until > now}
        self._next_prune = now + self._prune_every


def describe_wait(seconds: float) -> str:
    """ "3 s", "2 min 5 s": the wait rounded up to whole seconds."""
    total = max(1, math.ceil(seconds))
    minutes, secs = divmod(total, 60)
    if minutes == 0:
        return f"{secs} s"
    return f"{minutes} min" + (f" {secs} s" if secs else "")
