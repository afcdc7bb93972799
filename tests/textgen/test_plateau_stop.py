"""Stopping when the held-out loss levels off: periodic checks within an epoch, the budget as ceiling."""

from __future__ import annotations

import time

import pytest

from textgen.errors import TextgenError
from textgen.fit import TrainingProgress
from textgen.schedule import LearningRateSchedule
from textgen.spec import ModelSpec, TrainConfig
from textgen.training import train_model

TINY = dict(units=32, embedding=16, seq_len=24)


def test_a_run_whose_held_out_loss_stops_improving_ends_long_before_its_budget(tmp_path, shakespeare):
    # No check can gain 10 nats per token: after the first check (the first best) every check counts
    # as no improvement, as on a plateau, so two more checks end the run.
    config = TrainConfig(
        epochs=1000,
        batch_size=16,
        learning_rate=1e-2,
        time_budget=60.0,
        check_every=1.0,
        patience=2,
        min_improvement=10.0,
    )
    started = time.monotonic()
    reports: list[TrainingProgress] = []
    result = train_model(
        [shakespeare],
        tmp_path / "m",
        spec=ModelSpec(**TINY),
        config=config,
        progress=reports.append,
    )
    assert result.metrics["stopped"] == "early stopping"
    assert result.metrics["validations"] == 3
    # Each check without a new best halved the rate. The share of the schedule's rate each step ran at
    # (its warm-up and decay divided out, so where the checks fall does not matter; the decay runs over the
    # budget less what saving needs, hence the rounding): the full rate until the second check, half of it
    # after (the third check's halving comes after the last report).
    schedule = LearningRateSchedule(config.learning_rate, reports[0].steps_per_epoch * config.epochs, 60.0)
    shares = [
        round(report.learning_rate / schedule(step, report.elapsed), 2)
        for step, report in enumerate(reports, start=1)
    ]
    assert shares == sorted(shares, reverse=True) and set(shares) == {1.0, 0.5}, shares
    assert time.monotonic() - started < 30.0


def test_checks_never_carry_a_run_past_its_budget(tmp_path, shakespeare):
    started = time.monotonic() - 1.0  # corpus loading counts against the budget
    # 12 s: on a machine loaded to half a core, building the model takes 4 s, and checks need room left.
    config = TrainConfig(
        epochs=1000, batch_size=16, time_budget=12.0, check_every=0.5, patience=1000, min_improvement=0.0
    )
    result = train_model(
        [shakespeare], tmp_path / "m", spec=ModelSpec(**TINY), config=config, started=started
    )
    assert result.metrics["stopped"] == "time budget"
    assert result.metrics["validations"] >= 3
    assert result.metrics["budget_seconds_used"] < 12.0
    assert result.metrics["seconds"] <= 12.0 + 1.5


def test_without_check_every_validation_waits_for_the_end_of_an_epoch(tmp_path, shakespeare):
    config = TrainConfig(epochs=2, batch_size=16, steps_per_epoch=10, patience=5)
    result = train_model([shakespeare[:20_000]], tmp_path / "m", spec=ModelSpec(**TINY), config=config)
    assert result.metrics["validations"] == 2 and result.metrics["stopped"] == "epochs"


def test_a_check_interval_that_is_not_positive_is_refused():
    with pytest.raises(TextgenError, match="check every must be a positive number of seconds"):
        TrainConfig(check_every=0)
