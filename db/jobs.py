"""The training queue: the `training_jobs` table, which bots insert into and trainer workers claim from.

A job moves queued -> running -> succeeded | failed | cancelled. A scope has at most one queued-or-running
job (a partial unique index, so the database enforces it across processes). Workers claim atomically, send
heartbeats while they train, and a job whose heartbeat went stale (its worker died) is requeued, up to a
limit of attempts, then failed with the reason.

The queue is fair between workspaces: the next job comes from the workspace whose last job started
longest ago (never started comes first), oldest job first within it, so one busy workspace cannot hold
every trainer while others wait. `enqueue_job` can also cap how many jobs one workspace has queued.

Functions that take a `Session` join the caller's transaction; those that take an `Engine` run their own
short transactions, take SQLite's write lock up front, and retry when another writer holds it. Claims,
heartbeats and the stale cut-off are stamped with the database server's clock (`db.clock`), so trainers
on hosts whose clocks disagree never mistake a live job for a dead one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypedDict

from sqlalchemy import Engine, ScalarSelect, Update, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from db.clock import database_now
from db.engine import immediate
from db.errors import DatabaseError
from db.models import JOB_REASONS, OPEN_JOB_STATUSES, TrainingJob
from db.retry import retry_on_lock
from db.scopes import Scope

FINISHED_STATUSES = ("succeeded", "failed", "cancelled")


class JobProgress(TypedDict, total=False):
    """What a running job reports, stored as JSON in `TrainingJob.progress` for the bots to show."""

    epoch: int
    epochs: int
    loss: float
    eta_seconds: float
    fraction: float


class QueueFull(DatabaseError):
    """A workspace already has as many jobs queued as it may; the request was not queued."""


class Enqueued(NamedTuple):
    """The scope's open job, and whether this call created it (False: one was already queued or running)."""

    job: TrainingJob
    created: bool


@dataclass
class StaleJobs:
    """What `requeue_stale_jobs` did: ids of jobs put back in the queue, and of jobs failed for good."""

    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def _check_reason(reason: str) -> None:
    if reason not in JOB_REASONS:
        raise DatabaseError(f"Received job reason {reason!r}, expected one of {', '.join(JOB_REASONS)}")


def open_job(session: Session, scope: Scope) -> TrainingJob | None:
    """The scope's queued or running job, if any."""
    return session.scalars(
        select(TrainingJob).where(
            TrainingJob.scope_key == scope.scope_key, TrainingJob.status.in_(OPEN_JOB_STATUSES)
        )
    ).one_or_none()


def latest_job(session: Session, scope: Scope) -> TrainingJob | None:
    """The scope's most recently created job, whatever its status (for `/train status`)."""
    return session.scalars(
        select(TrainingJob)
        .where(TrainingJob.scope_key == scope.scope_key)
        .order_by(TrainingJob.created_at.desc(), TrainingJob.id.desc())
        .limit(1)
    ).one_or_none()


def enqueue_job(
    session: Session,
    scope: Scope,
    reason: str,
    requested_by: str | None = None,
    *,
    max_queued_in_workspace: int | None = None,
) -> Enqueued:
    """Queue a training job for `scope` unless one is already queued or running.

    Two callers racing each insert; the database's partial unique index lets one win, and the other gets
    the winner's job back. On SQLite a racing caller may instead see "database is locked" when its
    transaction read before the other committed: run the whole transaction again (`retry_on_lock`), or
    use `request_training`, which does.

    Args:
        session: The caller's session (flushed, not committed).
        scope: Workspace or channel to train.
        reason: "schedule", "admin" or "cli".
        requested_by: Who asked (a platform user id, "scheduler", "cli").
        max_queued_in_workspace: Refuse a new job when the scope's workspace already has this many
            queued (None: no cap). Requests that must not wait on a cap, such as retrains that remove a
            member's messages, pass None.

    Returns:
        The open job and whether it was created by this call.

    Raises:
        QueueFull: The workspace has `max_queued_in_workspace` jobs queued already.
    """
    _check_reason(reason)
    existing = open_job(session, scope)
    if existing is not None:
        return Enqueued(existing, False)
    if max_queued_in_workspace is not None:
        queued = queued_in_workspace(session, scope.workspace_id)
        if queued >= max_queued_in_workspace:
            raise QueueFull(
                f"this workspace already has {queued} training jobs queued, the most it may; "
                "try again when one of them has run"
            )
    job = TrainingJob(
        workspace_id=scope.workspace_id,
        channel_id=scope.channel_id,
        scope_key=scope.scope_key,
        reason=reason,
        requested_by=requested_by,
        status="queued",
        attempts=0,
    )
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        existing = open_job(session, scope)
        if existing is None:  # some other constraint failed, not the one-open-job index
            raise
        return Enqueued(existing, False)
    return Enqueued(job, True)


