"""`python -m bench [--quick] [--only NAME ...]`: run the benchmarks, print one table, write JSON and a summary.

Benchmarks, in order (names for `--only`):
    generation   200 tokens, one stream, default model and LSTM 512: engine vs seed-style predict loop
                 (timed on the same 200 tokens in a full run) vs NumPy floor (targets >=100x, <=3x)
    throughput   32 mixed requests batched vs one after another (target >=8x tokens/s)
    bilstm       BiLSTM engine vs its seed-style predict loop (target >=20x)
    memory       training-data peak RSS, seed-style vs project, 0.25 / 1 / 4 MB, and its growth
    shakespeare  Tiny Shakespeare test nats/char, `chatsmith train --time-budget 100`, seeds 0-2: mean
                 and worst (target worst <=1.55); a Keras char LSTM, same budget, same text: its ratio
    chat         IRC chat test nats/char, the same with the CLI's default held-out parts (target worst
                 <=1.80), the Keras baseline, and each bundle's recovery gap (target <0.1 nats/token)
    tokenizers   IRC chat test nats/char for byte and char tokenizers (ratio) and word (apart), 60 s each
    irc-memory   peak RSS of training on the whole 16.9 MB IRC log (target <2 GB)
    output       1000 bot replies each from the base model and one fine-tuned on chat, through the output
                 filter: slurs (target 0), offensive by a classifier (<=1/1000), copies (<=1%), the
                 filter's false positives on 1000 clean chat messages, its time per reply (<1 ms median)
    replies      a channel the base model never saw (Stripe IRC, newest third held out): 600 replies each,
                 3 seeds, from markovify (state 2), the base model, a model trained 60 s from scratch and
                 the base fine-tuned 60 s through /generate's path under each decoding (the defaults,
                 the temperature curve, channel lengths, best-of-N, typical, min-p, context): how well
                 a classifier tells them from the channel's real messages (AUC; real vs real
                 calibration), copies (<=1%), distinct word pairs, length, CPU per reply, held-out
                 nats/char; 20 replies of each printed in the summary

Ratios compare against baselines run by this same script; figures measured elsewhere are listed apart
as references. Progress goes to stderr; the table, references and absolute figures to stdout; the record
to `bench/results/latest.json`. A complete full run (no --quick, --tiny or --only) also writes the
Markdown summary to `bench/RESULTS.md`, which is committed; other runs write it beside the record.
Exit status 1 if a benchmark failed to run (a missed target is not a failure of the script: it is
reported in the table).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.children import set_log_dir
from bench.generation import run_bilstm, run_generation, run_throughput
from bench.memory import run_irc_memory, run_memory
from bench.output_safety import run_output_safety
from bench.quality import run_chat, run_shakespeare
from bench.references import format_references, references_record
from bench.reply_quality import run_reply_quality
from bench.reply_reading import reading as replies_reading
from bench.report import Outcome, Row, format_figures, format_table, write_results
from bench.settings import RunSettings
from bench.sources import REPO_ROOT, find_sources
from bench.summary import write_summary
from bench.tokenizer_comparison import run_tokenizers
from errortext import error_line

DEFAULT_RESULTS = REPO_ROOT / "bench" / "results" / "latest.json"
# The summary of a complete full run is committed; partial, quick and tiny runs stay beside the record.
COMMITTED_SUMMARY = REPO_ROOT / "bench" / "RESULTS.md"

BENCHMARKS: dict[str, Callable[[RunSettings], Outcome]] = {
    "generation": run_generation,
    "throughput": run_throughput,
    "bilstm": run_bilstm,
    "memory": run_memory,
    "shakespeare": run_shakespeare,
    "chat": run_chat,
    "tokenizers": run_tokenizers,
    "irc-memory": run_irc_memory,
    "output": run_output_safety,
    "replies": run_reply_quality,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short budgets, small sizes, fewer seeds: checks the code paths in about 3 minutes",
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="also shrink the models to a few units (the test suite's smoke run)",
    )
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), metavar="NAME", help="run only these")
    parser.add_argument(
        "--results",
        type=Path,
        default=DEFAULT_RESULTS,
        help=f"JSON record to write (default: {DEFAULT_RESULTS})",
    )
    parser.add_argument(
        "--summary",
        type=Path,
        default=None,
        help=f"Markdown summary to write (default: {COMMITTED_SUMMARY.relative_to(REPO_ROOT)} for a "
        "complete full run, else summary.md beside the record)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="directory with tinyshakespeare.txt and ubuntu-irc-train.log",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.monotonic()
    sources = find_sources(args.data_dir) if args.data_dir else find_sources()
    # Subprocess stderr (training progress, worker notes) is kept beside the record for reading later.
    set_log_dir(args.results.parent / "logs")
    settings = RunSettings(quick=args.quick or args.tiny, sources=sources, tiny=args.tiny)
    selected = args.only or list(BENCHMARKS)
    rows: list[Row] = []
    figures: dict[str, Any] = {}
    reading: str | None = None
    failed: list[str] = []
    skipped = [name for name in BENCHMARKS if name not in selected]
    for name in BENCHMARKS:
        if name not in selected:
            continue
        print(f"[bench] == {name} ({time.monotonic() - started:.0f} s elapsed)", file=sys.stderr, flush=True)
        bench_started = time.monotonic()
        try:
            outcome = BENCHMARKS[name](settings)
        except Exception as error:  # one broken benchmark must not lose the others' figures
            traceback.print_exc(file=sys.stderr)
            failed.append(name)
            outcome = Outcome(rows=[Row(name=name, note=f"FAILED: {error_line(error)[:80]}")])
        outcome.figures["benchmark_seconds"] = time.monotonic() - bench_started
        if name == "replies" and "writers" in outcome.figures:
            reading = replies_reading(outcome.figures)  # for the summary, not the figures' listing
            for writer in outcome.figures["writers"].values():
                writer.pop("samples", None)
        rows.extend(outcome.rows)
        figures[name] = outcome.figures
    elapsed = time.monotonic() - started
    write_results(
        args.results,
        rows,
        figures,
        quick=settings.quick,
        elapsed=elapsed,
        skipped=skipped,
        references=references_record(),
    )
    mode = "full run" if not skipped else f"full run of {', '.join(selected)} only"
    if settings.quick:
        mode = "quick mode: sizes and budgets shrunk, figures indicative only"
    if settings.tiny:
        mode = "tiny smoke run: models shrunk, figures meaningless"
    summary = args.summary or _default_summary(args.results, complete=not settings.quick and not skipped)
    command = " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)])
    write_summary(summary, rows, figures, mode=mode, elapsed=elapsed, command=command)
    if reading is not None:
        with summary.open("a", encoding="utf-8") as out:
            out.write("\n" + reading)
    print(f"\nchatsmith benchmarks ({mode}; {elapsed:.0f} s)\n")
    print(format_table(rows))
    print("\nreferences, measured elsewhere (not run by this script, never a ratio above):")
    print(format_references())
    print("\nabsolute figures:")
    print(format_figures(figures))
    print(f"\nrecord written to {args.results}; summary to {summary}")
    if failed:
        print(f"[bench] failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _default_summary(results: Path, *, complete: bool) -> Path:
    return COMMITTED_SUMMARY if complete else results.parent / "summary.md"
