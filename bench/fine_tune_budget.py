"""How a channel model's held-out figure improves with the fine-tune budget, and what a trainer job costs.

Fine-tunes the packaged base model on a chat log (the oldest 80% of its messages; the trainer's own
validation part is the newest 10% of those) for each budget, and once with the trainer's plateau stop
(`trainer.config.PLATEAU_STOP`) under the largest budget as its ceiling; every model is scored on the
newest 20% of the messages, which no run sees, in nats per character. CPU seconds
(`time.process_time`, all threads of this process) are reported beside wall-clock seconds because the
machine may be shared: wall time then says little, CPU time what the job cost.

`--jobs` runs instead the trainer's job as it was and as it is, one after the other on the same text:
before the plateau stop (900 s, the rate decaying over the budget, epoch patience), with the plateau stop
alone, and today's (`TrainerConfig().textgen_train_config()`: a few passes, the plateau stop, 900 s
ceiling), with channel models per CPU-hour against the first.

    python -m bench.fine_tune_budget --corpus /path/to/channel.log --budgets 30 60 120 300
    python -m bench.fine_tune_budget --corpus tinyshakespeare.txt --format lines --budgets 900
    python -m bench.fine_tune_budget --corpus /path/to/channel.log --jobs
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from chatsmith.base_model import find_base_model
from textgen.bundle import load_serving_bundle
from textgen.corpus import FORMATS, load_corpus
from textgen.evaluate import evaluate_messages
from textgen.spec import TrainConfig
from textgen.training import train_model
from trainer.config import PLATEAU_STOP, TrainerConfig

HELD_OUT_SHARE = 0.2


def fine_tune(
    base: Path, train: list[str], held_out: list[str], config: TrainConfig, out: Path
) -> dict[str, Any]:
    """One fine-tune of `base` as `config` says, scored on `held_out`."""
    wall, cpu = time.monotonic(), time.process_time()
    result = train_model(train, out, config=config, base=base, started=wall)
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    score = evaluate_messages(load_serving_bundle(result.bundle), held_out)
    return {
        "budget_s": config.time_budget,
        "plateau_stop": (
            {"check_every": config.check_every, "patience": config.patience} if config.check_every else None
        ),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "steps": result.metrics.get("steps"),
        "epochs": result.metrics.get("epochs"),
        "stopped": result.metrics.get("stopped"),
        "validations": result.metrics.get("validations"),
        "held_out_nats_per_char": round(score.nats_per_char, 4),
    }


def trainer_jobs() -> dict[str, TrainConfig]:
    """The trainer's job as it was and as it is, the first the baseline."""
    return {
        "before the plateau stop: 900 s, epoch patience": TrainConfig(time_budget=900),
        "the plateau stop alone, ceiling 900 s": TrainConfig(**PLATEAU_STOP, time_budget=900),
        "today's job": TrainerConfig().textgen_train_config(),
    }


def run_jobs(
    base: Path, train: list[str], held_out: list[str], scratch: Path, seed: int | None = None
) -> list[str]:
    """Every job of `trainer_jobs` in turn (with `seed` where given); the Markdown table, channel models
    per CPU-hour against the first."""
    lines = [
        "| job | wall s | CPU s | steps | passes | stopped | held-out nats/char | channel models per CPU-hour |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    baseline = None
    for number, (name, config) in enumerate(trainer_jobs().items()):
        config = config if seed is None else replace(config, seed=seed)
        row = fine_tune(base, train, held_out, config, scratch / f"job-{number}")
        print(json.dumps({"job": name, **row}), flush=True)
        per_hour = 3600 / row["cpu_s"]
        baseline = baseline or per_hour
        lines.append(
            f"| {name} | {row['wall_s']} | {row['cpu_s']} | {row['steps']} | {row['epochs']} | "
            f"{row['stopped']} | {row['held_out_nats_per_char']:.3f} | {per_hour:.1f} "
            f"({per_hour / baseline:.1f}x) |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run every budget, then the plateau stop, printing one JSON line per run and a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a chat log in time order")
    parser.add_argument(
        "--format",
        default="auto",
        choices=["auto", *FORMATS],
        help="the corpus format (default: detected); `lines` for text",
    )
    parser.add_argument("--budgets", type=float, nargs="+", default=[30, 60, 120, 300])
    parser.add_argument("--base", type=Path, default=None, help="base bundle (default: the packaged one)")
    parser.add_argument("--plateau-only", action="store_true", help="run only the plateau stop")
    parser.add_argument("--check-every", type=float, help="seconds between checks (default: the trainer's)")
    parser.add_argument("--patience", type=int, help="checks without a new best (default: the trainer's)")
    parser.add_argument("--jobs", action="store_true", help="the trainer's job as it was and as it is")
    parser.add_argument("--seed", type=int, help="with --jobs: the training seed (default: the jobs' own, 0)")
    args = parser.parse_args(argv)
    base = find_base_model(args.base)
    if base is None:
        parser.error("no base model found; pass --base")
    messages = load_corpus(args.corpus, args.format, keep_records=False).messages
    cut = int(len(messages) * (1 - HELD_OUT_SHARE))
    train, held_out = messages[:cut], messages[cut:]
    untouched = evaluate_messages(load_serving_bundle(base), held_out).nats_per_char
    print(json.dumps({"base_model_untouched_nats_per_char": round(untouched, 4), "held_out": len(held_out)}))
    if args.jobs:
        with tempfile.TemporaryDirectory() as scratch:
            table = run_jobs(base, train, held_out, Path(scratch), args.seed)
        print(f"\nbase model untouched: {untouched:.3f} nats/char on {len(held_out)} held-out messages\n")
        print("\n".join(table))
        return 0
    plateau = {**PLATEAU_STOP}
    if args.check_every is not None:
        plateau["check_every"] = args.check_every
    if args.patience is not None:
        plateau["patience"] = args.patience
    runs: list[tuple[float, dict[str, Any] | None]] = [
        (budget, None) for budget in args.budgets if not args.plateau_only
    ]
    runs.append((max(args.budgets), plateau))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for number, (budget, stop_rule) in enumerate(runs):
            config = TrainConfig(**(stop_rule or {}), time_budget=budget)
            row = fine_tune(base, train, held_out, config, Path(scratch) / f"run-{number}")
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(f"\nbase model untouched: {untouched:.3f} nats/char on {len(held_out)} held-out messages\n")
    print("| run | wall s | CPU s | steps | stopped | held-out nats/char |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        stop = row["plateau_stop"]
        name = (
            f"plateau stop (every {stop['check_every']:g} s, patience {stop['patience']}), "
            f"ceiling {row['budget_s']:g} s"
            if stop
            else f"{row['budget_s']:g} s"
        )
        print(
            f"| {name} | {row['wall_s']} | {row['cpu_s']} | {row['steps']} | {row['stopped']} | "
            f"{row['held_out_nats_per_char']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
