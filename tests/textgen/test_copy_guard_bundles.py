"""Copy guards in bundles: each model carries only its own corpus; the bot checks its ancestors' apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from textgen.copyguard import CopyGuard, build_copy_guard, load_copy_guard
from textgen.errors import TextgenError

BASE = [f"base line {i} about the weather and the long rainy autumn afternoon here" for i in range(60)]
WORKSPACE = [f"workspace line {i} where we deploy the shiny new server every friday night" for i in range(60)]
CHANNEL = [f"channel line {i} says the coffee machine on floor two is broken again" for i in range(60)]


def _train(messages: list[str], out: Path, base: Path | None = None) -> Path:
    from textgen.spec import ModelSpec, TrainConfig
    from textgen.training import train_model

    train_model(
        messages,
        out,
        spec=ModelSpec(arch="gru", layers=1, units=8, embedding=4, seq_len=16),
        config=TrainConfig(batch_size=8, epochs=1, steps_per_epoch=2, seed=1),
        base=base,
        precision="float32",
    )
    return out


def test_fine_tuned_guard_holds_only_its_own_corpus(tmp_path: Path) -> None:
    base = _train(BASE, tmp_path / "base")
    workspace = _train(WORKSPACE, tmp_path / "workspace", base)
    channel = _train(CHANNEL, tmp_path / "channel", workspace)
    base_guard, workspace_guard, channel_guard = (load_copy_guard(p) for p in (base, workspace, channel))
    assert base_guard is not None and workspace_guard is not None and channel_guard is not None
    assert base_guard.copied(BASE[3]) == "words" and workspace_guard.copied(BASE[3]) is None
    assert channel_guard.copied(CHANNEL[5]) == "words"
    # The bot checks the workspace model's and the base model's guards apart, each loaded once.
    assert channel_guard.copied(WORKSPACE[7]) is None and channel_guard.copied(BASE[3]) is None
    assert channel_guard.nbytes < 2 * workspace_guard.nbytes


def test_guards_of_other_sizes_do_not_merge() -> None:
    guard = build_copy_guard(WORKSPACE)
    other = CopyGuard(np.zeros(0, np.uint64), np.zeros(0, np.uint64), word_n=6)
    with pytest.raises(TextgenError, match="retrain the parent model"):
        guard.merged(other)
    assert guard.merged(None) is guard
