"""Training variants at one time budget, each beside today's defaults in the same run.

`python -m bench.train_variants [--budget S] [--seeds 0 1 2] [--variant NAME=ARGS ...] [--tiny]` runs
`chatsmith train` (as a user runs it, `bench.train_runs`) for every variant, corpus and seed, one run at a
time so that each budget buys the same compute, and prints one table: tokens per second, optimizer
steps, and test nats per character (mean and worst over the seeds) per corpus. The first variant is the
baseline (`defaults`, the CLI with no extra option); each other row shows its worst-seed gain over it.
`--checkout NAME=DIR` runs variant NAME with the code at DIR (a `git worktree` of an earlier commit), so a
release's defaults run beside today's in the same script.

Corpora: a chat channel the base model never saw (the Stripe IRC log, `--format irc`, the CLI's default
held-out parts: validation, then the newest messages as test) and Tiny Shakespeare (one document,
`--val-fraction 0.05 --test-fraction 0.1`). Machine speed moves between days, so only figures of one run
compare.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench.train_runs import train

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CORPORA = {
    "chat": (SHARED / "stripe-irc.log", "irc", []),
    "shakespeare": (
        SHARED / "tinyshakespeare.txt",
        "text",
        ["--val-fraction", "0.05", "--test-fraction", "0.1"],
    ),
}
TINY_CORPORA = {
    "chat": (Path(__file__).resolve().parents[1] / "tests" / "data" / "stripe-irc-head.log", "irc", []),
}
DEFAULT_VARIANTS = ("defaults=", "batch-64=--batch-size 64")


@dataclass
class Cell:
    """One variant on one corpus: the figures of each seed."""

    nats: list[float] = field(default_factory=list)
    # The validation part's figure: what a choice between variants may be made on (the test part is not).
    # None for a run without one (`--val-fraction 0`, or a release that did not report it).
    validation: list[float | None] = field(default_factory=list)
    tokens_per_second: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)

    def line(self) -> str:
        worst = max(self.nats)
        return (
            f"{statistics.mean(self.nats):.3f} (worst {worst:.3f}; "
            + " / ".join(f"{value:.3f}" for value in self.nats)
            + f") | {_mean_or_none(self.validation)}"
            + f" | {statistics.mean(self.tokens_per_second) / 1000:.1f}k | {round(statistics.mean(self.steps))}"
        )


def _mean_or_none(values: list[float | None]) -> str:
    """The mean of the figures runs reported, to 3 decimals; "n/a" where none did."""
    present = [value for value in values if value is not None]
    return f"{statistics.mean(present):.3f}" if present else "n/a"


def parse_variant(text: str) -> tuple[str, list[str]]:
    """`NAME=ARGS` (ARGS: `chatsmith train` options, shell-quoted) as a name and an argument list."""
    name, separator, args = text.partition("=")
    if not separator or not name:
        raise SystemExit(
            f"error: Received variant {text!r}, expected NAME=OPTIONS, e.g. 'batch-64=--batch-size 64'"
        )
    return name, shlex.split(args)


def parse_checkout(text: str, names: list[str]) -> tuple[str, Path]:
    """`NAME=DIR`: the variant NAME (one of `names`) and the checkout whose code runs it."""
    name, separator, directory = text.partition("=")
    if not separator or name not in names:
        raise SystemExit(
            f"error: Received checkout {text!r}, expected NAME=DIR with NAME one of the variants "
            f"({', '.join(names)})"
        )
    path = Path(directory).resolve()
    if not (path / "chatsmith" / "cli.py").is_file():
        raise SystemExit(
            f"error: {path} is not a chatsmith checkout; make one with 'git worktree add DIR COMMIT'"
        )
    return name, path


def run(
    variants: list[tuple[str, list[str]]],
    seeds: list[int],
    budget: float,
    tiny: bool,
    only: list[str] | None = None,
    checkouts: dict[str, Path] | None = None,
) -> str:
    """Train every variant on every corpus (or those in `only`) and seed; the markdown table of the results."""
    corpora = (
        TINY_CORPORA if tiny else {name: plan for name, plan in CORPORA.items() if not only or name in only}
    )
    cells: dict[tuple[str, str], Cell] = {}
    with tempfile.TemporaryDirectory(prefix="chatsmith-variants-") as scratch:
        for corpus_name, (path, fmt, corpus_args) in corpora.items():
            if not path.exists():
                raise SystemExit(f"error: {path} is missing; these benchmarks read ../shared/data")
            for seed in seeds:
                for name, args in variants:
                    out = Path(scratch) / f"{corpus_name}-{name}-{seed}"
                    extra = [*corpus_args, "--seed", str(seed), *args]
                    log_name = f"variants-{corpus_name}-{name}-{seed}"
                    checkout = (checkouts or {}).get(name)
                    figures = train(path, out, fmt, budget, extra, log_name, checkout).figures()
                    cell = cells.setdefault((corpus_name, name), Cell())
                    cell.nats.append(float(figures["test_nats_per_char"]))
                    validation = figures.get("val_nats_per_char")
                    cell.validation.append(None if validation is None else float(validation))
                    cell.tokens_per_second.append(float(figures["train_tokens_per_sec"]))
                    cell.steps.append(int(figures["steps"]))
                    print(
                        corpus_name,
                        name,
                        seed,
                        figures["test_nats_per_char"],
                        figures["val_nats_per_char"],
                        figures["train_tokens_per_sec"],
                        file=sys.stderr,
                    )
    lines = [
        f"`chatsmith train --time-budget {budget:g}`, seeds {', '.join(map(str, seeds))}; test nats/char mean "
        "(worst; each seed) | validation nats/char mean | tokens/s | optimizer steps; gain = baseline worst - "
        "variant worst",
        "",
        "| corpus | variant | options | test nats/char | validation | tokens/s | steps | gain (worst) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for corpus_name in corpora:
        baseline = cells[(corpus_name, variants[0][0])]
        for name, args in variants:
            cell = cells[(corpus_name, name)]
            gain = max(baseline.nats) - max(cell.nats)
            lines.append(
                f"| {corpus_name} | {name} | `{' '.join(args) or '(none)'}` | {cell.line()} | {gain:+.3f} |"
            )
    lines.extend(f"\n{name} ran the code at `{checkout}`." for name, checkout in (checkouts or {}).items())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.train_variants", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--budget", type=float, default=100.0, help="seconds per run (default 100)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--variant",
        action="append",
        help="NAME=OPTIONS; the first is the baseline (default: defaults, batch-64)",
    )
    parser.add_argument("--tiny", action="store_true", help="a slice of chat, to check the code path")
    parser.add_argument(
        "--corpus", choices=sorted(CORPORA), action="append", help="only this corpus (repeatable)"
    )
    parser.add_argument(
        "--checkout",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="run variant NAME with the code at DIR, e.g. a git worktree of a release (repeatable)",
    )
    args = parser.parse_args(argv)
    variants = [parse_variant(text) for text in (args.variant or DEFAULT_VARIANTS)]
    checkouts = dict(parse_checkout(text, [name for name, _ in variants]) for text in args.checkout)
    print(run(variants, args.seeds, args.budget, args.tiny, args.corpus, checkouts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
