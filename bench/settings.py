"""What one benchmark run was asked for: passed to every benchmark."""

from __future__ import annotations

from dataclasses import dataclass

from bench.sources import Sources


@dataclass(frozen=True)
class RunSettings:
    """Options of one `python -m bench` run.

    Args:
        quick: tiny budgets, fewer tokens and smaller corpora: checks the code paths, figures indicative only.
        tiny: also shrink the models to a few units (the test suite's smoke test; figures meaningless).
        sources: the corpus files.
    """

    quick: bool
    sources: Sources
    tiny: bool = False
