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


def test_every_job_gets_a_row_and_models_per_cpu_hour_against_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textgen.spec import TrainConfig

    jobs = {"old": TrainConfig(time_budget=900), "new": TrainConfig(epochs=3, time_budget=900)}
    trained: list[TrainConfig] = []

    def fine_tune(base, train, held_out, config, out):
        trained.append(config)
        cpu = 400.0 if config.epochs == 20 else 100.0
        return {
            "wall_s": cpu / 2,
            "cpu_s": cpu,
            "steps": 10,
            "epochs": config.epochs,
            "stopped": "epochs",
            "held_out_nats_per_char": 1.5,
        }

    monkeypatch.setattr(fine_tune_budget, "trainer_jobs", lambda: jobs)
    monkeypatch.setattr(fine_tune_budget, "fine_tune", fine_tune)
    table = fine_tune_budget.run_jobs(tmp_path / "base", ["a"], ["b"], tmp_path, seed=4)
    assert [config.seed for config in trained] == [4, 4]
    assert [replace(config, seed=0) for config in trained] == list(jobs.values())
    assert table[2] == "| old | 200.0 | 400.0 | 10 | 20 | epochs | 1.500 | 9.0 (1.0x) |"
    assert table[3] == "| new | 50.0 | 100.0 | 10 | 3 | epochs | 1.500 | 36.0 (4.0x) |"
