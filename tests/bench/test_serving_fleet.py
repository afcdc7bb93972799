"""The serving benchmark builds fleets as production has them: channel models fine-tuned from a workspace
model, each with a copy guard of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bench.serving_parts import setup
from db.model_store import LocalModelStore
from db.models import ModelVersion
from db.schema import open_database
from textgen.copyguard import load_copy_guard


def test_channel_models_descend_from_a_workspace_model_with_guards_of_their_own(tmp_path: Path) -> None:
    setup(tmp_path, {2: "small"})
    engine = open_database(f"sqlite:///{tmp_path / 'bot.db'}")
    store = LocalModelStore(tmp_path / "models")
    with Session(engine) as session:
        versions = session.scalars(select(ModelVersion)).all()
        workspace = [v for v in versions if v.channel_id is None]
        channels = [v for v in versions if v.channel_id is not None]
        assert len(workspace) == 1 and len(channels) == 2
        assert all(v.parent_version_id == workspace[0].id for v in channels)
        guards = [load_copy_guard(store.local_path(str(v.bundle_path))) for v in versions]
    engine.dispose()
    assert all(guard is not None and guard.nbytes > 0 for guard in guards)
    # Distinct guards, and a channel's is not its parent's copied in.
    channel_guards = [g for g, v in zip(guards, versions, strict=True) if v.channel_id is not None]
    workspace_guard = next(g for g, v in zip(guards, versions, strict=True) if v.channel_id is None)
    assert workspace_guard is not None
    assert all(g is not None and g.nbytes < workspace_guard.nbytes for g in channel_guards)


def test_a_full_run_serves_channel_models_of_the_base_models_size_only() -> None:
    """Every channel model fine-tuned from the base model has its size: that is what a full run serves,
    while the load/evict cycles still get small models of their own to cycle through a small cache."""
    from bench.serving import QUICK_SCENARIOS, SCENARIOS, bundles_to_write

    assert set(SCENARIOS) == {1, 50, 1000} and set(SCENARIOS.values()) == {"base"}
    written = bundles_to_write(SCENARIOS)
    assert {count: spec for count, spec in written.items() if count in SCENARIOS} == SCENARIOS
    assert "small" in written.values()
    assert bundles_to_write(QUICK_SCENARIOS) == QUICK_SCENARIOS  # the quick run serves small ones already


def test_fine_tuned_templates_serve_with_their_own_weights_guards_and_lexicons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the fleet is fine-tuned (`FineTunes`), each channel gets one of the channel fine-tunes: its
    weights in a file of its own, the guard and lexicon its training gave it, the workspace fine-tune as
    parent with that model's own guard."""
    import bench.serving_parts as parts
    from textgen.bundle import WEIGHT_ARRAYS, save_bundle
    from textgen.copyguard import FILE as GUARD_FILE
    from textgen.copyguard import build_copy_guard
    from textgen.lexicon import LEXICON_FILE
    from textgen.model import build_model
    from textgen.spec import ModelSpec
    from textgen.tokenizers import ByteTokenizer

    spec = ModelSpec(**parts.SPECS["small"])

    def trained(name: str, words: list[str]) -> Path:
        out = save_bundle(tmp_path / "fake" / name, build_model(spec, 260), spec, ByteTokenizer())
        build_copy_guard([f"{name} said {word} about the deploy and the build today" for word in words]).save(
            out
        )
        (out / LEXICON_FILE).write_bytes(name.encode())  # stands for the lexicon its training wrote
        return out

    fleet = (trained("workspace", ["a"] * 50), [trained("channel-0", ["b"]), trained("channel-1", ["c"])])
    monkeypatch.setattr(parts, "_fine_tuned_fleet", lambda work, base, plan: fleet)
    monkeypatch.setitem(parts.SPECS, "base", parts.SPECS["small"])
    made = setup(tmp_path / "work", {3: "base"}, parts.FineTunes(tmp_path / "unused.log"))
    assert made["fine_tuned"] is True
    engine = open_database(f"sqlite:///{tmp_path / 'work' / 'bot.db'}")
    store = LocalModelStore(tmp_path / "work" / "models")
    with Session(engine) as session:
        versions = session.scalars(select(ModelVersion)).all()
        [workspace] = [v for v in versions if v.channel_id is None]
        channels = sorted((v for v in versions if v.channel_id is not None), key=lambda v: v.id)
        paths = [store.local_path(str(v.bundle_path)) for v in channels]
        workspace_path = store.local_path(str(workspace.bundle_path))
    engine.dispose()
    assert all(v.parent_version_id == workspace.id for v in channels)
    assert (workspace_path / GUARD_FILE).read_bytes() == (fleet[0] / GUARD_FILE).read_bytes()
    # Channels 0 and 2 are copies of the first fine-tune, channel 1 of the second.
    sources = [fleet[1][0], fleet[1][1], fleet[1][0]]
    for path, source in zip(paths, sources, strict=True):
        assert (path / GUARD_FILE).read_bytes() == (source / GUARD_FILE).read_bytes()
        assert (path / LEXICON_FILE).read_bytes() == (source / LEXICON_FILE).read_bytes()
        weights = path / WEIGHT_ARRAYS
        assert weights.read_bytes() == (source / WEIGHT_ARRAYS).read_bytes()
        assert weights.stat().st_ino != (source / WEIGHT_ARRAYS).stat().st_ino  # a file of its own
