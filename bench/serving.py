"""Serving benchmark: `/generate` at a steady rate over 1, 50 and 1,000 channel models, through the
command core, in a bot process that never imports TensorFlow.

    python -m bench.serving [--quick] [--seconds S] [--rate R] [--out FILE]     (make bench-serving)

Each part runs in a fresh child process, so one part's memory never shows in another's:

1. `setup` (TensorFlow allowed): the fleet production has. A workspace model fine-tuned from the
   packaged base model on Ubuntu IRC chat (30 s), and 4 channel models fine-tuned from it, each on 3,000
   messages of its own (10 s each), with the copy guards and lexicons their training gives them. Each
   channel of a scenario gets a copy of one of them (its own `weights.npy`; the other files hard-linked),
   published in the model store and registered in an embedded SQLite database as the channel's active
   model, its parent the workspace model (replies pass the channel's, the workspace model's and the base
   model's guards). Small models (GRU 128, for the load/evict cycles and the quick run) cannot descend
   from the base model: they have random weights, each copy its own, with the base model's lexicon and
   a guard of made-up messages.
2. `serve`, once per model count (TensorFlow blocked: importing it fails): the bots' modules imported
   and their services built as `chatsmith bot` builds them (default cache, 128 MB), then requests
   `CommandCore.handle(generate)` sent open-loop at `--rate` per second, each for a channel picked at
   random, and their time to the reply (the follow-up) recorded. Cooldowns are off (they would refuse
   most requests of one channel at 20/s); replies are the default 160 tokens.
3. `cycles` (TensorFlow blocked): bundle load times (`load_for_replies`, as the bots load), and the resident memory of
   1,000 loads of small models (GRU 128; 200 different ones in a full run, written for this alone)
   through a cache that keeps only a few, each model generating once.

Fine-tuned models end their messages where chat does (replies at the bot's defaults, up to 160 tokens);
random ones rarely do, so small models' replies run their full length, the slow case. Results go to
stdout and, for a full run, to `bench/SERVING.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.serving_parts import FineTunes, cycles, serve, setup
from bench.serving_report import format_report
from bench.sources import find_sources

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMITTED = REPO_ROOT / "bench" / "SERVING.md"
RECORD = REPO_ROOT / "bench" / "results" / "serving.json"

# Model count -> spec (`bench.serving_parts.SPECS`), for a full and a quick run. A full run serves
# channel models of the base model's size only: every channel model fine-tuned from it has that size.
SCENARIOS = {1: "base", 50: "base", 1000: "base"}
QUICK_SCENARIOS = {1: "base", 10: "base", 100: "small"}
# The load/evict cycles read small models (a few fit their 8 MB cache): written apart, and never served,
# when no served scenario has them.
CYCLE_MODELS = {200: "small"}


def fleet_plan(quick: bool) -> FineTunes:
    """How the base-size channel models are fine-tuned: on the Ubuntu IRC log (the committed slice of it
    when the log is not there), seconds to a full run, a few seconds to a quick one."""
    chat = find_sources().irc or REPO_ROOT / "tests" / "data" / "ubuntu-irc-head.log"
    if quick:
        return FineTunes(
            chat,
            workspace_seconds=4.0,
            channel_seconds=2.0,
            channels=2,
            workspace_messages=2_000,
            channel_messages=500,
        )
    return FineTunes(chat)


def bundles_to_write(scenarios: dict[int, str]) -> dict[int, str]:
    """The served scenarios, and the small models the load/evict cycles need if none of them has any."""
    return scenarios if "small" in scenarios.values() else {**scenarios, **CYCLE_MODELS}


def _progress(message: str) -> None:
    print(f"[serving] {message}", file=sys.stderr, flush=True)


def run_child(role: str, *args: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.serving", "--child", role, *args]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=environment)
    if completed.returncode != 0:
        raise SystemExit(f"error: bench.serving {role} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _child(arguments: list[str], scenarios: dict[int, str], quick: bool) -> dict[str, Any]:
    """One part of the run, in this (child) process: `setup`, `serve` or `cycles`."""
    role, work, *rest = arguments
    if role == "setup":
        # The scenarios to write: the run's, or those named as JSON (`bench.serving_rates`).
        wanted = {int(count): name for count, name in json.loads(rest[0]).items()} if rest else None
        return setup(Path(work), wanted or bundles_to_write(scenarios), fleet_plan(quick))
    if role == "serve":
        return serve(Path(work), int(rest[0]), float(rest[1]), float(rest[2]))
    return cycles(Path(work), int(rest[0]), scenarios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.serving",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1, 10 and 100 models, 8 s each")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per run (default 45; quick 8)")
    parser.add_argument("--rate", type=float, default=20.0, help="generate requests per second (default 20)")
    parser.add_argument("--cycles", type=int, default=1000, help="load/evict cycles (default 1000)")
    parser.add_argument(
        "--out", type=Path, default=None, help="Markdown report (default: bench/SERVING.md for a full run)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    scenarios = QUICK_SCENARIOS if args.quick else SCENARIOS
    if args.child:
        print(json.dumps(_child(args.child, scenarios, args.quick)))
        return 0
    seconds = args.seconds if args.seconds is not None else (8.0 if args.quick else 45.0)
    work = Path(tempfile.mkdtemp(prefix="chatsmith-serving-"))
    quick = ["--quick"] if args.quick else []
    try:
        _progress(f"writing {sum(bundles_to_write(scenarios))} bundles in {work}")
        made = run_child("setup", str(work), *quick)
        variants: list[dict[str, Any]] = []
        for label in ("With the base model's lexicon in every bundle", "Without a lexicon"):
            if variants:
                from textgen.lexicon import LEXICON_FILE

                for lexicon in (work / "models").glob(f"workspace-*/channel-*/model-v1/{LEXICON_FILE}"):
                    lexicon.unlink()
            _progress(label)
            runs = []
            for count in scenarios:
                _progress(f"{count} models: {args.rate:g}/s for {seconds:g} s")
                run = run_child("serve", str(work), str(count), str(args.rate), str(seconds), *quick)
                _progress(
                    f"  p50 {run['p50_ms']:.0f} ms, p99 {run['p99_ms']:.0f} ms, peak {run['rss_peak_mb']:.0f} MB"
                )
                runs.append(run)
            _progress("bundle loads and load/evict cycles")
            cycles_result = run_child("cycles", str(work), str(args.cycles), *quick)
            variants.append({"label": label, "runs": runs, "cycles": cycles_result})
        _progress("batching across models (bench.cross_model_batching)")
        batching = subprocess.run(
            [sys.executable, "-m", "bench.cross_model_batching"],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            check=True,
        ).stdout
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} CPUs, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} at the end.",
        "rate": args.rate,
        "seconds": seconds,
        "scenarios": scenarios,
        "bundles": made,
        "variants": variants,
        "cross_model_batching": batching,
    }
    report = format_report(record)
    print(report)
    out = args.out or (COMMITTED if not args.quick else None)
    if out is not None:
        out.write_text(report, encoding="utf-8")
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