def request_training(
    engine: Engine,
    scope: Scope,
    reason: str,
    requested_by: str | None = None,
    *,
    max_queued_in_workspace: int | None = None,
) -> Enqueued:
    """`enqueue_job` in a transaction of its own, committed, retried while the database is locked."""

    def attempt() -> Enqueued:
        with Session(immediate(engine), expire_on_commit=False) as session, session.begin():
            return enqueue_job(
                session, scope, reason, requested_by, max_queued_in_workspace=max_queued_in_workspace
            )

    return retry_on_lock(attempt)


def queued_in_workspace(session: Session, workspace_id: int) -> int:
    """How many jobs of the workspace wait in the queue (running ones not counted)."""
    count = session.scalar(
        select(func.count(TrainingJob.id)).where(
            TrainingJob.workspace_id == workspace_id, TrainingJob.status == "queued"
        )
    )
    return count or 0


def _last_start_of_workspace() -> ScalarSelect[datetime | None]:
    """When the queued job's workspace last had a job started: the queue's fairness key."""
    earlier = aliased(TrainingJob)
    return (
        select(func.max(earlier.started_at))
        .where(earlier.workspace_id == TrainingJob.workspace_id)
        .scalar_subquery()
    )


def _fair_order() -> tuple[Any, ...]:
    """The order jobs leave the queue in: the workspace served longest ago first, then oldest job first."""
    return (_last_start_of_workspace().asc().nulls_first(), TrainingJob.created_at, TrainingJob.id)


def queue_position(session: Session, scope: Scope) -> int | None:
    """Where the scope's open job stands: None (no open job), 0 (running), or 1, 2, ... (queued; 1 is next).

    The position assumes no new job arrives: each workspace's turn comes round in the order the queue
    serves them (`claim_next_job`), one job per turn.
    """
    job = open_job(session, scope)
    if job is None:
        return None
    if job.status == "running":
        return 0
    rows = session.execute(
        select(TrainingJob.id, TrainingJob.workspace_id, _last_start_of_workspace().label("last_start"))
        .where(TrainingJob.status == "queued")
        .order_by(TrainingJob.created_at, TrainingJob.id)
    ).all()
    queued = [(row.id, row.workspace_id, row.last_start) for row in rows]
    return _fair_sequence(queued).index(job.id) + 1


def _fair_sequence(queued: Sequence[tuple[int, int, datetime | None]]) -> list[int]:
    """Job ids in the order the queue hands them out: workspaces take turns, longest-unserved first.

    `queued` is every queued job, oldest first, with its workspace and when that workspace last had a
    job started. Each turn takes the oldest job of the workspace served longest ago, and that workspace
    then counts as served just now.
    """
    waiting: dict[int, list[int]] = {}
    last_served: dict[int, tuple[int, datetime, int]] = {}
    for position, (job_id, workspace_id, last_start) in enumerate(queued):
        waiting.setdefault(workspace_id, []).append(job_id)
        # Never served sorts first; ties go to the workspace whose oldest job came first.
        last_served.setdefault(
            workspace_id, (0, datetime.min, position) if last_start is None else (1, last_start, position)
        )
    order: list[int] = []
    turn = 0
    while waiting:
        workspace_id = min(waiting, key=lambda workspace: last_served[workspace])
        order.append(waiting[workspace_id].pop(0))
        if not waiting[workspace_id]:
            del waiting[workspace_id]
        turn += 1
        last_served[workspace_id] = (2, datetime.min, turn)
    return order


