"""The steps of a job that read or write the database, each run until the database answers.

A step waits out a database that is down (a restart, a dropped connection) rather than throw away the
work done so far; only a stopping trainer ends the wait (`DatabaseUnavailable`), and the job then goes
back to the queue.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.engine import immediate
from db.errors import BundleOutsideStore
from db.forgetting import record_exposure
from db.messages import retention_cutoff
from db.model_store import ModelStore
from db.models import ModelVersion, TrainingJob
from db.registry import create_version, mark_failed
from db.retry import DatabaseUnavailable, retry_on_lock
from db.scopes import Scope, describe_scope
from db.serving import ServingModel, fail_unloadable_version, serving_model_for_scope
from textgen.bundle import ServingBundle, load_serving_bundle
from textgen.errors import TextgenError
from textgen.spec import ModelSpec
from trainer.config import TrainerConfig
from trainer.corpus import ScopeCorpus, load_scope_corpus
from trainer.errors import JobLost, TrainerError
from trainer.gate import Verdict, describe_model
from trainer.notes import describe_parent, without_paths
from trainer.publishing import record_published

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A step waiting this long for the database says so in the log (once), then waits on.
NOTICE_OUTAGE_AFTER_S = 5.0


@dataclass(frozen=True)
class Parent:
    """The model a job fine-tunes from, loaded once: what served the scope, and its bundle.

    The same loaded bundle checks that the parent loads, gives the fine-tune its starting weights and
    tokenizer, and scores the incumbent at the gate when the parent still serves.
    """

    serving: ServingModel
    bundle: ServingBundle


@dataclass(frozen=True)
class NewVersion:
    """The `training` row a job created: its id, and its number within the scope."""

    id: int
    number: int


class JobSteps:
    """The database side of a job, for one worker.

    Args:
        engine: The database.
        config: Trainer configuration (the base model, the corpus settings).
        store: Where bundles live.
        worker_id: This worker's name in the queue.
        stop: Set when the trainer stops: a step waiting for the database gives up.
    """

    def __init__(
        self, engine: Engine, config: TrainerConfig, store: ModelStore, worker_id: str, stop: threading.Event
    ) -> None:
        self.engine = engine
        self.config = config
        self.store = store
        self.worker_id = worker_id
        self.stop = stop

    def persist(self, action: Callable[[], T], what: str) -> T:
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

    def session(self) -> Session:
        """A session whose transactions take SQLite's write lock at once (no upgrade deadlocks)."""
        return Session(immediate(self.engine), expire_on_commit=False)

    def pick_parent(self, scope: Scope, job: TrainingJob) -> tuple[str, ServingModel | None]:
        """Fail versions left `training` by dead attempts, then find what serves the scope now.

        Returns:
            The scope's name for messages, and what serves it (None: nothing, not even a base model).
        """
        return self.persist(
            functools.partial(self._clean_up_and_pick_parent, scope, job), "picking the parent model"
        )

    def _clean_up_and_pick_parent(self, scope: Scope, job: TrainingJob) -> tuple[str, ServingModel | None]:
        with self.session() as session, session.begin():
            scope_name = describe_scope(session, scope)
            orphans = session.scalars(
                select(ModelVersion).where(
                    ModelVersion.scope_key == scope.scope_key, ModelVersion.status == "training"
                )
            ).all()
            for orphan in orphans:
                mark_failed(session, orphan, f"its trainer stopped during training; job {job.id} ran again")
            parent = self._serving(session, scope)
            leftovers = [self.store.location_for(v.scope_key, v.version) for v in orphans]
        # An attempt that died after publishing but before registering left its bundle where no row points.
        for location in leftovers:
            self.delete_bundle(location)
        self.store.discard_staging(f"job-{job.id}")
        return scope_name, parent

    def load_parent(self, scope: Scope, serving: ServingModel | None) -> Parent | None:
        """The parent with its bundle loaded; a damaged one is marked failed and the scope's fallback taken.

        Raises:
            TrainerError: The base model is the parent and does not load.
        """
        while serving is not None:
            try:
                return Parent(serving, load_serving_bundle(serving.path))
            except TextgenError as error:
                if serving.version_id is None:
                    raise TrainerError(
                        f"the base model does not load; see the trainer's log\n{error}"
                    ) from None
                logger.error(
                    "%s does not load; marked failed, fine-tuning from the fallback: %s",
                    describe_model(serving),
                    error,
                )
                # The version's note is shown in chat: the log above keeps where the bundle is.
                problem = without_paths(str(error))
                serving = self.persist(
                    functools.partial(self._fail_and_pick_again, scope, serving.version_id, problem),
                    "marking a damaged parent failed",
                )
        return None

    def _fail_and_pick_again(self, scope: Scope, version_id: int, problem: str) -> ServingModel | None:
        with self.session() as session, session.begin():
            fail_unloadable_version(session, version_id, problem, store=self.store)
            return self._serving(session, scope)

    def read_corpus(self, scope: Scope, scope_name: str) -> ScopeCorpus:
        """The scope's trainable messages within the retention limit, and the newest held out for the gate.

        Raises:
            CorpusTooSmall: Fewer messages than `config.min_messages`.
        """

        # A plain read: SQLite's write lock is not needed, and bots keep writing messages meanwhile.
        def read() -> ScopeCorpus:
            with Session(self.engine) as session, session.begin():
                return load_scope_corpus(
                    session,
                    scope,
                    min_messages=self.config.min_messages,
                    holdout_fraction=self.config.holdout_fraction,
                    scope_name=scope_name,
                    max_chars=self.config.max_corpus_chars,
                    cutoff=retention_cutoff(self.config.retention_days),
                )

        return self.persist(read, "reading the corpus")

    def create_version(
        self,
        scope: Scope,
        job: TrainingJob,
        parent: Parent | None,
        spec: ModelSpec,
        tokenizer_kind: str,
        corpus: ScopeCorpus,
    ) -> NewVersion:
        """Create the `training` row of the model this job trains, recording whose messages it learns.

        Raises:
            JobLost: The parent was withdrawn (forget-me, retention) since it was picked.
        """
        parent_version_id = parent.serving.version_id if parent is not None else None
        # Shown by /status and /models to anyone: the parent by name, never where its bundle lives.
        note = f"job {job.id} (attempt {job.attempts}) from {describe_parent(parent.serving if parent else None)}"

        def create() -> NewVersion:
            with self.session() as session, session.begin():
                version = create_version(
                    session,
                    scope,
                    tokenizer_kind=tokenizer_kind,
                    spec=spec.to_dict(),
                    corpus_stats={**corpus.stats, "job_id": job.id},
                    parent_version_id=parent_version_id,
                )
                if parent_version_id is not None:
                    parent_row = session.get(ModelVersion, parent_version_id)
                    # Withdrawn since it was picked (forget-me, retention): never fine-tune from what must go.
                    if parent_row is None or parent_row.status == "retired":
                        raise JobLost
                # Whose messages, and which channels', the weights will hold, the parent's included: for
                # forget-me, channels taken back from the workspace, and retention.
                record_exposure(
                    session, version, corpus.authors, corpus.oldest_message_at, sorted(corpus.channels)
                )
                version.note = note
                return NewVersion(version.id, version.version)

        return self.persist(create, "creating the version")

    def incumbent(self, scope: Scope) -> ServingModel | None:
        """What serves the scope now, looked up again: an operator may have activated or rolled back."""

        def look_up() -> ServingModel | None:
            with self.session() as session, session.begin():
                return self._serving(session, scope)

        return self.persist(look_up, "looking up the incumbent")

    def record(
        self, job_id: int, version_id: int, location: str, scope: Scope, verdict: Verdict
    ) -> list[str]:
        """Point the version at its published bundle, apply the verdict and close the job, in one
        transaction. Returns the locations of the versions this retired (their bundles go next)."""

        def register() -> list[str]:
            with self.session() as session, session.begin():
                return record_published(
                    session,
                    job_id=job_id,
                    worker_id=self.worker_id,
                    version_id=version_id,
                    location=location,
                    verdict=verdict,
                    scope=scope,
                    keep_versions=self.config.keep_versions,
                )

        return self.persist(register, "registering the model")

    def delete_bundle(self, location: str) -> None:
        """Delete a bundle of the store; never one a row points at outside it."""
        try:
            self.store.delete(location)
        except BundleOutsideStore as error:
            # Never delete through a row that points elsewhere: it may name anyone's directory.
            logger.error("refused to delete a retired bundle: %s", error)
        except OSError as error:
            logger.warning("could not delete bundle %s: %s", location, error)

    def _serving(self, session: Session, scope: Scope) -> ServingModel | None:
        return serving_model_for_scope(session, scope, store=self.store, base_model=self.config.base_model)
