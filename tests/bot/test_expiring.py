"""Lookups a bot repeats for every request, kept a short while: read once, changed at once by `filter`."""

import pytest

from bot.core.expiring import ExpiringCache
from bot.core.output_filter import PROMPT_REFUSED
from tests.bot.conftest import Chat


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_value_is_read_once_until_it_expires() -> None:
    clock = Clock()
    cache: ExpiringCache[str, int] = ExpiringCache(ttl=10.0, clock=clock)
    reads = []

    def read() -> int:
        reads.append(clock.now)
        return len(reads)

    assert [cache.get("ws", read) for _ in range(3)] == [1, 1, 1]
    clock.now += 9.9
    assert cache.get("ws", read) == 1
    clock.now += 0.2
    assert cache.get("ws", read) == 2
    assert cache.get("other", read) == 3
    cache.put("ws", 42)  # a value just written is served at once
    assert cache.get("ws", read) == 42
    assert cache.fresh("ws") == 42 and cache.fresh("nothing") is None
    clock.now += 10.0
    assert cache.fresh("ws") is None


def test_a_failed_read_keeps_nothing_and_the_cache_is_bounded() -> None:
    cache: ExpiringCache[int, int] = ExpiringCache(ttl=10.0, max_entries=2, clock=Clock())

    def fail() -> int:
        raise RuntimeError("database down")

    with pytest.raises(RuntimeError):
        cache.get(1, fail)
    assert cache.get(1, lambda: 5) == 5
    for key in (2, 3):
        cache.get(key, lambda: 0)
    assert cache.get(1, lambda: 6) == 6  # the oldest went first
    with pytest.raises(ValueError, match="ttl"):
        ExpiringCache(ttl=-1.0)


def test_generate_reads_the_filter_settings_once_and_filter_changes_them_at_once(chat: Chat) -> None:
    admin, ann = chat.user("boss", admin=True), chat.user("ann")
    for _ in range(3):
        ann.say("/generate hello")
    assert chat.services.filter_settings.reads == 1
    assert ann.say("/generate this shit") != PROMPT_REFUSED  # masked under the default policy
    admin.say("/filter block")
    assert ann.say("/generate this shit") == PROMPT_REFUSED  # the new policy, at once
