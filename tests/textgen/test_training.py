"""Training: every architecture learns, budgets and seeds hold, bundles save, load and fine-tune."""

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from textgen.bundle import load_bundle
from textgen.errors import TextgenError
from textgen.evaluate import evaluate_messages
from textgen.generator import Generator
from textgen.holdout import split_validation
from textgen.lexicon import load_lexicon
from textgen.spec import ModelSpec, TrainConfig
from textgen.training import train_model

TINY = dict(units=32, embedding=16, seq_len=24)


@pytest.mark.parametrize("arch", ["simplernn", "lstm", "gru", "bilstm"])
def test_each_architecture_improves_on_a_tiny_corpus(tmp_path, shakespeare, arch):
    spec = ModelSpec(arch=arch, **TINY)
    config = TrainConfig(epochs=3, batch_size=16, steps_per_epoch=25, learning_rate=1e-2, val_fraction=0.1)
    result = train_model([shakespeare[:20_000]], tmp_path / arch, spec=spec, config=config)
    history = result.history
    assert len(history) == 3
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    # Better than the uniform guess over 260 byte ids (5.56 nats per byte).
    assert result.metrics["val_nats_per_char"] < 4.0
    assert set(result.metrics) >= {
        "val_loss",
        "val_nats_per_char",
        "train_tokens_per_sec",
        "params",
        "seconds",
    }


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, shakespeare):
    """A TINY model of 40 steps, for the tests that read a bundle or fine-tune one (one run for all)."""
    config = TrainConfig(epochs=2, batch_size=16, steps_per_epoch=20, learning_rate=1e-2)
    out = tmp_path_factory.mktemp("tiny") / "model"
    return train_model([shakespeare[:20_000]], out, spec=ModelSpec(**TINY), config=config)


def test_bundle_saves_loads_and_generates_the_same(tiny_run):
    result = tiny_run
    bundle = load_bundle(result.bundle)
    assert bundle.spec == ModelSpec(**TINY)
    assert bundle.metrics["val_nats_per_char"] == pytest.approx(result.metrics["val_nats_per_char"])
    first = Generator(bundle).generate("KING:", max_tokens=30, seed=3)
    again = Generator.from_bundle(result.bundle).generate("KING:", max_tokens=30, seed=3)
    assert first == again
    leftovers = [p.name for p in result.bundle.parent.iterdir() if p.name.startswith(".tmp")]
    assert leftovers == []


def test_fine_tuning_starts_from_the_base_weights_and_keeps_its_tokenizer(tmp_path, tiny_run):
    base = tiny_run
    chat = ["hey all, anyone tried the new kernel?", "yes it boots fine here", "cool, thanks"] * 40
    tuned = train_model(
        chat,
        tmp_path / "tuned",
        base=base.bundle,
        spec=ModelSpec(units=999),
        config=TrainConfig(epochs=1, batch_size=8, steps_per_epoch=5, learning_rate=1e-3),
    )
    tuned_bundle = load_bundle(tuned.bundle)
    assert tuned_bundle.spec == ModelSpec(**TINY), "the base spec wins so weights and token ids agree"
    assert tuned_bundle.manifest["parent"] == str(base.bundle)
    # A few small steps from the base stay close to it, far closer than a fresh model would be.
    base_weights = load_bundle(base.bundle).model.get_weights()
    drift = max(
        float(np.abs(a - b).max())
        for a, b in zip(base_weights, tuned_bundle.model.get_weights(), strict=True)
    )
    assert 0 < drift < 0.1


def test_a_bpe_model_trains_fine_tunes_on_another_channel_with_its_merges_and_serves(tmp_path, shakespeare):
    config = TrainConfig(epochs=2, batch_size=16, steps_per_epoch=15, learning_rate=1e-2)
    base = train_model(
        [shakespeare[:20_000]], tmp_path / "base", spec=ModelSpec(**TINY), config=config, tokenizer="bpe"
    )
    base_bundle = load_bundle(base.bundle)
    assert base_bundle.tokenizer.kind == "bpe" and base_bundle.tokenizer.vocab_size > 260
    # Figures stay per character: BPE's tokens hold several characters each.
    assert base.metrics["val_nats_per_char"] < np.log(base_bundle.tokenizer.vocab_size)
    chat = ["anyone seen the webhook retries pile up?", "yes, bump the timeout", "thanks!"] * 40
    tuned = train_model(
        chat,
        tmp_path / "tuned",
        base=base.bundle,
        config=TrainConfig(epochs=1, batch_size=8, steps_per_epoch=5),
        tokenizer="byte",  # ignored: a fine-tune keeps its parent's tokenizer, so the ids agree
    )
    tuned_bundle = load_bundle(tuned.bundle)
    assert tuned_bundle.tokenizer.to_json() == base_bundle.tokenizer.to_json()
    # Its replies spell only words of its lexicon (the channel's and its parent's), as byte models' do.
    lexicon = load_lexicon(tuned.bundle)
    assert "webhook" in lexicon and "citizen" in lexicon
    generator = Generator.from_bundle(tuned.bundle)
    assert generator.lexicon is not None
    [reply] = generator.generate("yes, ", max_tokens=20, seed=1)
    assert reply.startswith("yes, ") and len(reply) > len("yes, ") and "\ufffd" not in reply[:5]


