"""Training a job's candidate model: into a staging directory, fine-tuned from the parent's loaded
bundle (or from scratch), with progress going to the heartbeat.

Imports TensorFlow when called (`textgen.training`), not when imported.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from db.jobs import JobProgress
from db.models import TrainingJob
from textgen.spec import ModelSpec, TrainConfig
from trainer.errors import JobLost
from trainer.failures import check_free_space
from trainer.gate import describe_model
from trainer.heartbeat import Heartbeat
from trainer.job_steps import Parent

if TYPE_CHECKING:
    from textgen.training import TrainingProgress, TrainResult

logger = logging.getLogger(__name__)


class StopRequested(Exception):
    """The trainer is shutting down; the job goes back to the queue."""


@dataclass(frozen=True)
class Candidate:
    """What a job trains: its model's shape, how, from what, for which version."""

    job: TrainingJob
    spec: ModelSpec
    config: TrainConfig
    parent: Parent | None
    version_number: int
    started: float


def train_candidate(
    candidate: Candidate, messages: list[str], staging: Path, heartbeat: Heartbeat, stop: threading.Event
) -> TrainResult:
    """Train the candidate on `messages` into `staging/bundle`.

    Raises:
        JobLost: The job was cancelled or taken over meanwhile (seen at a training step).
        StopRequested: `stop` was set (seen at a training step).
        TrainerError: Too little free space for the bundle.
        TextgenError: Training itself failed (too little text, no better than a uniform guess).
    """
    from textgen.training import train_model

    job, parent = candidate.job, candidate.parent
    if parent is None:
        logger.info("job %d: no parent model; training from scratch (%s)", job.id, candidate.spec.to_dict())
    else:
        logger.info("job %d: fine-tuning from %s", job.id, describe_model(parent.serving))

    def on_progress(progress: TrainingProgress) -> None:
        heartbeat.update(_job_progress(progress))
        if heartbeat.lost.is_set():
            raise JobLost
        if stop.is_set():
            raise StopRequested

    check_free_space(staging, parent.serving if parent is not None else None)
    return train_model(
        messages,
        staging / "bundle",
        spec=candidate.spec if parent is None else None,
        config=candidate.config,
        base=parent.bundle if parent is not None else None,
        progress=on_progress,
        started=candidate.started,
        extra_manifest={"scope_key": job.scope_key, "version": candidate.version_number, "job_id": job.id},
    )


def _job_progress(progress: TrainingProgress) -> JobProgress:
    """What the job's row shows of a training step (the bots' `/status`)."""
    report: JobProgress = {
        "epoch": progress.epoch,
        "epochs": progress.epochs,
        "loss": float(progress.loss),
        "fraction": float(progress.fraction),
    }
    if progress.eta_seconds is not None:
        report["eta_seconds"] = float(progress.eta_seconds)
    return report
