"""Benchmarks 5 and 6: test nats per character across seeds, against a Keras baseline run beside them.

For each corpus, `chatsmith train` (its defaults, `--time-budget 100`) runs with seeds 0, 1 and 2, one
at a time so that each budget buys the same compute. The figure is the CLI's `test_nats_per_char`: the
total negative log-likelihood (natural log, framing tokens included) of the first 120,000 characters of
the test part, over their characters; messages are read as segments that start at message boundaries,
one document as segments that read a burn-in first (textgen.evaluate). Nothing is tuned on the test
part. Reported: the mean and the worst (highest) over the seeds.

Then the plain Keras character model of TensorFlow's tutorial (bench.char_baseline) trains in a
subprocess for the same budget, counted from its start, on the same training text as the seed-0 run,
and is scored on the same test text (bench.heldout reproduces the CLI's split). Its row shows
baseline / project mean: above 1, the project reaches a lower loss in the same time.

5. `shakespeare`: Tiny Shakespeare as one document, `--val-fraction 0.05 --test-fraction 0.1`: train on
   the first 85%, pick weights on the next 5%, test on the last 10% (the usual split). Target: worst
   <= 1.55.
6. `chat`: the Ubuntu IRC log, `--format irc`, the CLI's default held-out parts (validation 10%, then
   test, the last 5% of the messages). Target: worst <= 1.80. Also each bundle's recovery gap
   (`textgen.evaluate.recovery_gap`: a fresh state at random offsets of the test messages vs one
   stream; a healthy model stays under 0.1 nats/token).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.children import ChildFailed, run_worker
from bench.heldout import cli_default_fractions
from bench.report import Outcome, Row
from bench.settings import RunSettings
from bench.train_runs import OVERRUN_SECONDS, train
from errortext import error_line

BUDGET = 100
SEEDS = (0, 1, 2)
# Quick mode checks the code paths: short budgets on slices, two seeds so mean and worst differ.
QUICK_BUDGET = 8
QUICK_SEEDS = (0, 1)
QUICK_SHAKESPEARE_CHARS = 200_000
QUICK_CHAT_LINES = 4_000
SHAKESPEARE_TARGET = 1.55
CHAT_TARGET = 1.80
BASELINE_NAME = "Keras char LSTM"
# Recovery: random offsets in the test messages, each read from a fresh state for a burn-in before
# `span` tokens count. The offsets fall in the first `RECOVERY_REGION_CHARS` characters of the test
# messages, which the stream side reads one token at a time.
RECOVERY = {"offsets": 16, "burn_in": 64, "span": 128, "offsets_seed": 7, "region_chars": 50_000}
QUICK_RECOVERY_REGION_CHARS = 5_000
RECOVERY_HEALTHY = 0.1


@dataclass(frozen=True)
class CorpusPlan:
    """What one quality benchmark trains on and how it cuts the corpus."""

    name: str
    label: str
    corpus: Path
    fmt: str
    val_fraction: float
    test_fraction: float
    target: float
    recovery: bool


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _first_line(error: Exception) -> str:
    return error_line(error)[:120]


def _quick_slice(plan: CorpusPlan, folder: Path) -> Path:
    """The head of the corpus: the held-out evaluations scale with it, and quick must stay quick."""
    text = plan.corpus.read_text(encoding="utf-8")
    path = folder / f"{plan.name}-slice{plan.corpus.suffix}"
    if plan.fmt == "text":
        path.write_text(text[:QUICK_SHAKESPEARE_CHARS], encoding="utf-8")
    else:
        path.write_text("\n".join(text.splitlines()[:QUICK_CHAT_LINES]) + "\n", encoding="utf-8")
    return path


def measure_corpus(settings: RunSettings, plan: CorpusPlan) -> Outcome:
    """The seeds, the baseline and (for chat) the recovery check on one corpus; their rows and figures."""
    quick = settings.quick
    budget = QUICK_BUDGET if quick else BUDGET
    seeds = QUICK_SEEDS if quick else SEEDS
    figures: dict[str, Any] = {
        "corpus": str(plan.corpus),
        "format": plan.fmt,
        "val_fraction": plan.val_fraction,
        "test_fraction": plan.test_fraction,
        "time_budget": budget,
        "seeds": {},
    }
    fraction_args = ["--val-fraction", str(plan.val_fraction), "--test-fraction", str(plan.test_fraction)]
    with tempfile.TemporaryDirectory(prefix="chatsmith-bench-") as tmp:
        corpus = _quick_slice(plan, Path(tmp)) if quick else plan.corpus
        figures["corpus_bytes"] = corpus.stat().st_size
        bundles: dict[str, str] = {}
        for seed in seeds:
            _progress(f"{plan.name}: chatsmith train, seed {seed}, --time-budget {budget}")
            bundle = Path(tmp) / f"model-seed{seed}"
            try:
                run = train(
                    corpus,
                    bundle,
                    plan.fmt,
                    budget,
                    [*fraction_args, "--seed", str(seed)],
                    f"{plan.name}-seed{seed}",
                )
            except ChildFailed as error:  # a failed seed is a result: the worst of the seeds is missing
                figures["seeds"][str(seed)] = {"failed": _first_line(error)}
                continue
            figures["seeds"][str(seed)] = run.figures()
            bundles[f"seed {seed}"] = str(bundle)
            _progress(f"{plan.name}: seed {seed}: test {run.metrics.get('test_nats_per_char')} nats/char")
        split = {
            "corpus": str(corpus),
            "format": plan.fmt,
            "val_fraction": plan.val_fraction,
            "test_fraction": plan.test_fraction,
        }
        figures["baseline"] = _baseline(settings, split, budget, seeds[0], plan.name)
        if plan.recovery and bundles:
            figures["recovery"] = _recovery(settings, split, bundles, plan.name)
    return Outcome(rows=corpus_rows(plan, figures, quick), figures=figures)


def _baseline(
    settings: RunSettings, split: dict[str, Any], budget: float, seed: int, name: str
) -> dict[str, Any]:
    _progress(f"{name}: {BASELINE_NAME} baseline, {budget} s from its start")
    options = {**split, "budget": budget, "seed": seed, "tiny": settings.tiny}
    try:
        result, child = run_worker(
            "char-baseline", options, timeout=budget + OVERRUN_SECONDS, log_name=f"{name}-baseline"
        )
    except ChildFailed as error:
        return {"failed": _first_line(error)}
    _progress(f"{name}: baseline test {result['test_nats_per_char']:.4f} nats/char")
    return {**result, "wall_seconds": child.seconds}


def _recovery(
    settings: RunSettings, split: dict[str, Any], bundles: dict[str, str], name: str
) -> dict[str, Any]:
    _progress(f"{name}: recovery gap of {len(bundles)} bundles")
    options = {**split, **RECOVERY, "bundles": bundles}
    if settings.quick:
        options["region_chars"] = QUICK_RECOVERY_REGION_CHARS
    try:
        result, _ = run_worker("recovery", options, timeout=OVERRUN_SECONDS, log_name=f"{name}-recovery")
    except ChildFailed as error:
        return {"failed": _first_line(error)}
    return result


def corpus_rows(plan: CorpusPlan, figures: dict[str, Any], quick: bool) -> list[Row]:
    """Mean and worst over the seeds, baseline / mean, and the worst recovery gap (chat)."""
    seeds = figures["seeds"]
    budget = figures["time_budget"]
    values = [
        run["test_nats_per_char"] for run in seeds.values() if run.get("test_nats_per_char") is not None
    ]
    missing = [seed for seed, run in seeds.items() if run.get("test_nats_per_char") is None]
    mean = statistics.fmean(values) if values else None
    # A seed without a figure could be the worst: then the worst is unknown and the target not met.
    worst = max(values) if values and not missing else None
    quick_note = "quick: budget too short to mean anything" if quick else ""
    missing_note = f"no figure for seed {', '.join(missing)}" if missing else ""
    heading = f"{plan.label} test, {budget} s"
    rows = [
        Row(
            name=f"{heading}, mean of {len(seeds)} seeds",
            project_value=mean,
            unit="nats/char",
            note=missing_note or quick_note,
        ),
        Row(
            name=f"{heading}, worst of {len(seeds)} seeds",
            project_value=worst,
            unit="nats/char",
            target=f"≤{plan.target}",
            met=False if missing else None if worst is None else worst <= plan.target,
            note=missing_note or quick_note,
        ),
    ]
    baseline = figures["baseline"].get("test_nats_per_char")
    baseline_note = figures["baseline"].get("failed", "")
    # The baseline reproduces the first seed's split: the same test text has the same length.
    project_test_chars = next(iter(seeds.values()), {}).get("test_chars")
    if project_test_chars is not None and figures["baseline"].get("test_chars") not in (
        None,
        project_test_chars,
    ):
        baseline_note = "test text differs from the project's"
    rows.append(
        Row(
            name=f"  baseline / project mean: {BASELINE_NAME}, {budget} s",
            baseline=BASELINE_NAME,
            baseline_value=baseline,
            project_value=mean,
            unit="nats/char",
            # Above 1: the project reaches a lower loss than the baseline in the same time.
            ratio=baseline / mean if baseline is not None and mean else None,
            note=baseline_note or "same train and test text",
        )
    )
    if plan.recovery:
        recovery = figures.get("recovery", {"failed": "no bundle to measure"})
        gaps = [
            abs(result["gap"]) for result in recovery.values() if isinstance(result, dict) and "gap" in result
        ]
        worst_gap = max(gaps) if gaps else None
        rows.append(
            Row(
                name=f"{plan.label} recovery gap (fresh - stream, absolute), worst of {len(gaps)} bundles",
                project_value=worst_gap,
                unit="nats/tok",
                target=f"<{RECOVERY_HEALTHY}",
                met=None if worst_gap is None else worst_gap < RECOVERY_HEALTHY,
                note=recovery.get("failed", ""),
            )
        )
    return rows


def run_shakespeare(settings: RunSettings) -> Outcome:
    """Benchmark 5: Tiny Shakespeare test nats/char over seeds, and the Keras baseline."""
    plan = CorpusPlan(
        name="shakespeare",
        label="Tiny Shakespeare",
        corpus=settings.sources.shakespeare,
        fmt="text",
        val_fraction=0.05,
        test_fraction=0.1,
        target=SHAKESPEARE_TARGET,
        recovery=False,
    )
    outcome = measure_corpus(settings, plan)
    outcome.figures["source"] = settings.sources.shakespeare_origin
    return outcome


def run_chat(settings: RunSettings) -> Outcome:
    """Benchmark 6: IRC chat test nats/char over seeds, the Keras baseline and the recovery gap."""
    if settings.sources.irc is None:
        return Outcome(rows=[Row(name="chat (IRC) test nats/char", note="skipped: no IRC log")])
    val_fraction, test_fraction = cli_default_fractions()
    plan = CorpusPlan(
        name="chat",
        label="chat (IRC)",
        corpus=settings.sources.irc,
        fmt="irc",
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        target=CHAT_TARGET,
        recovery=True,
    )
    return measure_corpus(settings, plan)
