"""The channel fine-tune benchmark: it measures the trainer's job as the trainer runs it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench import fine_tune_budget
from trainer.config import TrainerConfig


def test_todays_job_is_the_trainers_own_and_the_first_job_is_the_old_one() -> None:
    jobs = fine_tune_budget.trainer_jobs()
    assert jobs["today's job"] == TrainerConfig().textgen_train_config()
    before = next(iter(jobs.values()))
    assert before.time_budget == 900 and before.check_every is None


@pytest.mark.slow
def test_every_job_gets_a_row_and_models_per_cpu_hour_against_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textgen.spec import ModelSpec, TrainConfig
    from textgen.training import train_model

    lines = [f"message {i} about the {('kernel', 'build', 'docs')[i % 3]} again" for i in range(400)]
    tiny = TrainConfig(epochs=1, steps_per_epoch=3, batch_size=8, seed=1)
    base = train_model(
        lines[:300], tmp_path / "base", spec=ModelSpec(units=8, embedding=4, seq_len=8), config=tiny
    ).bundle
    jobs = {name: replace(tiny, steps_per_epoch=2 * (n + 1)) for n, name in enumerate(("old", "new"))}
    monkeypatch.setattr(fine_tune_budget, "trainer_jobs", lambda: jobs)
    table = fine_tune_budget.run_jobs(base, lines[:300], lines[300:], tmp_path / "runs")
    assert [row.split(" | ")[0] for row in table[2:]] == ["| old", "| new"]
    assert table[2].endswith("(1.0x) |")
    for row in table[2:]:
        cells = row.split(" | ")
        assert 0 < float(cells[6]) < 6  # held-out nats/char
