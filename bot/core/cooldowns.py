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
    """Remembers when each user and channel last ran each command.

    `check_and_start` either returns 0 and records the use, or returns the seconds left to wait and
    records nothing, so a refused call does not push the wait further out. Thread-safe.
    """

    def __init__(self, rules: dict[str, CooldownRule], clock: Callable[[], float] = time.monotonic) -> None:
        self._rules = dict(rules)
        self._clock = clock
        self._last: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

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
            wait = 0.0
            for key, period in keys:
                last = self._last.get(key)
                if period > 0 and last is not None:
                    wait = max(wait, last + period - now)
            if wait > 0:
                return wait
            for key, period in keys:
                if period > 0:
                    self._last[key] = now
            return 0.0


def describe_wait(seconds: float) -> str:
    """ "3 s", "2 min 5 s": the wait rounded up to whole seconds."""
    total = max(1, math.ceil(seconds))
    minutes, secs = divmod(total, 60)
    if minutes == 0:
        return f"{secs} s"
    return f"{minutes} min" + (f" {secs} s" if secs else "")
