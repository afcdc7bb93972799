"""Smoke tests for `bench/`: the baselines compute what they claim, and the benchmark code paths run.

Tiny shapes only; no timing assertions (the figures depend on the machine and its neighbours).
"""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import bench.generation
import bench.memory
import bench.quality
from bench import worker
from bench.char_baseline import CharVocabulary, build_char_model, scored_stream, stream_nll, train_and_score
from bench.children import ChildResult
from bench.cli import COMMITTED_SUMMARY, _default_summary
from bench.floor import BiLSTMFloor, CausalFloor
from bench.heldout import corpus_parts
from bench.report import Row, format_table
from bench.seed_style import SeedStyleGenerator, seed_data_shape, seed_training_arrays
from bench.settings import RunSettings
from bench.sources import REPO_ROOT, Sources
from bench.tokenizer_comparison import chat_split, tokenizer_rows
from bench.train_runs import TrainRun
from textgen.model import build_model
from textgen.spec import ModelSpec, TrainConfig
from textgen.training import train_model

VOCAB = 260


def random_model(spec: ModelSpec) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = build_model(spec, VOCAB)
    # Larger-than-initial weights so that every gate matters and a wrong equation shows.
    rng = np.random.default_rng(0)
    model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


@pytest.mark.parametrize(
    ("arch", "layers"), [("simplernn", 1), ("lstm", 1), ("gru", 1), ("lstm", 2), ("gru", 2)]
)
def test_numpy_floor_matches_the_keras_forward_pass(arch, layers):
    spec = ModelSpec(arch=arch, layers=layers, units=16, embedding=8, seq_len=8)
    model = random_model(spec)
    tokens = np.random.default_rng(1).integers(0, VOCAB, size=10)
    expected = model(tokens[None, :].astype(np.int32)).numpy()[0]
    floor = CausalFloor(model, arch)
    state = floor.initial_state()
    for position, token in enumerate(tokens):
        logits, state = floor.step(int(token), state)
        np.testing.assert_allclose(logits, expected[position], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layers", [1, 2])
def test_bilstm_floor_matches_the_keras_forward_pass(layers):
    spec = ModelSpec(arch="bilstm", layers=layers, units=10, embedding=8, seq_len=6)
    model = random_model(spec)
    window = np.random.default_rng(2).integers(0, VOCAB, size=6).astype(np.int32)
    floor = BiLSTMFloor(model, spec.seq_len)
    np.testing.assert_allclose(floor.logits(window), model(window[None, :]).numpy()[0], rtol=1e-4, atol=1e-4)


def test_seed_style_loop_generates_greedily_from_the_padded_window():
    spec = ModelSpec(arch="gru", units=8, embedding=4, seq_len=8)
    model = random_model(spec)
    seed_loop = SeedStyleGenerator(model, window=5)
    out = seed_loop.generate([1, 70, 71], 3)
    assert len(out) == 3
    window = np.array([[0, 0, 1, 70, 71]], dtype=np.int32)
    assert out[0] == int(np.argmax(model(window).numpy()[0, -1]))


def test_seed_data_projection_counts_exactly_what_the_pipeline_builds(shakespeare):
    text = shakespeare[:3000]
    shape = seed_data_shape(text)
    xs, ys, tokenizer = seed_training_arrays(text)
    assert (shape.samples, shape.vocab, shape.max_len) == (xs.shape[0], tokenizer.vocab_size, xs.shape[1] + 1)
    assert shape.onehot_bytes == ys.nbytes
    assert ys.dtype == np.float64, "Keras 3's to_categorical is float64; the projection assumes 8 bytes"


def _irc_log(path, count):
    path.write_text("".join(f"[10:{i % 60:02d}] <nick{i % 3}> message number {i}\n" for i in range(count)))
    return path


def test_tokenizer_split_holds_out_test_last_and_validation_before_it(tmp_path):
    train, validation, test = chat_split(_irc_log(tmp_path / "irc.log", 400), quick=True)
    assert test[-1] == "message number 399"
    assert validation[-1] == f"message number {399 - len(test)}"
    assert train[-1] == f"message number {399 - len(test) - len(validation)}"


def test_word_tokenizer_row_has_no_ratio_and_says_why():
    rows = {
        row.name.split(", ")[-1]: row for row in tokenizer_rows({"byte": 2.0, "char": 1.6, "word": 1.1}, 60)
    }
    assert rows["char tokenizer vs byte"].ratio == pytest.approx(2.0 / 1.6)
    word = rows["word tokenizer"]
    assert word.ratio is None and word.baseline_value is None and not word.baseline
    assert "not comparable" in word.note


def test_held_out_parts_are_what_train_model_scores(tmp_path):
    corpus = _irc_log(tmp_path / "irc.log", 600)
    parts = corpus_parts(corpus, "irc", val_fraction=0.1, test_fraction=0.05)
    from textgen.corpus import load_corpus

    messages = load_corpus(corpus, "irc").messages
    spec = ModelSpec(units=16, embedding=8, seq_len=16)
    config = TrainConfig(epochs=1, steps_per_epoch=4, batch_size=8, val_fraction=0.1, test_fraction=0.05)
    metrics = train_model(messages, tmp_path / "model", spec=spec, config=config).metrics
    assert metrics["test_chars"] == parts.scored_test_chars
    assert parts.scored_test[-1] == "message number 599"
    assert metrics["train_tokens"] == sum(len(m.encode()) + 2 for m in parts.train)  # BOS, bytes, EOS


def test_char_baseline_scores_every_test_character_and_one_newline_per_message():
    vocabulary = CharVocabulary("abc\nab")
    assert list(vocabulary.ids("abz")) == [
        1 + vocabulary.chars.index("a"),
        1 + vocabulary.chars.index("b"),
        0,
    ]
    messages = ["abc", "ba"]
    ids = vocabulary.ids(scored_stream(messages))
    # One prediction per character after the first: 5 message characters and 2 newlines.
    assert len(ids) - 1 == sum(len(m) for m in messages) + len(messages)
    keras.utils.set_random_seed(0)
    model = build_char_model(vocabulary.size, units=8, embedding=4)
    stream = np.random.default_rng(0).integers(0, vocabulary.size, size=150).astype(np.int32)
    expected = 0.0
    for start in range(0, 149, 64):  # windows of 64 from a fresh state, the last one shorter
        inputs, targets = stream[start : min(start + 64, 149)], stream[start + 1 : min(start + 65, 150)]
        logits = model(inputs[None, :]).numpy()[0]
        expected += float(
            keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True).numpy().sum()
        )
    assert stream_nll(model, stream, window=64) == pytest.approx(expected, rel=1e-5)


