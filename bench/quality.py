"""Benchmarks 5 and 6: held-out nats per character after a fixed wall-clock training budget.

Both run `chatsmith train` (the CLI, its defaults) in a subprocess, so what is measured is what a user
gets; the budget counts from the command's start, data preparation included. Nats per character is
the CLI's `val_nats_per_char`: total negative log-likelihood of the held-out messages (natural log,
framing tokens included) over their characters, read with continuous state (64 long segments side by
side), which makes byte, character and word tokenizers comparable.

5. `shakespeare`: Tiny Shakespeare, first 90% train, last 10% held out (the CLI's default split of one
   plain-text document), `--time-budget 100`. Target <= 1.55; nanoGPT's CPU recipe (1.89) and a plain
   Keras character LSTM (1.68) are shown as published reference rows from docs/benchmarks.md.
6. `chat`: the IRC log as messages; the last `CHAT_HELD_OUT` of the messages are held out, training uses
   the `CHAT_TRAIN_CHARS` characters of messages just before them. Byte, character and word tokenizers,
   the same budget each, the same held-out messages.
"""

from __future__ import annotations

import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.children import ONE_BLAS_THREAD, ChildResult, child_env, run_child
from bench.report import Outcome, Row
from bench.settings import RunSettings

SHAKESPEARE_TARGET = 1.55
# Published figures for the same protocol on this kind of machine (docs/benchmarks.md).
PUBLISHED = (("nanoGPT CPU recipe, 100 s", 1.89), ("plain Keras char LSTM, 90 s", 1.68))
# 2% of ~195k messages is ~3,900 messages (~250k characters): plenty for a stable figure, and its
# evaluation (one recurrent step per held-out token, after training) stays near 10 s per tokenizer.
CHAT_HELD_OUT = 0.02
# More text than a 60 s budget gets through once, so no run is short of data.
CHAT_TRAIN_CHARS = 4_000_000
TOKENIZERS = ("byte", "char", "word")
QUICK_SHAKESPEARE_CHARS = 200_000


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _train(
    corpus: Path, out: Path, fmt: str, budget: float, extra: list[str], log_name: str
) -> tuple[dict[str, Any], ChildResult]:
    args = [
        "-m",
        "chatsmith.cli",
        "train",
        "--corpus",
        str(corpus),
        "--format",
        fmt,
        "--out",
        str(out),
        "--time-budget",
        str(budget),
        "--json",
        *extra,
    ]
    # Generous: training is bounded by the budget, the held-out evaluation afterwards is not. That
    # evaluation runs the NumPy engine; one BLAS thread keeps it from stalling on a busy machine (it
    # changes how long the figure takes to compute, not the figure; training runs in TensorFlow).
    child = run_child(args, timeout=budget + 600, env=child_env(ONE_BLAS_THREAD), log_name=log_name)
    return child.last_json(), child


def _figures(metrics: dict[str, Any], child: ChildResult, budget: float) -> dict[str, Any]:
    keys = (
        "val_nats_per_char",
        "val_chars",
        "train_tokens",
        "val_tokens",
        "vocab_size",
        "params",
        "epochs",
        "steps",
        "train_tokens_per_sec",
        "seconds",
        "stopped",
    )
    return {
        **{key: metrics.get(key) for key in keys},
        "time_budget": budget,
        "wall_seconds": child.seconds,
        "peak_rss_bytes": child.max_rss_bytes,
    }


def run_shakespeare(settings: RunSettings) -> Outcome:
    """Benchmark 5: Tiny Shakespeare nats/char after `chatsmith train --time-budget 100`."""
    quick, sources = settings.quick, settings.sources
    budget = 8 if quick else 100
    with tempfile.TemporaryDirectory(prefix="chatsmith-bench-") as tmp:
        corpus = sources.shakespeare
        if quick:
            # The held-out evaluation and validation passes scale with the corpus; a slice keeps quick quick.
            corpus = Path(tmp) / "tinyshakespeare-slice.txt"
            corpus.write_text(sources.shakespeare.read_text(encoding="utf-8")[:QUICK_SHAKESPEARE_CHARS])
        _progress(
            f"shakespeare: chatsmith train, defaults, --time-budget {budget} ({corpus.stat().st_size:,} bytes)"
        )
        metrics, child = _train(corpus, Path(tmp) / "model", "text", budget, [], "shakespeare")
    figures = _figures(metrics, child, budget)
    figures["source"] = sources.shakespeare_origin
    value = metrics.get("val_nats_per_char")
    _progress(f"shakespeare: {value:.4f} nats/char" if value is not None else "shakespeare: no figure")
    rows = [
        Row(
            name=f"Tiny Shakespeare held-out, {budget} s budget",
            project_value=value,
            unit="nats/char",
            target=f"≤{SHAKESPEARE_TARGET}",
            met=None if value is None else value <= SHAKESPEARE_TARGET,
            note="quick: budget too short to mean anything" if quick else "",
        )
    ]
    for label, published in PUBLISHED:
        rows.append(
            Row(
                name=f"  vs {label}",
                baseline="published",
                baseline_value=published,
                project_value=value,
                unit="nats/char",
                # Above 1: the project reaches a lower loss than the reference in the same time.
                ratio=None if value is None else published / value,
                note="reference",
            )
        )
    return Outcome(rows=rows, figures=figures)


