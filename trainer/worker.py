"""The job loop: claim a job, run its steps in order, and close it (or release it, or undo it).

The order of a job keeps serving safe (a registered bundle is on disk; a worse model never serves):

1. Versions of the scope still marked `training` belong to an attempt whose worker died (a scope runs one
   job at a time); they are marked failed and whatever they left on disk is removed.
2. The corpus is read; too few messages fails the job before anything is created.
3. The parent is what serves the scope now (its active model, the workspace's, or the base model); a
   `training` version row is created that points at no bundle.
4. The model trains into a staging directory while a heartbeat thread reports progress.
5. Candidate and incumbent are evaluated on the same newest held-out messages (`trainer.gate`).
6. The bundle is moved into place in the model store, and only then, in one transaction that also checks
   the job is still this worker's, the row gets its location and becomes active or rejected
   (`trainer.publishing`).

A failure anywhere before step 6 commits leaves the previous active model serving and no row pointing at a
half-written bundle; the job fails with a one-line error and the version is marked failed.
"""

from __future__ import annotations

import errno
import functools
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.engine import immediate
from db.errors import BundleOutsideStore, DatabaseError
from db.forgetting import record_exposure
from db.jobs import JobProgress, StaleJobs, claim_next_job, finish_job, release_job, requeue_stale_jobs
from db.model_store import ModelStore
from db.models import ModelVersion, TrainingJob
from db.registry import create_version, mark_failed
from db.retry import DatabaseUnavailable, retry_on_lock
from db.scopes import Scope, describe_scope
from db.serving import ServingModel, fail_unloadable_version, serving_model_for_scope
from textgen.errors import TextgenError
from trainer.config import TrainerConfig
from trainer.corpus import ScopeCorpus, load_scope_corpus
from trainer.errors import JobLost, TrainerError
from trainer.gate import Verdict, describe_model, judge_candidate
from trainer.heartbeat import Heartbeat
from trainer.publishing import record_published

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A step waiting this long for the database says so in the log (once), then waits on.
NOTICE_OUTAGE_AFTER_S = 5.0
# Longest first line of a job's error: the bots show it in chat.
MAX_ERROR_CHARS = 500
# Longest detail kept after it (the log has the traceback as well).
MAX_DETAIL_CHARS = 20_000
DISK_FULL = (
    "the model directory's disk is full (No space left on device); free space under CHATSMITH_MODEL_DIR, "
    "then train again"
)
# Free space a new bundle needs beyond the size of its parent's (staging, then the published copy).
MIN_FREE_BYTES = 16 * 1024 * 1024


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
    """

    job_id: int
    scope_key: str
    status: str
    message: str
    model_version_id: int | None = None
    promoted: bool = False


class _StopRequested(Exception):
    """The trainer is shutting down; the job goes back to the queue."""


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
        with Heartbeat(self.engine, job.id, self.worker_id, self.config.heartbeat_seconds) as heartbeat:
            try:
                outcome = self._run(attempt, heartbeat)
            except _StopRequested:
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
                message = one_line_error(error)
                stored = job_error_text(error)
                expected = isinstance(error, TextgenError | DatabaseError)
                logger.error("job %d failed: %s", job.id, stored, exc_info=not expected)
                self._abandon(attempt, message)
                if not self._finish(job.id, "failed", error=stored, model_version_id=attempt.version_id):
                    message += "; not recorded (database down), so the job runs again once requeued"
                outcome = JobOutcome(job.id, job.scope_key, "failed", message, attempt.version_id)
            finally:
                self._discard_staging(attempt)
                _clear_keras_session()
        logger.info("job %d %s: %s", job.id, outcome.status, outcome.message)
        return outcome

    # ---------------------------------------------------------------- the job's steps

    def _run(self, attempt: _Attempt, heartbeat: Heartbeat) -> JobOutcome:
        job = attempt.job
        scope = Scope(job.workspace_id, job.channel_id)
        scope_name, parent = self._persist(
            lambda: self._clean_up_and_pick_parent(scope, job), "picking the parent model"
        )
        parent = self._loadable_parent(scope, parent)
        corpus = self._read_corpus(scope, scope_name)
        spec, tokenizer_kind = self._spec_of(parent)
        attempt.version_id, version_number = self._persist(
            lambda: self._create_version(scope, job, parent, spec, tokenizer_kind, corpus),
            "creating the version",
        )

        result = self._train(attempt, corpus, spec, parent, heartbeat, version_number)
        verdict = judge_candidate(
            result.bundle,
            result.metrics,
            corpus.holdout,
            lambda: self._persist(lambda: self._incumbent(scope), "looking up the incumbent"),
        )

        if not heartbeat.beat():
            raise JobLost
        attempt.published = self.store.publish(result.bundle, job.scope_key, version_number)
        # The model is trained and in place: only the database is missing. Wait for it (a restart, a
        # dropped connection) rather than throw the model away; registering also closes the job.
        retired = self._persist(lambda: self._record(attempt, scope, verdict), "registering the model")
        attempt.registered = True
        heartbeat.close()
        for location in retired:
            self._delete_bundle(location)
        verdict_word = "promoted" if verdict.promote else "rejected"
        return JobOutcome(
            job.id,
            job.scope_key,
            "succeeded",
            f"{scope_name} v{version_number} {verdict_word}: {verdict.summary}",
            attempt.version_id,
            verdict.promote,
        )

    def _persist(self, action: Callable[[], T], what: str) -> T:
        """Run a transaction until the database answers, however long it is down, or the trainer stops.

        Raises:
            DatabaseUnavailable: The trainer was stopped while the database was still not answering.
        """
        waiting = False
        while True:
            try:
                result = retry_on_lock(
                    action, outage_seconds=None if waiting else NOTICE_OUTAGE_AFTER_S, stop=self.stop
                )
            except DatabaseUnavailable:  # down, or locked through every attempt: keep waiting
                if self.stop.is_set():
                    raise
                if not waiting:
                    logger.warning("the database is not answering while %s; waiting for it", what)
                waiting = True
                continue
            if waiting:
                logger.info("the database answers again; %s done", what)
            return result

    def _session(self) -> Session:
        return Session(immediate(self.engine), expire_on_commit=False)

    def _clean_up_and_pick_parent(self, scope: Scope, job: TrainingJob) -> tuple[str, ServingModel | None]:
        """Fail versions left `training` by dead attempts, then find what serves the scope now."""
        with self._session() as session, session.begin():
            scope_name = describe_scope(session, scope)
            orphans = session.scalars(
                select(ModelVersion).where(
                    ModelVersion.scope_key == scope.scope_key, ModelVersion.status == "training"
                )
            ).all()
            for orphan in orphans:
                mark_failed(session, orphan, f"its trainer stopped during training; job {job.id} ran again")
            parent = serving_model_for_scope(
                session, scope, store=self.store, base_model=self.config.base_model
            )
            leftovers = [self.store.location_for(v.scope_key, v.version) for v in orphans]
        # An attempt that died after publishing but before registering left its bundle where no row points.
        for location in leftovers:
            self._delete_bundle(location)
        self.store.discard_staging(f"job-{job.id}")
        return scope_name, parent

    def _loadable_parent(self, scope: Scope, parent: ServingModel | None) -> ServingModel | None:
        """The parent if its bundle loads; a damaged one is marked failed and the scope's fallback taken.

        Raises:
            TrainerError: The base model is the parent and does not load.
        """
        from textgen.bundle import load_bundle

        while parent is not None:
            try:
                load_bundle(parent.path)
                return parent
            except TextgenError as error:
                if parent.version_id is None:
                    raise TrainerError(
                        f"the base model does not load; see the trainer's log\n{error}"
                    ) from None
                logger.error(
                    "%s does not load; marked failed, fine-tuning from the fallback: %s",
                    describe_model(parent),
                    error,
                )
                parent = self._persist(
                    functools.partial(self._fail_and_pick_again, scope, parent.version_id, str(error)),
                    "marking a damaged parent failed",
                )
        return None

    def _fail_and_pick_again(self, scope: Scope, version_id: int, problem: str) -> ServingModel | None:
        with self._session() as session, session.begin():
            fail_unloadable_version(session, version_id, problem, store=self.store)
            return serving_model_for_scope(
                session, scope, store=self.store, base_model=self.config.base_model
            )

    def _read_corpus(self, scope: Scope, scope_name: str) -> ScopeCorpus:
        # A plain read: SQLite's write lock is not needed, and bots keep writing messages meanwhile.
        def read() -> ScopeCorpus:
            with Session(self.engine) as session, session.begin():
                return load_scope_corpus(
                    session,
                    scope,
                    min_messages=self.config.min_messages,
                    holdout_fraction=self.config.holdout_fraction,
                    scope_name=scope_name,
                )

        return self._persist(read, "reading the corpus")

    def _spec_of(self, parent: ServingModel | None) -> tuple[dict[str, Any], str]:
        """The spec and tokenizer kind of the new model: the parent's when fine-tuning (ids must agree)."""
        if parent is None:
            return self.config.model_spec().to_dict(), "byte"
        from textgen.bundle import read_manifest

        manifest = read_manifest(parent.path)
        return dict(manifest["spec"]), str(manifest["tokenizer"])

    def _create_version(
        self,
        scope: Scope,
        job: TrainingJob,
        parent: ServingModel | None,
        spec: dict[str, Any],
        tokenizer_kind: str,
        corpus: ScopeCorpus,
    ) -> tuple[int, int]:
        with self._session() as session, session.begin():
            version = create_version(
                session,
                scope,
                tokenizer_kind=tokenizer_kind,
                spec=spec,
                corpus_stats={**corpus.stats, "job_id": job.id},
                parent_version_id=parent.version_id if parent is not None else None,
            )
            if parent is not None and parent.version_id is not None:
                parent_row = session.get(ModelVersion, parent.version_id)
                # Withdrawn since it was picked (forget-me, retention): never fine-tune from what must go.
                if parent_row is None or parent_row.status == "retired":
                    raise JobLost
            # Whose messages the weights will hold, the parent's included, for forget-me and retention.
            record_exposure(session, version, corpus.authors, corpus.oldest_message_at)
            version.note = f"job {job.id} (attempt {job.attempts}) from {describe_model(parent)}"
            return version.id, version.version

    def _train(
        self,
        attempt: _Attempt,
        corpus: ScopeCorpus,
        spec: dict[str, Any],
        parent: ServingModel | None,
        heartbeat: Heartbeat,
        version_number: int,
    ) -> Any:
        from textgen.spec import ModelSpec
        from textgen.training import TrainingProgress, train_model

        if parent is None:
            logger.info("job %d: no parent model; training from scratch (%s)", attempt.job.id, spec)
        else:
            logger.info("job %d: fine-tuning from %s", attempt.job.id, describe_model(parent))

        def on_progress(progress: TrainingProgress) -> None:
            report: JobProgress = {
                "epoch": progress.epoch,
                "epochs": progress.epochs,
                "loss": float(progress.loss),
                "fraction": float(progress.fraction),
            }
            if progress.eta_seconds is not None:
                report["eta_seconds"] = float(progress.eta_seconds)
            heartbeat.update(report)
            if heartbeat.lost.is_set():
                raise JobLost
            if self.stop.is_set():
                raise _StopRequested

        attempt.staging = self.store.new_staging_dir(f"job-{attempt.job.id}")
        _check_free_space(attempt.staging, parent)
        return train_model(
            corpus.train,
            attempt.staging / "bundle",
            spec=ModelSpec.from_dict(spec) if parent is None else None,
            config=self.config.textgen_train_config(),
            base=parent.path if parent is not None else None,
            progress=on_progress,
            started=attempt.started,
            extra_manifest={
                "scope_key": attempt.job.scope_key,
                "version": version_number,
                "job_id": attempt.job.id,
            },
        )

    def _incumbent(self, scope: Scope) -> ServingModel | None:
        """What serves the scope now, looked up again: an operator may have activated or rolled back."""
        with self._session() as session, session.begin():
            return serving_model_for_scope(
                session, scope, store=self.store, base_model=self.config.base_model
            )

    def _record(self, attempt: _Attempt, scope: Scope, verdict: Verdict) -> list[str]:
        assert attempt.published is not None and attempt.version_id is not None
        with self._session() as session, session.begin():
            return record_published(
                session,
                job_id=attempt.job.id,
                worker_id=self.worker_id,
                version_id=attempt.version_id,
                location=attempt.published,
                verdict=verdict,
                scope=scope,
                keep_versions=self.config.keep_versions,
            )

    # ---------------------------------------------------------------- undoing and closing

    def _abandon(self, attempt: _Attempt, reason: str) -> None:
        """Undo what an unfinished attempt created: its published bundle, its `training` row."""
        if attempt.registered:
            return
        if attempt.published is not None:
            self._delete_bundle(attempt.published)
        if attempt.version_id is None:
            return
        version_id = attempt.version_id

        def fail_version() -> None:
            with self._session() as session, session.begin():
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
            self._persist(lambda: release_job(self.engine, job_id, self.worker_id), "releasing the job")
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
            closed = self._persist(
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

    def _delete_bundle(self, location: str) -> None:
        try:
            self.store.delete(location)
        except BundleOutsideStore as error:
            # Never delete through a row that points elsewhere: it may name anyone's directory.
            logger.error("refused to delete a retired bundle: %s", error)
        except OSError as error:
            logger.warning("could not delete bundle %s: %s", location, error)


def one_line_error(error: BaseException) -> str:
    """The line users see for a failed job: the message of a user error, a full disk in words, else the
    exception's type and first line."""
    if _disk_full(error):
        return DISK_FULL
    if isinstance(error, TextgenError | DatabaseError):
        text = str(error)
    else:
        text = f"{type(error).__name__}: {error}; see the trainer's log"
    lines = text.strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 3] + "..."


