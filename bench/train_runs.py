"""`chatsmith train` in a subprocess: what a user gets, measured from the outside.

The CLI runs with its defaults except what a benchmark passes; the budget counts from the command's
start, data preparation included. Its `--json` metrics are read back with the wall time and peak
resident memory of the whole process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.children import ONE_BLAS_THREAD, ChildResult, child_env, run_child

# Seconds allowed past the budget before a run is stopped: the budget bounds training and keeps room
# for the final evaluation, but a stalled run must not hold the whole benchmark.
OVERRUN_SECONDS = 600

# The figures kept from the CLI's metrics for the record.
METRIC_KEYS = (
    "test_nats_per_char",
    "test_chars",
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


@dataclass
class TrainRun:
    """One finished `chatsmith train --json`: its metrics, the process's wall time and peak RSS."""

    metrics: dict[str, Any]
    child: ChildResult
    budget: float

    def figures(self) -> dict[str, Any]:
        """The metrics worth recording, with the budget, wall seconds and peak RSS of the process."""
        return {
            **{key: self.metrics.get(key) for key in METRIC_KEYS},
            "time_budget": self.budget,
            "wall_seconds": self.child.seconds,
            "peak_rss_bytes": self.child.max_rss_bytes,
        }


def train(
    corpus: Path,
    out: Path,
    fmt: str,
    budget: float,
    extra: list[str],
    log_name: str,
    checkout: Path | None = None,
) -> TrainRun:
    """Run `chatsmith train --corpus corpus --format fmt --out out --time-budget budget --json extra...`,
    with the code of `checkout` (another clone or `git worktree` of the project) where one is given."""
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
    # The final evaluation runs the NumPy engine; one BLAS thread keeps it from stalling on a busy
    # machine (it changes how long the figure takes to compute, not the figure; training runs in
    # TensorFlow).
    env = child_env(ONE_BLAS_THREAD)
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    child = run_child(args, timeout=budget + OVERRUN_SECONDS, env=env, cwd=checkout, log_name=log_name)
    return TrainRun(metrics=child.last_json(), child=child, budget=budget)
