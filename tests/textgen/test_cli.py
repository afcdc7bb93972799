"""The command line as users meet it: JSON outputs, one-line errors with exit code 2, nothing half-written."""

import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatsmith.cli import main

TINY = ["--units", "16", "--embedding", "8", "--seq-len", "16", "--batch-size", "8", "--epochs", "1"]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory, shakespeare):
    path = tmp_path_factory.mktemp("corpus") / "plays.txt"
    path.write_text(shakespeare[:12_000], encoding="utf-8")
    return path


@dataclass(frozen=True)
class TrainRun:
    """`chatsmith train --json` on the corpus file: the bundle and what the command printed."""

    bundle: Path
    out: str
    err: str


@pytest.fixture(scope="module")
def train_run(tmp_path_factory, corpus_file) -> TrainRun:
    # One training run for the module (capsys is per test, so its output is captured here).
    out = tmp_path_factory.mktemp("models") / "tiny"
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        code = main(["train", "--corpus", str(corpus_file), "--out", str(out), *TINY, "--json"])
    assert code == 0, stderr.getvalue()
    return TrainRun(out, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(scope="module")
def bundle(train_run: TrainRun) -> Path:
    return train_run.bundle


def last_json_line(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_train_json_reports_the_metrics_users_compare(train_run):
    metrics = json.loads(train_run.out.strip().splitlines()[-1])
    for key in (
        "val_loss",
        "val_nats_per_char",
        "test_nats_per_char",
        "train_tokens_per_sec",
        "params",
        "seconds",
        "bundle",
    ):
        assert key in metrics
    assert metrics["bundle"] == str(train_run.bundle.absolute())
    assert "guessed format 'text'" in train_run.err
    # The command's own default, not the library's 0 (bench/RESULTS.md, "Dropout at 100 s").
    assert json.loads((train_run.bundle / "bundle.json").read_text())["spec"]["dropout"] == 0.2


def test_generate_json_gives_samples(bundle, capsys):
    args = [
        "generate",
        "--model",
        str(bundle),
        "--prompt",
        "KING:",
        "--n",
        "2",
        "--seed",
        "1",
        "--max-tokens",
        "20",
    ]
    assert main([*args, "--json"]) == 0
    samples = last_json_line(capsys)["samples"]
    assert len(samples) == 2 and all(s.startswith("KING:") for s in samples)
    assert main([*args, "--json"]) == 0
    assert last_json_line(capsys)["samples"] == samples


def test_eval_json(bundle, corpus_file, capsys):
    assert (
        main(["eval", "--model", str(bundle), "--corpus", str(corpus_file), "--format", "text", "--json"])
        == 0
    )
    result = last_json_line(capsys)
    assert result["chars"] == 12_000 and result["tokens"] > 12_000 and 0 < result["nats_per_char"] < 6


def test_fine_tune_from_base(tmp_path, bundle, corpus_file, capsys):
    out = tmp_path / "tuned"
    assert (
        main(
            ["train", "--corpus", str(corpus_file), "--out", str(out), "--base", str(bundle), *TINY, "--json"]
        )
        == 0
    )
    assert last_json_line(capsys)["params"] > 0
    # A fine-tune is its parent's model trained further: the same spec, dropout included.
    assert (
        json.loads((out / "bundle.json").read_text())["spec"]
        == json.loads((bundle / "bundle.json").read_text())["spec"]
    )


def run_error(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err[-1] if err else ""


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (None, [], "does not exist"),
        ("", [], "is empty"),
        (b"\xff\xfe latin", [], "not UTF-8"),
        ("short", [], "fewer than one batch"),
        ("some text " * 200, ["--format", "xml"], "unknown corpus format 'xml'"),
        ("some text " * 200, ["--units", "0"], "units must be a positive whole number"),
        ("some text " * 200, ["--dropout", "1.5"], "dropout must be in [0, 1)"),
        ("some text " * 200, ["--learning-rate", "-1"], "learning rate must be positive"),
        ("some text " * 200, ["--test-fraction", "0.6"], "test fraction must be in [0, 0.5)"),
        # A learning rate that wrecks the weights: a model worse than a uniform guess is a failed run.
        ("the quick brown fox jumps. " * 400, ["--learning-rate", "1000"], "no better than a uniform guess"),
    ],
)
def test_bad_training_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, content, extra, message):
    corpus = tmp_path / "corpus.txt"
    if isinstance(content, bytes):
        corpus.write_bytes(content)
    elif content is not None:
        corpus.write_text(content)
    out = tmp_path / "out"
    code, line = run_error(capsys, ["train", "--corpus", str(corpus), "--out", str(out), *TINY, *extra])
    assert code == 2
    assert line.startswith("error: ") and message in line
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--temperature", "-0.5"], "temperature must be 0 or more"),
        (["--top-k", "0"], "top-k must be at least 1"),
        (["--top-p", "2"], "top-p must be in (0, 1]"),
        (["--max-tokens", "0"], "max tokens must be a positive"),
    ],
)
def test_nonsensical_generation_settings(bundle, capsys, extra, message):
    code, line = run_error(capsys, ["generate", "--model", str(bundle), *extra])
    assert code == 2 and message in line