def job_error_text(error: BaseException) -> str:
    """What a failed job's row keeps: the line users see, then the whole cause (every line of every
    chained exception) for operators. The bots show only the first line."""
    summary = one_line_error(error)
    causes: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        causes.append(f"{type(current).__name__}: {str(current).strip()}")
        current = current.__cause__ or current.__context__
    if len(causes) == 1 and str(error).strip() == summary:
        return summary  # a one-line user error is its own whole cause
    detail = "\ncaused by ".join(causes)[:MAX_DETAIL_CHARS]
    return f"{summary}\n{detail}"


def _disk_full(error: BaseException) -> bool:
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "errno", None) == errno.ENOSPC or "No space left on device" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _check_free_space(staging: Path, parent: ServingModel | None) -> None:
    """Refuse to train when the bundle could not be written: a write that fills the disk half-way through
    an HDF5 file can crash the whole process instead of raising.

    Raises:
        TrainerError: Less free space than twice the parent's bundle plus a margin.
    """
    parent_bytes = sum(f.stat().st_size for f in Path(parent.path).rglob("*") if f.is_file()) if parent else 0
    needed = 2 * parent_bytes + MIN_FREE_BYTES
    free = shutil.disk_usage(staging).free
    if free < needed:
        raise TrainerError(
            f"{DISK_FULL}\nOSError: [Errno {errno.ENOSPC}] No space left on device: {free / 1e6:.1f} MB free "
            f"at {staging}, a new bundle needs about {needed / 1e6:.1f} MB"
        )


def _clear_keras_session() -> None:
    # A long-running trainer builds models job after job; Keras' global state grows unless cleared.
    import sys

    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()