def test_time_budget_includes_preparation_and_stops_cleanly(tmp_path, shakespeare):
    # The run "started" two seconds ago: that time (as if spent loading a corpus) counts too.
    started = time.monotonic() - 2.0
    config = TrainConfig(epochs=1000, batch_size=16, time_budget=6.0)
    result = train_model(
        [shakespeare], tmp_path / "m", spec=ModelSpec(**TINY), config=config, started=started
    )
    assert result.metrics["stopped"] == "time budget"
    assert result.metrics["steps"] > 0
    # The whole run (the two seconds before, training, the final evaluation and the save) fits in the
    # budget: training stops early enough to leave time for the rest. One step is far below a second.
    assert result.metrics["budget_seconds_used"] < 6.0
    assert result.metrics["seconds"] <= 6.0 + 1.5
    assert result.metrics["train_seconds"] < 4.0
    assert load_bundle(result.bundle).metrics["steps"] == result.metrics["steps"]


def test_a_budget_spent_before_training_began_is_refused_and_nothing_is_saved(tmp_path, shakespeare):
    # As if reading a huge corpus had taken 12 of the 10 seconds: a step or two would then be saved
    # after the budget, and called a model.
    config = TrainConfig(epochs=5, batch_size=16, time_budget=10.0)
    with pytest.raises(TextgenError, match=r"time budget of 10 s was spent before training began \(12 s"):
        train_model(
            [shakespeare[:20_000]],
            tmp_path / "m",
            spec=ModelSpec(**TINY),
            config=config,
            started=time.monotonic() - 12.0,
        )
    assert not (tmp_path / "m").exists()


def test_same_seed_same_model(tmp_path, shakespeare):
    config = TrainConfig(epochs=1, batch_size=8, steps_per_epoch=6, seed=11)
    spec = ModelSpec(arch="lstm", dropout=0.1, **TINY)
    first = train_model([shakespeare[:10_000]], tmp_path / "a", spec=spec, config=config)
    second = train_model([shakespeare[:10_000]], tmp_path / "b", spec=spec, config=config)
    assert first.metrics["val_loss"] == pytest.approx(second.metrics["val_loss"], rel=1e-6)


def test_validation_split_takes_the_end():
    train, val = split_validation(["a" * 10] * 10, 0.2)
    assert len(train) == 8 and len(val) == 2
    train, val = split_validation(["0123456789"], 0.3)
    assert train == ["0123456"] and val == ["789"]


def test_separate_validation_corpus_is_used(tmp_path, shakespeare):
    result = train_model(
        [shakespeare[:10_000]],
        tmp_path / "m",
        spec=ModelSpec(**TINY),
        val_messages=["a short held-out line"] * 20,
        config=TrainConfig(epochs=1, batch_size=8, steps_per_epoch=5),
    )
    assert result.metrics["val_chars"] == len("a short held-out line") * 20


def test_corpus_too_small_for_one_batch_is_refused_and_writes_nothing(tmp_path):
    with pytest.raises(TextgenError, match="fewer than one batch"):
        train_model(["tiny"], tmp_path / "m", spec=ModelSpec(**TINY), config=TrainConfig(val_fraction=0.0))
    assert not (tmp_path / "m").exists()


def test_evaluation_counts_characters_not_tokens(tiny_run):
    evaluation = evaluate_messages(load_bundle(tiny_run.bundle), ["héllo wörld 🎉"])
    assert evaluation.chars == len("héllo wörld 🎉")
    assert evaluation.tokens == len("héllo wörld 🎉".encode()) + 2
    assert evaluation.nats_per_char == pytest.approx(
        evaluation.nats_per_token * (evaluation.tokens - 1) / evaluation.chars
    )


def test_mixed_bfloat16_policy_trains_on_the_cpu(tmp_path, shakespeare):
    result = train_model(
        [shakespeare[:10_000]],
        tmp_path / "m",
        spec=ModelSpec(arch="gru", **TINY),
        config=TrainConfig(epochs=2, batch_size=8, steps_per_epoch=8, learning_rate=1e-2),
        precision="mixed_bfloat16",
    )
    assert result.metrics["precision"] == "mixed_bfloat16"
    assert np.isfinite(result.metrics["val_loss"])
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    # The saved model is float32, what the engine serves.
    assert all(w.dtype == np.float32 for w in load_bundle(result.bundle).model.get_weights())


MIRRORED_SCRIPT = Path(__file__).with_name("mirrored_training.py")


@pytest.mark.slow
def test_mirrored_strategy_on_two_cpu_devices_matches_one_device(tmp_path):
    """Two logical CPU replicas, with and without gradient accumulation, give the one-device weights,
    closely enough that a gradient off by a factor of two (the control run) would fail."""
    completed = subprocess.run(
        [sys.executable, str(MIRRORED_SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["replicas"]["one"] == 1 and report["replicas"]["mirrored"] == 2
    assert report["replicas"]["mirrored_accum"] == report["replicas"]["mirrored_accum_windows"] == 2
    assert report["max_diff_mirrored"] < 1e-4
    assert report["max_diff_mirrored_accum"] < 1e-4
    assert report["max_diff_accum_windows"] < 1e-4
    assert report["moved"] > 1e-3
    assert report["max_diff_doubled_gradient"] > 100 * 1e-4