def test_char_baseline_trains_within_its_budget_and_reports_nats_per_char(shakespeare):
    import time

    result = train_and_score(
        [shakespeare[:20_000]],
        [shakespeare[-3000:]],
        budget=4,
        started=time.monotonic(),
        units=8,
        embedding=4,
    )
    assert result["steps"] >= 1 and result["test_chars"] == 3000
    assert 0 < result["test_nats_per_char"] < 10


def _fake_train(calls):
    def train(corpus, out, fmt, budget, extra, log_name):
        calls.append(extra)
        seed = int(extra[extra.index("--seed") + 1])
        metrics = {
            "test_nats_per_char": 1.5 + seed / 100,
            "test_chars": 1000,
            "val_nats_per_char": 1.4,
            "steps": 9,
        }
        return TrainRun(metrics=metrics, child=ChildResult("", "", 1.0, 1024), budget=budget)

    return train


def _fake_quality_worker(task, options, **_):
    if task == "char-baseline":
        return {"test_nats_per_char": 1.8, "test_chars": 1000}, ChildResult("", "", 2.0, 2048)
    gaps = {
        name: {"fresh_nats_per_token": 1.03, "stream_nats_per_token": 1.0, "gap": 0.03}
        for name in options["bundles"]
    }
    return gaps, ChildResult("", "", 1.0, 1024)


def test_quality_rows_show_mean_worst_baseline_ratio_and_recovery(monkeypatch, shakespeare, tmp_path):
    calls: list[list[str]] = []
    monkeypatch.setattr(bench.quality, "train", _fake_train(calls))
    monkeypatch.setattr(bench.quality, "run_worker", _fake_quality_worker)
    corpus = tmp_path / "shakespeare.txt"
    corpus.write_text(shakespeare)
    settings = RunSettings(quick=True, sources=Sources(corpus, _irc_log(tmp_path / "irc.log", 400), "test"))

    shakespeare_outcome = bench.quality.run_shakespeare(settings)
    mean, worst, baseline = shakespeare_outcome.rows
    seeds = bench.quality.QUICK_SEEDS
    assert "mean of" in mean.name and mean.project_value == pytest.approx(
        np.mean([1.5 + s / 100 for s in seeds])
    )
    assert "worst of" in worst.name and worst.project_value == pytest.approx(1.5 + max(seeds) / 100)
    assert worst.target == "≤1.55" and worst.met is True
    assert baseline.baseline_value == 1.8 and baseline.ratio == pytest.approx(1.8 / mean.project_value)
    assert calls[0][:4] == ["--val-fraction", "0.05", "--test-fraction", "0.1"]
    assert [call[call.index("--seed") + 1] for call in calls] == [str(s) for s in seeds]
    assert set(shakespeare_outcome.figures["seeds"]["0"]) >= {
        "test_nats_per_char",
        "steps",
        "wall_seconds",
        "peak_rss_bytes",
    }

    chat_rows = bench.quality.run_chat(settings).rows
    assert [row.target for row in chat_rows] == ["", "≤1.8", "", "<0.1"]
    assert chat_rows[-1].project_value == pytest.approx(0.03) and chat_rows[-1].met is True
    # References measured elsewhere are listed apart, never a row.
    assert not any(
        "nanoGPT" in row.name or row.baseline == "published" for row in chat_rows + shakespeare_outcome.rows
    )


