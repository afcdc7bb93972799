"""The trainer's configuration: one plain typed object; the composition root builds it from the settings."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textgen.spec import ModelSpec, TrainConfig
from trainer.errors import TrainerError

# The held-out set of the promotion gate never exceeds this many messages: evaluating two models on it
# must stay quick next to training, and a few thousand messages already rank them reliably.
MAX_HOLDOUT_MESSAGES = 2000

# A job validates every 10 s and stops once 2 checks in a row gain less than 0.005 nats per token: a
# fine-tune of the base model levels off within a minute or two (bench/fine_tune_budget.py: 1.376
# nats/char after 67 s on a channel, against 1.380 with checks every 30 s and patience 3, after 86 s),
# and the time budget is only the ceiling. `train_config` overrides.
PLATEAU_STOP: dict[str, Any] = {"check_every": 10.0, "patience": 2, "min_improvement": 0.005}

# A job reads its channel's training text at most this many times, its learning rate decaying over those
# passes (or over the time budget, whichever ends first). A fine-tune of the base model on a channel
# gains little past its third pass: on the Stripe IRC log (2,880 messages), 3 passes scored 1.317
# nats/char on its newest fifth in 66 CPU-s, the plateau stop alone 1.321 in 126, and the job before the
# plateau stop 1.414 in 375 (1.423 in 140 with another seed; bench/RESULTS.md, "Channel jobs over a few passes").
JOB_EPOCHS = 3


@dataclass(frozen=True)
class TrainerConfig:
    """How the trainer schedules, claims, trains and judges.

    Args:
        schedule: Cron expression (five crontab fields) of the per-scope retrain schedule.
        poll_seconds: Interval of the queue poll.
        heartbeat_seconds: Interval of a running job's heartbeat.
        stale_after_seconds: A running job without a heartbeat for this long is requeued.
        max_attempts: Claims a job gets before a dead worker's job is failed instead of requeued.
        time_budget: Wall-clock seconds a training job may take, corpus loading included.
        min_messages: Trainable messages a scope needs; fewer fails the job saying so.
        holdout_fraction: Share of the newest messages kept out of training for the promotion gate.
        max_corpus_chars: A job reads only the newest messages that fit in this many characters, so that
            its memory stays bounded however long a scope's history grows (200 million characters
            train in about 1 GB); None reads them all.
        keep_versions: Model versions kept per scope (the active one included); older ones are retired.
        retention_days: Messages older than this are deleted and the models holding them withdrawn
            (`trainer.retention`); 0 keeps them.
        spec: `ModelSpec` fields for a model trained from scratch (no base model).
        train_config: `TrainConfig` fields (epochs, batch size, learning rate, steps per epoch, ...);
            where it names none of them, a job reads its text `JOB_EPOCHS` times and stops earlier as
            `PLATEAU_STOP` says.
        base_model: The bundle a scope's first model is fine-tuned from; None: from scratch.
        model_dir: Where published bundles live.
    """

    schedule: str = "0 3 * * *"
    poll_seconds: float = 5.0
    heartbeat_seconds: float = 10.0
    stale_after_seconds: float = 120.0
    max_attempts: int = 3
    time_budget: float = 900.0
    min_messages: int = 200
    holdout_fraction: float = 0.1
    max_corpus_chars: int | None = 200_000_000
    keep_versions: int = 5
    retention_days: int = 0
    spec: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)
    base_model: Path | None = None
    model_dir: Path = Path("data/models")

    def model_spec(self) -> ModelSpec:
        """The `textgen.spec.ModelSpec` for training from scratch.

        Raises:
            TrainerError: `CHATSMITH_TRAINER_SPEC` names a field ModelSpec does not have.
        """
        _check_fields(ModelSpec, self.spec, "CHATSMITH_TRAINER_SPEC")
        return ModelSpec(**self.spec)

    def textgen_train_config(self) -> TrainConfig:
        """The `textgen.spec.TrainConfig` of a job: `train_config` with this config's time budget.

        Raises:
            TrainerError: `CHATSMITH_TRAINER_TRAIN_CONFIG` names a field TrainConfig does not have.
        """
        _check_fields(TrainConfig, self.train_config, "CHATSMITH_TRAINER_TRAIN_CONFIG")
        job = {"epochs": JOB_EPOCHS, **PLATEAU_STOP}
        return TrainConfig(**{**job, **self.train_config, "time_budget": self.time_budget})

    def validate(self) -> TrainerConfig:
        """Build the spec, train config and cron trigger once, so a bad setting fails at start-up.

        Returns:
            This config.

        Raises:
            TrainerError or TextgenError: A setting is not valid; the message names it.
        """
        self.model_spec()
        self.textgen_train_config()
        cron_trigger(self.schedule)
        if self.stale_after_seconds <= 2 * self.heartbeat_seconds:
            raise TrainerError(
                f"stale-after ({self.stale_after_seconds:g}s) must be more than twice the heartbeat interval "
                f"({self.heartbeat_seconds:g}s), or live jobs get requeued; raise "
                "CHATSMITH_TRAINER_STALE_AFTER_SECONDS"
            )
        return self


def _check_fields(kind: type, values: dict[str, Any], variable: str) -> None:
    known = {item.name for item in dataclasses.fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TrainerError(
            f"{variable} has unknown field(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}"
        )


def cron_trigger(expression: str) -> Any:
    """The APScheduler `CronTrigger` (UTC) of a five-field crontab expression.

    Raises:
        TrainerError: The expression is not valid crontab.
    """
    from apscheduler.triggers.cron import CronTrigger

    try:
        return CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as error:
        raise TrainerError(
            f"CHATSMITH_TRAINER_SCHEDULE {expression!r} is not a crontab expression ({error}); "
            "use five fields, e.g. '0 3 * * *' for 03:00 UTC nightly"
        ) from None
