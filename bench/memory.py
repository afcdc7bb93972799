"""Benchmarks 4 and 8: memory of training data, seed-style vs the project, and of a full IRC training run.

4. `memory`: peak resident memory over the post-import baseline (`ru_maxrss` delta), each case in a fresh
   subprocess, at 0.25, 1 and 4 MB of Tiny Shakespeare (4 MB is the corpus repeated). Seed-style: word
   tokenizer, every prefix of every line, `pad_sequences`, float64 `to_categorical`, a few batches of
   `model.fit`. Project: `encode_messages` + `window_batches`, a few batches. A seed case whose
   predicted peak exceeds `SEED_RUN_LIMIT` is not run: its array bytes are computed analytically and
   marked "projected" (a lower bound: `fit` was measured to need about 2-3x the arrays). Smaller seed
   sizes are measured to show the real growth and calibrate that factor.
8. `irc-memory`: `chatsmith train` on the whole IRC log (16.9 MB) with a short budget, in a subprocess;
   its peak resident memory (the whole process, TensorFlow included) must stay under 2 GB.
"""

from __future__ import annotations

import math
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.children import run_worker
from bench.report import Outcome, Row
from bench.seed_style import seed_data_shape
from bench.settings import RunSettings
from bench.train_runs import train

MB = 1_000_000
# The machine has 24 GB shared with other people's work; a seed case predicted above this is projected.
SEED_RUN_LIMIT = 3 * 1024**3
# `model.fit` on the seed arrays peaked at ~2.6x their bytes when measured; predict with some margin.
SEED_FIT_FACTOR = 3.0
IRC_LIMIT = 2 * 1024**3
QUICK_IRC_LINES = 20_000


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _slice(text: str, megabytes: float) -> str:
    # Same rule as the worker's: repeat a corpus that is shorter than the size asked for.
    size = int(megabytes * MB)
    if len(text) < size:
        text = text * (size // len(text) + 1)
    return text[:size]


def run_memory(settings: RunSettings) -> Outcome:
    """Benchmark 4: seed-style vs project training-data memory and its growth."""
    quick, sources = settings.quick, settings.sources
    sizes = [0.25, 1.0] if quick else [0.25, 1.0, 4.0]
    # Sizes small enough for the seed pipeline to run for real (calibration of the projection).
    seed_measured_sizes = [0.02] if quick else [0.03, 0.1]
    text = sources.shakespeare.read_text(encoding="utf-8")
    project: dict[float, dict] = {}
    seed = _seed_cases(text, sorted(set(seed_measured_sizes + sizes)))
    cases: list[tuple[str, float]] = [("project", size) for size in sizes]
    cases += [("seed", size) for size, entry in seed.items() if not entry["projected"]]

    def measure(case: tuple[str, float]) -> dict:
        pipeline, size = case
        _progress(f"memory: {pipeline} pipeline at {size} MB, fresh subprocess")
        result, _ = run_worker(
            "memory",
            {"pipeline": pipeline, "megabytes": size, "source": str(sources.shakespeare)},
            timeout=600,
            log_name=f"memory-{pipeline}-{size}MB",
        )
        return result

    # Two cases at a time: each is its own process and ru_maxrss is per process, so running side by
    # side changes the time they take, not the memory they report.
    with ThreadPoolExecutor(max_workers=2) as pool:
        for (pipeline, size), result in zip(cases, pool.map(measure, cases), strict=True):
            if pipeline == "project":
                project[size] = result
            else:
                seed[size].update(result)
    factors = [
        entry["delta_bytes"] / entry["analytic_array_bytes"]
        for entry in seed.values()
        if not entry["projected"]
    ]
    outcome = Outcome()
    outcome.figures = {
        "project": {f"{size}MB": figures for size, figures in project.items()},
        "seed": {f"{size}MB": figures for size, figures in seed.items()},
        "seed_measured_over_analytic": factors,
    }
    outcome.rows += [_size_row(size, seed[size], project.get(size)) for size in sorted(seed)]
    if len(project) >= 2:
        outcome.rows.append(_growth_row(seed, project))
    return outcome


def _seed_cases(text: str, sizes: list[float]) -> dict[float, dict]:
    """The seed pipeline's data shape at each size, and whether it is too large to run ("projected": its
    array bytes stand in for the measurement)."""
    seed: dict[float, dict] = {}
    for size in sizes:
        shape = seed_data_shape(_slice(text, size))
        predicted = shape.array_bytes * SEED_FIT_FACTOR
        seed[size] = {
            "samples": shape.samples,
            "vocab": shape.vocab,
            "max_len": shape.max_len,
            "analytic_array_bytes": shape.array_bytes,
            "onehot_bytes": shape.onehot_bytes,
            "projected": predicted > SEED_RUN_LIMIT,
        }
        if predicted > SEED_RUN_LIMIT:
            _progress(
                f"memory: seed-style pipeline at {size} MB would need ~{predicted / 2**30:.1f} GiB: projected"
            )
            seed[size]["delta_bytes"] = shape.array_bytes
    return seed


def _size_row(size: float, seed_entry: dict, project_entry: dict | None) -> Row:
    """Seed-style against project at one corpus size; seed only where the project was not run."""
    base = seed_entry["delta_bytes"] / MB
    if project_entry is None:
        return Row(
            name=f"train-data peak RSS, {size} MB corpus (seed only)",
            baseline="seed-style",
            baseline_value=base,
            unit="MB",
            note="calibration",
        )
    mine = project_entry["delta_bytes"] / MB
    return Row(
        name=f"train-data peak RSS, {size} MB corpus",
        baseline="seed-style",
        baseline_value=base,
        project_value=mine,
        unit="MB",
        ratio=base / max(mine, 1e-9),
        note="seed projected (arrays only)" if seed_entry["projected"] else "",
    )


def _growth_row(seed: dict[float, dict], project: dict[float, dict]) -> Row:
    """How the project's memory grows from the smallest corpus to the largest, against the seed's."""
    small, large = min(project), max(project)
    corpus_growth = large / small
    project_growth = project[large]["delta_bytes"] / max(project[small]["delta_bytes"], 1)
    # On the analytic bytes at both ends, so a measured and a projected figure are never mixed.
    seed_growth = seed[large]["analytic_array_bytes"] / seed[small]["analytic_array_bytes"]
    return Row(
        name=f"train-data memory growth {small}→{large} MB ({corpus_growth:.0f}x corpus)",
        baseline="seed-style",
        baseline_value=seed_growth,
        project_value=project_growth,
        unit="x",
        ratio=None,
        target=f"≤{corpus_growth:.0f}x (linear)",
        met=project_growth <= corpus_growth * 1.1,
    )


def run_irc_memory(settings: RunSettings) -> Outcome:
    """Benchmark 8: peak RSS of `chatsmith train` on the full IRC log with a short budget."""
    quick, sources = settings.quick, settings.sources
    if sources.irc is None:
        return Outcome(rows=[Row(name="IRC full-log training peak RSS", note="skipped: no IRC log")])
    budget = 6 if quick else 30
    lines = sources.irc.read_text(encoding="utf-8").splitlines()
    with tempfile.TemporaryDirectory(prefix="chatsmith-bench-") as tmp:
        corpus = sources.irc
        if quick:
            # Quick checks the code path on a slice; the memory figure is for the whole log.
            corpus = Path(tmp) / "irc-slice.log"
            corpus.write_text("\n".join(lines[:QUICK_IRC_LINES]) + "\n", encoding="utf-8")
        size = corpus.stat().st_size / MB
        # A small separate validation file: the point is the memory of training on the whole log, and
        # evaluating 10% of it (1.7 MB) would take longer than the training budget.
        val_path = Path(tmp) / "val.log"
        val_path.write_text("\n".join(lines[-400:]) + "\n", encoding="utf-8")
        _progress(f"irc-memory: chatsmith train on {size:.1f} MB of the IRC log, {budget} s")
        run = train(corpus, Path(tmp) / "model", "irc", budget, ["--val-corpus", str(val_path)], "irc-memory")
    metrics, peak = run.metrics, run.child.max_rss_bytes
    figures = {
        "peak_rss_bytes": peak,
        "seconds": run.child.seconds,
        "train_tokens": metrics.get("train_tokens"),
        "steps": metrics.get("steps"),
        "train_tokens_per_sec": metrics.get("train_tokens_per_sec"),
        "time_budget": budget,
        "corpus_megabytes": size,
    }
    row = Row(
        name=f"IRC {'log slice' if quick else 'full log'} ({size:.1f} MB) training peak RSS, {budget} s",
        baseline="limit",
        baseline_value=IRC_LIMIT / MB,
        project_value=peak / MB,
        unit="MB",
        ratio=None if math.isnan(peak) else peak / IRC_LIMIT,
        target="<2 GB",
        met=peak < IRC_LIMIT,
    )
    return Outcome(rows=[row], figures=figures)
