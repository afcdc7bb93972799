"""The learning rate over a run: warm-up by steps, then cosine decay over the steps or the time budget."""

from __future__ import annotations

import math

# Share of the steps spent warming the learning rate up from zero (stabilises Adam's first steps),
# at most MAX_WARMUP_STEPS.
WARMUP_FRACTION = 0.03
MAX_WARMUP_STEPS = 50
# The learning rate decays to this share of its peak by the end of the run (time or steps).
FINAL_LR_FRACTION = 0.05


class LearningRateSchedule:
    """Linear warm-up over the first steps, then cosine decay over whichever runs out first: the steps
    or the time budget.

    The warm-up counts steps, not seconds: a time budget's first seconds go to reading the corpus and
    compiling the step, and a model that meets the peak rate on its very first updates can saturate
    its gates and spend the rest of a short run recovering.
    """

    def __init__(self, peak: float, total_steps: int, time_budget: float | None) -> None:
        self.peak = peak
        self.total_steps = max(1, total_steps)
        self.time_budget = time_budget
        self.warmup_steps = max(1, min(MAX_WARMUP_STEPS, int(WARMUP_FRACTION * self.total_steps)))

    def progress(self, step: int, elapsed: float) -> float:
        done = step / self.total_steps
        if self.time_budget:
            done = max(done, elapsed / self.time_budget)
        return min(1.0, done)

    def __call__(self, step: int, elapsed: float) -> float:
        warmup = min(1.0, step / self.warmup_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * self.progress(step, elapsed)))
        return self.peak * warmup * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * cosine)
