"""The job loop: claim a job, run its steps in order, and close it (or release it, or undo it).

The order of a job keeps serving safe (a registered bundle is on disk; a worse model never serves):

1. Versions of the scope still marked `training` belong to an attempt whose worker died (a scope runs one
   job at a time); they are marked failed and whatever they left on disk is removed.
2. The corpus is read; too few messages fails the job before anything is created.
3. The parent is what serves the scope now (its active model, the workspace's, or the base model). Its
   bundle is loaded once (a damaged one is marked failed and the scope's fallback taken) and serves the
   fine-tune's start and the gate's incumbent score. A `training` version row is created that points at
   no bundle.
4. The model trains into a staging directory while a heartbeat thread reports progress.
5. Candidate and incumbent are evaluated on the same newest held-out messages (`trainer.gate`).
6. The bundle is moved into place in the model store, and only then, in one transaction that also checks
   the job is still this worker's, the row gets its location and becomes active or rejected
   (`trainer.publishing`).

A failure anywhere before step 6 commits leaves the previous active model serving and no row pointing at a
half-written bundle; the job fails with a one-line error and the version is marked failed.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from db.jobs import StaleJobs, claim_next_job, finish_job, release_job, requeue_stale_jobs
from db.model_store import ModelStore
from db.models import ModelVersion, TrainingJob
from db.registry import mark_failed
from db.retry import DatabaseUnavailable, retry_on_lock
from db.scopes import Scope
from db.verdicts import gate_outcome
from textgen.spec import ModelSpec
from textgen.traced_steps import released_after_run
from trainer.candidate import Candidate, StopRequested, train_candidate
from trainer.config import TrainerConfig
from trainer.errors import JobLost
from trainer.failures import is_user_error, job_error_text, one_line_error
from trainer.gate import judge_candidate
from trainer.heartbeat import Heartbeat
from trainer.job_steps import JobSteps, Parent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobOutcome:
    """How one claimed job ended in this worker.

    Attributes:
        job_id: The job.
        scope_key: Its scope.
        status: "succeeded" (a model was promoted or rejected by the gate), "failed", "released" (the
            trainer was stopped; the job is queued again) or "lost" (cancelled or taken over meanwhile).
        message: One line for logs and the command line.
        model_version_id: The version this attempt created, if any.
        promoted: Whether that version became active.
        gate_result: For a job that ran to the end, what the gate made of its model ("not promoted:
            1.600 vs 1.530 serving"): what logs and the command line show in place of "succeeded".
    """

    job_id: int
    scope_key: str
    status: str
    message: str
    model_version_id: int | None = None
    promoted: bool = False
    gate_result: str | None = None

    @property
    def headline(self) -> str:
        """How the job ended, in words a reader trusts: the gate's outcome, else the status."""
        return self.gate_result or self.status


@dataclass
class _Attempt:
    """What one attempt has created so far, so that a failure can undo exactly that."""

    job: TrainingJob
    started: float
    version_id: int | None = None
    staging: Path | None = None
    published: str | None = None
    registered: bool = False


class Worker:
    """Claims jobs from the queue and runs them, one at a time.

    Args:
        engine: The database (schema already checked).
        config: Trainer configuration.
        store: Where bundles are published.
        worker_id: This worker's name in the queue (unique among running trainers).
        stop: Set to stop: a job in training is released back to the queue at its next step.
    """

    def __init__(
        self,
        engine: Engine,
        config: TrainerConfig,
        store: ModelStore,
        worker_id: str,
        *,
        stop: threading.Event | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.store = store
        self.worker_id = worker_id
        self.stop = stop or threading.Event()
        self.steps = JobSteps(engine, config, store, worker_id, self.stop)

    def requeue_stale(self) -> StaleJobs:
        """Requeue running jobs whose worker stopped sending heartbeats (or fail them after max attempts)."""
        result = requeue_stale_jobs(
            self.engine,
            stale_after=timedelta(seconds=self.config.stale_after_seconds),
            max_attempts=self.config.max_attempts,
        )
        if result.requeued:
            logger.warning("requeued jobs %s: their worker stopped sending heartbeats", result.requeued)
        if result.failed:
            logger.error(
                "failed jobs %s: their workers died %d times", result.failed, self.config.max_attempts
            )
        return result

    def process_queue(self) -> list[JobOutcome]:
        """Claim and run queued jobs until the queue is empty or `stop` is set."""
        outcomes = []
        while not self.stop.is_set():
            job = claim_next_job(self.engine, self.worker_id)
            if job is None:
                break
            outcomes.append(self.run_job(job))
        return outcomes

    def run_job(self, job: TrainingJob) -> JobOutcome:
        """Run a job this worker has claimed, and close it (succeeded or failed) or release it.

        Never raises for a problem of the job itself: that is recorded on the job and the version.
        """
        attempt = _Attempt(job=job, started=time.monotonic())
        logger.info(
            "job %d (scope %s, %s, attempt %d) started by %s",
            job.id,
            job.scope_key,
            job.reason,
            job.attempts,
            self.worker_id,
        )
        with (
            released_after_run(),
            Heartbeat(self.engine, job.id, self.worker_id, self.config.heartbeat_seconds) as heartbeat,
        ):
            try:
                outcome = self._run(attempt, heartbeat)
            except StopRequested:
                heartbeat.close()
                self._abandon(attempt, "the trainer stopped before the model was finished; job requeued")
                self._release(job.id)
                outcome = JobOutcome(job.id, job.scope_key, "released", "stopped; job put back in the queue")
            except DatabaseUnavailable:
                # Every step waits for the database for as long as it is down; this is the trainer being
                # stopped meanwhile. The job is not at fault: it goes back to the queue.
                heartbeat.close()
                self._abandon(attempt, "the trainer stopped while the database was down; job requeued")
                if self._release(job.id):
                    message = "stopped while the database was down; job put back in the queue"
                else:
                    message = (
                        "stopped while the database was down; its row still says running until its "
                        "heartbeat goes stale, then the job is requeued"
                    )
                outcome = JobOutcome(job.id, job.scope_key, "released", message)
            except JobLost:
                self._abandon(attempt, "the job was cancelled or taken over by another worker")
                outcome = JobOutcome(
                    job.id, job.scope_key, "lost", "job cancelled or taken over; nothing published"
                )
            except Exception as error:
                heartbeat.close()
                outcome = self._fail(attempt, error)
            finally:
                self._discard_staging(attempt)
        logger.info("job %d %s (%s)", job.id, outcome.headline, outcome.message)
        return outcome

    # ---------------------------------------------------------------- the job's steps

    def _run(self, attempt: _Attempt, heartbeat: Heartbeat) -> JobOutcome:
        job, steps = attempt.job, self.steps
        scope = Scope(job.workspace_id, job.channel_id)
        scope_name, serving = steps.pick_parent(scope, job)
        # Loaded once: the check that it loads, the fine-tune's start and the gate's incumbent score.
        parent = steps.load_parent(scope, serving)
        corpus = steps.read_corpus(scope, scope_name)
        spec, tokenizer_kind = self._spec_of(parent)
        version = steps.create_version(scope, job, parent, spec, tokenizer_kind, corpus)
        attempt.version_id = version.id

        attempt.staging = self.store.new_staging_dir(f"job-{job.id}")
        candidate = Candidate(
            job, spec, self.config.textgen_train_config(), parent, version.number, attempt.started
        )
        result = train_candidate(candidate, corpus.train, attempt.staging, heartbeat, self.stop)
        verdict = judge_candidate(
            result.bundle,
            result.metrics,
            corpus.holdout,
            lambda: steps.incumbent(scope),
            parent=parent.bundle if parent is not None else None,
        )

        if not heartbeat.beat():
            raise JobLost
        attempt.published = self.store.publish(result.bundle, job.scope_key, version.number)
        # The model is trained and in place: only the database is missing. Wait for it (a restart, a
        # dropped connection) rather than throw the model away; registering also closes the job.
        retired = steps.record(job.id, version.id, attempt.published, scope, verdict)
        attempt.registered = True
        heartbeat.close()
        for location in retired:
            steps.delete_bundle(location)
        return JobOutcome(
            job.id,
            job.scope_key,
            "succeeded",
            f"{scope_name} v{version.number}: {verdict.summary}",
            attempt.version_id,
            verdict.promote,
            gate_outcome(verdict.metrics),
        )

    def _spec_of(self, parent: Parent | None) -> tuple[ModelSpec, str]:
        """The spec and tokenizer kind of the new model: the parent's when fine-tuning (ids must agree)."""
        if parent is None:
            return self.config.model_spec(), "byte"
        return parent.bundle.spec, parent.bundle.tokenizer.kind

    # ---------------------------------------------------------------- undoing and closing

    def _fail(self, attempt: _Attempt, error: Exception) -> JobOutcome:
        """Record a job that failed: its one-line error for users, the whole cause for operators."""
        job = attempt.job
        message = one_line_error(error)
        stored = job_error_text(error)
        logger.error("job %d failed: %s", job.id, stored, exc_info=not is_user_error(error))
        self._abandon(attempt, message)
        if not self._finish(job.id, "failed", error=stored, model_version_id=attempt.version_id):
            message += "; not recorded (database down), so the job runs again once requeued"
        return JobOutcome(job.id, job.scope_key, "failed", message, attempt.version_id)

    def _abandon(self, attempt: _Attempt, reason: str) -> None:
        """Undo what an unfinished attempt created: its published bundle, its `training` row."""
        if attempt.registered:
            return
        if attempt.published is not None:
            self.steps.delete_bundle(attempt.published)
        if attempt.version_id is None:
            return
        version_id = attempt.version_id

        def fail_version() -> None:
            with self.steps.session() as session, session.begin():
                version = session.get(ModelVersion, version_id)
                if version is not None and version.status == "training":
                    mark_failed(
                        session, version, f"{version.note}; failed: {reason}" if version.note else reason
                    )

        try:
            retry_on_lock(fail_version)
        except Exception:  # the job's own error is what matters; a stale 'training' row is cleaned later
            logger.exception("could not mark version %d failed", version_id)

    def _release(self, job_id: int) -> bool:
        """Put the job back in the queue; False when the database could not be told (the row says running)."""
        try:
            self.steps.persist(lambda: release_job(self.engine, job_id, self.worker_id), "releasing the job")
        except Exception as error:
            logger.error(
                "could not release job %d (%s); its row says running until its heartbeat goes stale, then "
                "it is requeued",
                job_id,
                one_line_error(error),
            )
            return False
        return True

    def _finish(self, job_id: int, status: str, **fields: Any) -> bool:
        """Close the job; False when the database could not be told (the row still says running)."""
        try:
            closed = self.steps.persist(
                lambda: finish_job(self.engine, job_id, status, worker_id=self.worker_id, **fields),
                f"recording the job {status}",
            )
        except Exception as error:
            # Left running, the job goes stale and is requeued; better than crashing the trainer.
            logger.error(
                "could not record job %d as %s (%s); its row says running until its heartbeat goes stale, "
                "then it is requeued",
                job_id,
                status,
                one_line_error(error),
            )
            return False
        if not closed:
            logger.warning("job %d was no longer held by %s when it finished", job_id, self.worker_id)
        return True

    def _discard_staging(self, attempt: _Attempt) -> None:
        if attempt.staging is not None:
            shutil.rmtree(attempt.staging, ignore_errors=True)
