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
from bench import worker
from bench.floor import BiLSTMFloor, CausalFloor
from bench.quality import _chat_split
from bench.report import Row, format_table
from bench.seed_style import SeedStyleGenerator, seed_data_shape, seed_training_arrays
from bench.settings import RunSettings
from bench.sources import REPO_ROOT, Sources
from textgen.model import build_model
from textgen.spec import ModelSpec

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


def test_chat_split_holds_out_the_last_messages(tmp_path):
    log = tmp_path / "irc.log"
    log.write_text("".join(f"[10:{i % 60:02d}] <nick{i % 3}> message number {i}\n" for i in range(400)))
    train, held_out = _chat_split(log, quick=True)
    assert held_out[-1] == "message number 399"
    assert train[-1] == f"message number {399 - len(held_out)}"


def _in_process_worker(task, options, **_):
    """`run_worker` without the subprocess: tiny models, the test process's TensorFlow."""
    return worker.TASKS[task]({**options, "tiny": True}), None


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


def test_memory_benchmark_measures_both_pipelines_and_projects_the_large_seed_cases(
    monkeypatch, shakespeare, tmp_path
):
    monkeypatch.setattr(bench.memory, "run_worker", _in_process_worker)
    corpus = tmp_path / "shakespeare.txt"
    corpus.write_text(shakespeare)
    outcome = bench.memory.run_memory(RunSettings(quick=True, sources=Sources(corpus, None, "test")))
    seed = outcome.figures["seed"]
    # In-process the high-water mark may already sit above this case, so only its presence is checked.
    assert seed["0.02MB"]["projected"] is False and "delta_bytes" in seed["0.02MB"]
    assert seed["1.0MB"]["projected"] is True
    assert outcome.figures["project"]["1.0MB"]["tokens"] == 1_000_002  # BOS + 1 MB of ASCII + EOS
    assert any(row.target.startswith("≤") for row in outcome.rows)


def test_irc_benchmarks_are_skipped_without_the_log(tmp_path):
    settings = RunSettings(quick=True, sources=Sources(tmp_path / "none.txt", None, "test"))
    [row] = bench.memory.run_irc_memory(settings).rows
    assert row.note.startswith("skipped")


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
    record = json.loads(results.read_text())
    assert record["quick"] is True
    assert [row["name"] for row in record["rows"]][0].startswith("throughput")
    assert (tmp_path / "logs" / "throughput.log").exists()
    assert "memory" in record["skipped"]


def test_table_marks_missing_figures_and_misses():
    table = format_table([Row(name="x", project_value=None, target="≥2x", met=False)])
    assert "—" in table and "NO" in table