def claim_next_job(engine: Engine, worker_id: str, *, now: datetime | None = None) -> TrainingJob | None:
    """Atomically take the next queued job for `worker_id`, or None when the queue is empty.

    The next job is the oldest of the workspace whose last job started longest ago (see the module's
    docstring). One statement picks and updates the row: `UPDATE ... WHERE id = (SELECT id ... WHERE
    status='queued' ORDER BY <fairness>, created_at LIMIT 1 [FOR UPDATE SKIP LOCKED]) AND
    status='queued' RETURNING ...`. On SQLite it
    runs inside `BEGIN IMMEDIATE`, so claims are serialised by the write lock; on PostgreSQL `SKIP LOCKED`
    lets concurrent workers pass over a row another worker is taking. Either way a job is claimed once.

    Returns:
        The claimed job (detached; its columns stay readable), with status "running", `attempts` counted
        up, and `started_at` and `heartbeat_at` set.
    """

    def attempt() -> TrainingJob | None:
        with Session(immediate(engine), expire_on_commit=False) as session, session.begin():
            return session.scalars(statement(now or database_now(session))).one_or_none()

    def statement(moment: datetime) -> Update:
        next_id = (
            select(TrainingJob.id)
            .where(TrainingJob.status == "queued")
            .order_by(*_fair_order())
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        return (
            update(TrainingJob)
            .where(TrainingJob.id == next_id, TrainingJob.status == "queued")
            .values(
                status="running",
                worker_id=worker_id,
                attempts=TrainingJob.attempts + 1,
                started_at=moment,
                heartbeat_at=moment,
                finished_at=None,
            )
            .returning(TrainingJob)
        )

    return retry_on_lock(attempt)


def heartbeat(
    engine: Engine,
    job_id: int,
    worker_id: str,
    progress: JobProgress | None = None,
    *,
    now: datetime | None = None,
) -> bool:
    """Record that `worker_id` is still working on the job, with its progress if given.

    Returns:
        False when the job is no longer this worker's to run (cancelled, or requeued after it was
        thought dead): the worker should stop and not publish.
    """

    def statement(moment: datetime) -> Update:
        values: dict[str, object] = {"heartbeat_at": now or moment}
        if progress is not None:
            values["progress"] = dict(progress)
        return (
            update(TrainingJob)
            .where(
                TrainingJob.id == job_id, TrainingJob.status == "running", TrainingJob.worker_id == worker_id
            )
            .values(**values)
        )

    return _update_one(engine, statement)


def finish_job(
    engine: Engine,
    job_id: int,
    status: str,
    *,
    error: str | None = None,
    model_version_id: int | None = None,
    worker_id: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Close a job as "succeeded", "failed" or "cancelled".

    Args:
        engine: The database.
        job_id: The job.
        status: The final status. "cancelled" also closes a job still queued.
        error: Why it failed (shown to users; keep it one line, no secrets).
        model_version_id: The model version it produced, if any.
        worker_id: When given, only close the job if this worker still holds it.
        now: The finishing time (tests).

    Returns:
        Whether the job was closed now (False: not found, already finished, or held by another worker).
    """
    if status not in FINISHED_STATUSES:
        raise DatabaseError(
            f"Received final job status {status!r}, expected one of {', '.join(FINISHED_STATUSES)}"
        )
    allowed_from = ("queued", "running") if status == "cancelled" else ("running",)
    conditions = [TrainingJob.id == job_id, TrainingJob.status.in_(allowed_from)]
    if worker_id is not None:
        conditions.append(TrainingJob.worker_id == worker_id)

    def statement(moment: datetime) -> Update:
        return (
            update(TrainingJob)
            .where(*conditions)
            .values(status=status, error=error, model_version_id=model_version_id, finished_at=now or moment)
        )

    return _update_one(engine, statement)


def release_job(engine: Engine, job_id: int, worker_id: str) -> bool:
    """Put a running job back in the queue without counting the attempt: its trainer was stopped.

    Returns:
        Whether the job was still this worker's and went back to the queue.
    """
    statement = (
        update(TrainingJob)
        .where(TrainingJob.id == job_id, TrainingJob.status == "running", TrainingJob.worker_id == worker_id)
        .values(
            status="queued",
            worker_id=None,
            heartbeat_at=None,
            started_at=None,
            progress=None,
            attempts=TrainingJob.attempts - 1,
            error=f"released by {worker_id} when it was stopped; runs again when a trainer is up",
        )
    )
    return _update_one(engine, lambda _moment: statement)


def _update_one(engine: Engine, statement: Callable[[datetime], Update]) -> bool:
    """Run the update that `statement` builds for the database's current time; whether it hit one row."""

    def attempt() -> bool:
        with immediate(engine).begin() as connection:
            return connection.execute(statement(database_now(connection))).rowcount == 1

    return retry_on_lock(attempt)


def requeue_stale_jobs(
    engine: Engine, *, stale_after: timedelta, max_attempts: int, now: datetime | None = None
) -> StaleJobs:
    """Put back in the queue the running jobs whose worker stopped sending heartbeats.

    A job that has already been tried `max_attempts` times is failed instead, with the reason in its
    `error`, so that a job that kills its worker every time cannot block its scope for ever.

    Args:
        engine: The database.
        stale_after: How long without a heartbeat before a worker counts as dead; make it several
            heartbeat intervals.
        max_attempts: How many claims a job gets in all.
        now: The current time (tests).

    Returns:
        The ids requeued and the ids failed.
    """

    def attempt() -> StaleJobs:
        result = StaleJobs()
        with Session(immediate(engine), expire_on_commit=False) as session, session.begin():
            moment = now or database_now(session)
            cutoff = moment - stale_after
            stale = session.scalars(
                select(TrainingJob)
                .where(
                    TrainingJob.status == "running",
                    or_(
                        TrainingJob.heartbeat_at < cutoff,
                        and_(TrainingJob.heartbeat_at.is_(None), TrainingJob.started_at < cutoff),
                    ),
                )
                .order_by(TrainingJob.id)
                .with_for_update(skip_locked=True)
            ).all()
            for job in stale:
                last_seen = job.heartbeat_at or job.started_at
                silence = f"worker {job.worker_id} sent no heartbeat since {last_seen:%Y-%m-%d %H:%M:%S} UTC"
                if job.attempts >= max_attempts:
                    job.status = "failed"
                    job.finished_at = moment
                    job.error = f"{silence}; gave up after {job.attempts} attempts"
                    result.failed.append(job.id)
                else:
                    job.status = "queued"
                    job.error = f"{silence}; requeued (attempt {job.attempts} of {max_attempts})"
                    job.worker_id = None
                    job.heartbeat_at = None
                    job.started_at = None
                    result.requeued.append(job.id)
        return result

    return retry_on_lock(attempt)