def test_a_failed_seed_leaves_the_worst_unknown_and_the_target_missed(monkeypatch, shakespeare, tmp_path):
    def failing_train(corpus, out, fmt, budget, extra, log_name):
        if extra[extra.index("--seed") + 1] == "1":
            raise bench.quality.ChildFailed("no better than a uniform guess")
        return _fake_train([])(corpus, out, fmt, budget, extra, log_name)

    monkeypatch.setattr(bench.quality, "train", failing_train)
    monkeypatch.setattr(bench.quality, "run_worker", _fake_quality_worker)
    corpus = tmp_path / "shakespeare.txt"
    corpus.write_text(shakespeare)
    rows = bench.quality.run_shakespeare(RunSettings(quick=True, sources=Sources(corpus, None, "test"))).rows
    assert rows[1].project_value is None and rows[1].met is False and "seed 1" in rows[1].note


def _in_process_worker(task, options, **_):
    """`run_worker` without the subprocess: tiny models, the test process's TensorFlow."""
    return worker.TASKS[task]({**options, "tiny": True}), None


@pytest.mark.slow
def test_generation_benchmarks_produce_rows(monkeypatch, shakespeare, tmp_path):
    monkeypatch.setattr(bench.generation, "run_worker", _in_process_worker)
    corpus = tmp_path / "shakespeare.txt"
    corpus.write_text(shakespeare)
    settings = RunSettings(quick=True, tiny=True, sources=Sources(corpus, None, "test"))
    rows = []
    for run in (
        bench.generation.run_generation,
        bench.generation.run_throughput,
        bench.generation.run_bilstm,
    ):
        outcome = run(settings)
        assert outcome.rows and outcome.figures
        rows.extend(outcome.rows)
    targets = {row.target for row in rows if row.target}
    assert {"≥100x", "≤3x", "≥8x", "≥20x"} <= targets
    assert all(row.project_value and row.project_value > 0 for row in rows)
    assert all(row.met in (True, False) for row in rows if row.target)
    assert "gen 200 tok" in format_table(rows)


@pytest.mark.slow
def test_memory_benchmark_measures_both_pipelines_and_projects_the_large_seed_cases(
    monkeypatch, shakespeare, tmp_path
):
    monkeypatch.setattr(bench.memory, "run_worker", _in_process_worker)
    # The cases run in this process: a lower limit projects the 0.25 MB seed case (700 MB of arrays, 17 s
    # of CPU) as well, while the 0.02 MB one still runs and calibrates the projection.
    monkeypatch.setattr(bench.memory, "SEED_RUN_LIMIT", 256 * 1024**2)
    corpus = tmp_path / "shakespeare.txt"
    corpus.write_text(shakespeare)
    outcome = bench.memory.run_memory(RunSettings(quick=True, sources=Sources(corpus, None, "test")))
    seed = outcome.figures["seed"]
    # In-process the high-water mark may already sit above this case, so only its presence is checked.
    assert seed["0.02MB"]["projected"] is False and "delta_bytes" in seed["0.02MB"]
    assert seed["0.25MB"]["projected"] is True and seed["1.0MB"]["projected"] is True
    assert outcome.figures["project"]["1.0MB"]["tokens"] == 1_000_002  # BOS + 1 MB of ASCII + EOS
    assert any(row.target.startswith("≤") for row in outcome.rows)


def test_irc_benchmarks_are_skipped_without_the_log(tmp_path):
    settings = RunSettings(quick=True, sources=Sources(tmp_path / "none.txt", None, "test"))
    [row] = bench.memory.run_irc_memory(settings).rows
    assert row.note.startswith("skipped")


@pytest.mark.slow
def test_command_line_runs_end_to_end_and_writes_the_record(tmp_path):
    results = tmp_path / "latest.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--only", "throughput", "--results", str(results)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "| benchmark" in completed.stdout
    table = completed.stdout.split("references, measured elsewhere")[0]
    assert "nanoGPT" not in table and "nanoGPT" in completed.stdout
    record = json.loads(results.read_text())
    assert record["quick"] is True
    assert any("nanoGPT" in reference["what"] for reference in record["references"])
    summary = (tmp_path / "summary.md").read_text()
    assert "| benchmark" in summary and "nanoGPT" in summary and "python -m bench --tiny" in summary
    assert [row["name"] for row in record["rows"]][0].startswith("throughput")
    assert (tmp_path / "logs" / "throughput.log").exists()
    assert "memory" in record["skipped"]


def test_only_a_complete_full_run_writes_the_committed_summary(tmp_path):
    assert _default_summary(tmp_path / "latest.json", complete=True) == COMMITTED_SUMMARY
    assert _default_summary(tmp_path / "latest.json", complete=False) == tmp_path / "summary.md"


def test_table_marks_missing_figures_and_misses():
    table = format_table([Row(name="x", project_value=None, target="≥2x", met=False)])
    assert "—" in table and "NO" in table
