"""Replies are checked along the model's lineage, each guard loaded once and shared by its descendants."""

from __future__ import annotations

from pathlib import Path

from bot.core.copy_guards import CopyGuardCache
from textgen.copyguard import build_copy_guard, find_copy

BASE = [f"base line {i} about the weather and the long rainy autumn afternoon here" for i in range(40)]
WORKSPACE = [f"workspace line {i} where we deploy the shiny new server every friday night" for i in range(40)]


def bundle_with_guard(path: Path, messages: list[str]) -> Path:
    path.mkdir(parents=True)
    (path / "bundle.json").write_text("{}")
    build_copy_guard(messages).save(path)
    return path


def test_a_channel_reply_is_refused_for_copying_its_workspace_or_base_corpus(tmp_path: Path) -> None:
    base = bundle_with_guard(tmp_path / "base", BASE)
    workspace = bundle_with_guard(tmp_path / "workspace", WORKSPACE)
    channel = bundle_with_guard(
        tmp_path / "channel", ["the coffee machine on floor two is broken again today"]
    )
    guards = CopyGuardCache().for_serving((channel, workspace), base)
    assert len(guards) == 3
    assert find_copy(guards, WORKSPACE[7]) == "words"
    assert find_copy(guards, BASE[3]) == "words"
    assert find_copy(guards, "something new entirely") is None


def test_shared_guards_load_once_for_many_channel_models(tmp_path: Path) -> None:
    base = bundle_with_guard(tmp_path / "base", BASE)
    workspace = bundle_with_guard(tmp_path / "workspace", WORKSPACE)
    channels = [
        bundle_with_guard(tmp_path / f"c{i}", [f"channel {i} says hello to all of you here"])
        for i in range(20)
    ]
    cache = CopyGuardCache()
    for _ in range(3):
        for channel in channels:
            shared = cache.for_serving((channel, workspace), base)
            assert len(shared) == 3
    # Twenty channel guards and the two shared ones, each read from disk once.
    assert cache.loads == 22
    first = cache.for_serving((channels[0], workspace), base)
    second = cache.for_serving((channels[1], workspace), base)
    assert first[1] is second[1] and first[2] is second[2]


def test_the_cache_keeps_to_its_byte_budget(tmp_path: Path) -> None:
    paths = [
        bundle_with_guard(tmp_path / f"m{i}", [f"model {i} message number {j} " * 3 for j in range(30)])
        for i in range(6)
    ]
    one = CopyGuardCache().get(paths[0])
    assert one is not None and one.nbytes > 0
    cache = CopyGuardCache(max_bytes=2 * one.nbytes + 1)
    for path in paths:
        cache.get(path)
    assert cache.bytes <= 2 * one.nbytes + 1
    assert cache.loads == 6
    cache.get(paths[-1])
    assert cache.loads == 6
