"""The serving benchmark builds fleets as production has them: channel models fine-tuned from a workspace
model, each with a copy guard of its own."""

from __future__ import annotations

from pathlib import Path

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
