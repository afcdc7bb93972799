"""Benchmark 7, `tokenizers`: byte, character and word tokenizers on chat, the same budget each.

`chatsmith train --tokenizer T` (CLI defaults otherwise) on the same messages of the IRC log, 60 s each,
one at a time. The messages are cut by this script into three files passed to the CLI: the test file
(`--test-corpus`: the last `CHAT_TEST` of the messages, the reported `test_nats_per_char`), the
validation file (`--val-corpus`: the `CHAT_VALIDATION` before them, which picks the weights) and the
training file (the `CHAT_TRAIN_CHARS` characters of messages before those). Nothing is tuned on the
test file.

Nats per character compares lossless tokenizers: the character run is compared with the byte run (the
project's default). The word tokenizer lowercases, drops punctuation and maps rare words to <unk>: it
predicts less than the text, so its figure is not comparable and is shown on its own row, without a ratio.
"""

from __future__ import annotations

import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.report import Outcome, Row
from bench.settings import RunSettings
from bench.train_runs import TrainRun, train

# 1% of ~195k messages is ~1,950 messages (~115k characters) for each held-out file: a stable figure,
# and both final evaluations (validation and test) together stay near 10 s per tokenizer.
CHAT_TEST = 0.01
CHAT_VALIDATION = 0.01
# More text than a 60 s budget gets through once, so no run is short of data.
CHAT_TRAIN_CHARS = 4_000_000
QUICK_HELD_OUT_MESSAGES = 75
QUICK_TRAIN_CHARS = 100_000
LOSSLESS = ("byte", "char")
LOSSY = ("word",)
TOKENIZERS = LOSSLESS + LOSSY
LOSSY_NOTE = "not comparable: drops case, punctuation and rare words"


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def chat_split(irc: Path, quick: bool) -> tuple[list[str], list[str], list[str]]:
    """(train, validation, test) messages: test last, validation just before, training before that."""
    from textgen.corpus import load_corpus

    messages = load_corpus(irc, "irc").messages
    test_count = QUICK_HELD_OUT_MESSAGES if quick else max(1, int(len(messages) * CHAT_TEST))
    val_count = QUICK_HELD_OUT_MESSAGES if quick else max(1, int(len(messages) * CHAT_VALIDATION))
    test = messages[-test_count:]
    validation = messages[-test_count - val_count : -test_count]
    budget_chars = QUICK_TRAIN_CHARS if quick else CHAT_TRAIN_CHARS
    train: list[str] = []
    chars = 0
    # Walk back from the held-out messages: the most recent chat is the most like what is held out.
    for message in reversed(messages[: -test_count - val_count]):
        if chars >= budget_chars:
            break
        train.append(message)
        chars += len(message)
    train.reverse()
    return train, validation, test


def _write_jsonl(path: Path, messages: list[str]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for message in messages:
            handle.write(json.dumps({"text": message}, ensure_ascii=False) + "\n")


def run_tokenizers(settings: RunSettings) -> Outcome:
    """Benchmark 7: chat test nats/char of byte, char and word tokenizers, same budget and held-out files."""
    quick, sources = settings.quick, settings.sources
    if sources.irc is None:
        return Outcome(rows=[Row(name="chat tokenizers test nats/char", note="skipped: no IRC log")])
    budget = 6 if quick else 60
    train_messages, validation, test = chat_split(sources.irc, quick)
    figures: dict[str, Any] = {
        "figure": "test_nats_per_char on the test file (--test-corpus); --val-corpus picks the weights",
        "train_messages": len(train_messages),
        "train_chars": sum(len(m) for m in train_messages),
        "val_messages": len(validation),
        "test_messages": len(test),
        "test_chars": sum(len(m) for m in test),
        "context": "segments of whole messages from a fresh state (textgen.evaluate)",
    }
    with tempfile.TemporaryDirectory(prefix="chatsmith-bench-") as tmp:
        paths = {name: Path(tmp) / f"{name}.jsonl" for name in ("train", "validation", "test")}
        for name, messages in (("train", train_messages), ("validation", validation), ("test", test)):
            _write_jsonl(paths[name], messages)
        held_out = ["--val-corpus", str(paths["validation"]), "--test-corpus", str(paths["test"])]

        def train_with(tokenizer: str) -> TrainRun:
            _progress(f"tokenizers: chatsmith train --tokenizer {tokenizer}, --time-budget {budget}")
            extra = ["--tokenizer", tokenizer, *held_out]
            out = Path(tmp) / f"model-{tokenizer}"
            return train(paths["train"], out, "jsonl", budget, extra, f"tokenizers-{tokenizer}")

        if quick:
            # Quick figures mean nothing, so the three runs share the machine: their fixed start-up,
            # tracing and evaluation costs overlap instead of adding up.
            with ThreadPoolExecutor(max_workers=len(TOKENIZERS)) as pool:
                runs = dict(zip(TOKENIZERS, pool.map(train_with, TOKENIZERS), strict=True))
        else:
            # One at a time: each run's budget must buy the same compute.
            runs = {tokenizer: train_with(tokenizer) for tokenizer in TOKENIZERS}
    results: dict[str, float | None] = {}
    for tokenizer, run in runs.items():
        figures[tokenizer] = run.figures()
        results[tokenizer] = run.metrics.get("test_nats_per_char")
        _progress(f"tokenizers: {tokenizer}: {results[tokenizer]} nats/char")
    return Outcome(rows=tokenizer_rows(results, budget), figures=figures)


def tokenizer_rows(results: dict[str, float | None], budget: float) -> list[Row]:
    """The byte row, the char row with its ratio to bytes, and the word row apart, without a ratio."""
    byte = results.get("byte")
    rows = []
    for tokenizer in TOKENIZERS:
        value = results.get(tokenizer)
        name = f"chat (IRC) test, {budget} s, {tokenizer} tokenizer"
        if tokenizer == "byte":
            rows.append(Row(name=name, project_value=value, unit="nats/char", note="project default"))
        elif tokenizer in LOSSLESS:
            rows.append(
                Row(
                    name=f"  {name} vs byte",
                    baseline="byte run",
                    baseline_value=byte,
                    project_value=value,
                    unit="nats/char",
                    # Above 1: this tokenizer reaches a lower loss than bytes in the same time.
                    ratio=byte / value if byte is not None and value else None,
                )
            )
        else:
            rows.append(Row(name=name, project_value=value, unit="nats/char", note=LOSSY_NOTE))
    return rows