def test_missing_half_written_and_foreign_bundles(tmp_path, bundle, capsys):
    code, line = run_error(capsys, ["generate", "--model", str(tmp_path / "nope")])
    assert code == 2 and "does not exist" in line

    half = tmp_path / "half"
    shutil.copytree(bundle, half)
    (half / "model.weights.h5").unlink()
    code, line = run_error(capsys, ["generate", "--model", str(half)])
    assert code == 2 and "missing model.weights.h5" in line

    no_manifest = tmp_path / "no-manifest"
    shutil.copytree(bundle, no_manifest)
    (no_manifest / "bundle.json").unlink()
    code, line = run_error(capsys, ["generate", "--model", str(no_manifest)])
    assert code == 2 and "not a model bundle or was not fully written" in line

    future = tmp_path / "future"
    shutil.copytree(bundle, future)
    manifest = json.loads((future / "bundle.json").read_text())
    manifest["format_version"] = 99
    (future / "bundle.json").write_text(json.dumps(manifest))
    code, line = run_error(capsys, ["generate", "--model", str(future)])
    assert code == 2 and "format version 99" in line

    damaged = tmp_path / "damaged"
    shutil.copytree(bundle, damaged)
    (damaged / "model.weights.h5").write_bytes(b"not hdf5")
    (damaged / "weights.npy").write_bytes(b"not an array")
    code, line = run_error(capsys, ["generate", "--model", str(damaged)])
    assert code == 2 and "weights" in line and "Traceback" not in line


def test_training_into_a_non_bundle_directory_is_refused(tmp_path, corpus_file, capsys):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, line = run_error(capsys, ["train", "--corpus", str(corpus_file), "--out", str(out), *TINY])
    assert code == 2 and "is not a model bundle" in line
    assert (out / "notes.txt").read_text() == "keep me"


def test_train_keeps_the_newest_messages_that_fit_max_corpus_chars(tmp_path, capsys):
    log = tmp_path / "chat.log"
    log.write_text("".join(f"[10:{i % 60:02d}] <user{i % 5}> message number {i} here\n" for i in range(3000)))
    # Seconds of training: what is checked is the corpus each run kept, not its model.
    args = ["train", "--corpus", str(log), "--format", "irc", *TINY, "--time-budget", "1", "--json"]
    assert main([*args, "--out", str(tmp_path / "all"), "--max-corpus-chars", "0"]) == 0
    everything = last_json_line(capsys)
    assert main([*args, "--out", str(tmp_path / "newest"), "--max-corpus-chars", "30000"]) == 0
    captured = capsys.readouterr()
    newest = json.loads(captured.out.strip().splitlines()[-1])
    assert "left out the oldest" in captured.err and "--max-corpus-chars 30000" in captured.err
    assert newest["train_tokens"] < 0.5 * everything["train_tokens"]


def test_a_corpus_cap_shorter_than_the_newest_message_is_one_line(tmp_path, capsys):
    log = tmp_path / "chat.log"
    log.write_text("[10:00] <ana> hello there\n[10:01] <bo> a longer message than the cap\n")
    args = ["train", "--corpus", str(log), "--format", "irc", "--out", str(tmp_path / "m"), *TINY]
    code, line = run_error(capsys, [*args, "--max-corpus-chars", "10"])
    assert code == 2 and "longer than --max-corpus-chars 10" in line
