"""The highest `/generate` rate one bot process holds with 50 real channel models.

    python -m bench.serving_rates [--rates 20,40,60,80] [--models 50] [--seconds 30] [--quick]

The fleet is built once, as `bench.serving` builds it (a workspace model fine-tuned from the packaged base
model, channel models fine-tuned from it, each with its own guard and lexicon), and then served at each
rate in turn, each in a fresh bot process without TensorFlow (`bench.serving_parts.serve`). A rate is
held when every request is answered (none refused as busy) and the follow-up p99 is within the replies'
goal (300 ms). Rates run in the order given, one after the other in the same script, so the rows compare.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.serving import run_child

# The follow-up p99 a held rate stays within (the replies' goal).
HELD_P99_MS = 300.0


def held(run: dict[str, Any]) -> bool:
    """Whether a serving run kept up: nothing refused as busy, and p99 within `HELD_P99_MS`."""
    return run["busy"] == 0 and run["p99_ms"] <= HELD_P99_MS


def format_rates(runs: list[dict[str, Any]], models: int, seconds: float, uptime: str) -> str:
    """A Markdown table of the runs, one row per rate, and the highest rate held."""
    lines = [
        f"{models} channel models of the base model's size (real fine-tunes), {seconds:g} s per rate, "
        f"one bot process; {uptime}",
        "",
        "| rate | follow-up p50 | p99 | peak memory | bot CPU (per request) | model loads | mean reply | answered / busy / other | held |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        lines.append(
            f"| {run['rate']:g}/s | {run['p50_ms']:.0f} ms | {run['p99_ms']:,.0f} ms | "
            f"{run['rss_peak_mb']:.0f} MB | {run['cpu_percent']:.0f}% ({run['cpu_ms_per_request']:.0f} ms) | "
            f"{run['model_loads']} | {run.get('mean_reply_chars', 0):.0f} chars | "
            f"{run['answered']} / {run['busy']} / {run['other']} | {'yes' if held(run) else 'no'} |"
        )
    holding = [run["rate"] for run in runs if held(run)]
    best = f"{max(holding):g} requests per second" if holding else "none of these rates"
    lines += ["", f"Highest rate held (p99 ≤ {HELD_P99_MS:.0f} ms, none busy): {best}."]
    return "\n".join(lines)


def _uptime() -> str:
    return "load average " + ", ".join(f"{value:.1f}" for value in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.serving_rates", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rates", default="20,40,60,80", help="requests per second, comma-separated")
    parser.add_argument("--models", type=int, default=50, help="channel models served (default 50)")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds per rate (default 30)")
    parser.add_argument("--quick", action="store_true", help="a fleet fine-tuned for seconds (a smoke test)")
    args = parser.parse_args(argv)
    try:
        rates = [float(rate) for rate in args.rates.split(",")]
    except ValueError:
        parser.error(f"--rates must be numbers separated by commas, not {args.rates!r}")
    if args.models < 1 or any(rate <= 0 for rate in rates):
        parser.error("--models and every rate must be positive")
    work = Path(tempfile.mkdtemp(prefix="chatsmith-serving-rates-"))
    quick = ["--quick"] if args.quick else []
    runs = []
    try:
        print(f"[serving-rates] building the fleet in {work}", file=sys.stderr, flush=True)
        run_child("setup", str(work), json.dumps({args.models: "base"}), *quick)
        before = f"before: {_uptime()} at {time.strftime('%H:%M UTC', time.gmtime())}"
        for rate in rates:
            print(f"[serving-rates] {args.models} models at {rate:g}/s", file=sys.stderr, flush=True)
            run = run_child("serve", str(work), str(args.models), str(rate), str(args.seconds), *quick)
            runs.append(run)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    uptime = f"{before}; after: {_uptime()} at {time.strftime('%H:%M UTC', time.gmtime())}"
    print(format_rates(runs, args.models, args.seconds, uptime))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