def _chat_split(irc: Path, quick: bool) -> tuple[list[str], list[str]]:
    from textgen.corpus import load_corpus

    messages = load_corpus(irc, "irc").messages
    held_out_count = 150 if quick else max(1, int(len(messages) * CHAT_HELD_OUT))
    held_out = messages[-held_out_count:]
    budget_chars = 100_000 if quick else CHAT_TRAIN_CHARS
    train: list[str] = []
    chars = 0
    # Walk back from the held-out tail: the most recent chat is the most like what is held out.
    for message in reversed(messages[:-held_out_count]):
        if chars >= budget_chars:
            break
        train.append(message)
        chars += len(message)
    train.reverse()
    return train, held_out


def _write_jsonl(path: Path, messages: list[str]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for message in messages:
            handle.write(json.dumps({"text": message}, ensure_ascii=False) + "\n")


def run_chat(settings: RunSettings) -> Outcome:
    """Benchmark 6: IRC chat nats/char for byte, char and word tokenizers, same budget and held-out set."""
    quick, sources = settings.quick, settings.sources
    if sources.irc is None:
        return Outcome(rows=[Row(name="chat held-out nats/char", note="skipped: no IRC log")])
    budget = 6 if quick else 60
    train, held_out = _chat_split(sources.irc, quick)
    figures: dict[str, Any] = {
        "train_messages": len(train),
        "train_chars": sum(len(m) for m in train),
        "held_out_messages": len(held_out),
        "held_out_chars": sum(len(m) for m in held_out),
        "context": "continuous state across the held-out messages (64 segments)",
    }
    results: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory(prefix="chatsmith-bench-") as tmp:
        train_path, held_out_path = Path(tmp) / "train.jsonl", Path(tmp) / "held_out.jsonl"
        _write_jsonl(train_path, train)
        _write_jsonl(held_out_path, held_out)

        def train_with(tokenizer: str) -> tuple[dict[str, Any], ChildResult]:
            _progress(f"chat: chatsmith train --tokenizer {tokenizer}, --time-budget {budget}")
            return _train(
                train_path,
                Path(tmp) / f"model-{tokenizer}",
                "jsonl",
                budget,
                ["--tokenizer", tokenizer, "--val-corpus", str(held_out_path)],
                f"chat-{tokenizer}",
            )

        if quick:
            # Quick figures mean nothing, so the three runs share the machine: their fixed start-up,
            # tracing and evaluation costs overlap instead of adding up.
            with ThreadPoolExecutor(max_workers=len(TOKENIZERS)) as pool:
                runs = dict(zip(TOKENIZERS, pool.map(train_with, TOKENIZERS), strict=True))
        else:
            # One at a time: each run's budget must buy the same compute.
            runs = {tokenizer: train_with(tokenizer) for tokenizer in TOKENIZERS}
        for tokenizer, (metrics, child) in runs.items():
            figures[tokenizer] = _figures(metrics, child, budget)
            results[tokenizer] = metrics.get("val_nats_per_char")
            _progress(f"chat: {tokenizer}: {results[tokenizer]} nats/char")
    rows = []
    byte = results.get("byte")
    for tokenizer in TOKENIZERS:
        value = results[tokenizer]
        note = {"byte": "project default", "char": "", "word": "lossy: lowercased, no punctuation, <unk>"}[
            tokenizer
        ]
        rows.append(
            Row(
                name=f"chat (IRC) held-out, {budget} s, {tokenizer} tokenizer",
                baseline="byte run" if tokenizer != "byte" else "",
                baseline_value=byte if tokenizer != "byte" else None,
                project_value=value,
                unit="nats/char",
                # Above 1: this tokenizer reaches a lower loss than bytes in the same time.
                ratio=None if tokenizer == "byte" or not value or byte is None else byte / value,
                note=note,
            )
        )
    return Outcome(rows=rows, figures=figures)
