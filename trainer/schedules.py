"""Per-scope retrain schedules: a cron job per scope, rebuilt from the database, enqueueing only when needed.

Every channel with collection on, and every workspace with such a channel, gets a job with id
`retrain:<scope_key>` in the scheduler's memory. When it fires it enqueues a `schedule` job only if
trainable messages arrived since the scope's last model, so a quiet channel costs nothing.

The schedules are derived from the scopes in the database rather than kept as APScheduler's pickled rows
there: unpickling rows would let anyone who can write to the database run code in the trainer. What a
persistent store gave, a run missed while the trainer was down, `catch_up_missed_runs` recovers from the
database at start. The running service registers the engine here with `set_schedule_context`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, true
from sqlalchemy.orm import Session

from db.jobs import Enqueued, request_training
from db.messages import count_messages_since
from db.models import Channel, ModelVersion, TrainingJob
from db.scopes import Scope

logger = logging.getLogger(__name__)

SCHEDULE_ID_PREFIX = "retrain:"
# A run missed while the trainer was down still happens when it comes back, within this many seconds.
MISFIRE_GRACE_SECONDS = 6 * 3600


@dataclass(frozen=True)
class _ScheduleContext:
    engine: Engine
    min_messages: int


_context: _ScheduleContext | None = None


def set_schedule_context(engine: Engine | None, min_messages: int = 0) -> None:
    """Register (or, with None, clear) the database that scheduled retrains of this process use."""
    global _context
    _context = _ScheduleContext(engine, min_messages) if engine is not None else None


def scheduled_scopes(session: Session) -> list[Scope]:
    """Scopes that get a retrain schedule: channels collecting messages, and their workspaces."""
    rows = session.execute(
        select(Channel.workspace_id, Channel.id).where(Channel.collecting == true()).order_by(Channel.id)
    ).all()
    workspaces = sorted({workspace_id for workspace_id, _ in rows})
    return [Scope(workspace_id) for workspace_id in workspaces] + [Scope(w, c) for w, c in rows]


def retrain_if_new_messages(engine: Engine, scope: Scope, *, min_messages: int = 0) -> Enqueued | None:
    """Enqueue a `schedule` job for `scope` if trainable messages arrived since its last model.

    A scope that never had a model is enqueued only once it has `min_messages`, so that the schedule does
    not fail a too-small corpus every night.

    Returns:
        The scope's open job (new or already there), or None when nothing was enqueued.
    """
    with Session(engine) as session:
        last_model = session.scalar(
            select(func.max(ModelVersion.created_at)).where(
                ModelVersion.scope_key == scope.scope_key, ModelVersion.status != "failed"
            )
        )
        new_messages = count_messages_since(session, scope, last_model)
    if new_messages == 0 or (last_model is None and new_messages < min_messages):
        logger.info(
            "scope %s: %d new messages since its last model; not retraining", scope.scope_key, new_messages
        )
        return None
    enqueued = request_training(engine, scope, "schedule", "scheduler")
    logger.info(
        "scope %s: %d new messages; %s job %d",
        scope.scope_key,
        new_messages,
        "queued" if enqueued.created else "already has",
        enqueued.job.id,
    )
    return enqueued


def catch_up_missed_runs(
    engine: Engine, trigger: Any, *, min_messages: int = 0, now: datetime | None = None
) -> list[Scope]:
    """Run the retrain check of every scope whose last cron time passed while nothing checked it.

    A scope's run counts as missed when the cron expression fired within `MISFIRE_GRACE_SECONDS` before
    `now` and the scope has no job created since then (a run that found nothing new creates none, so such a
    scope is simply checked again: only new messages queue anything).

    Returns:
        The scopes for which a job is open after the catch-up.
    """
    moment = now or datetime.now(UTC)
    last_fire = _last_fire_time(trigger, moment)
    if last_fire is None:
        return []
    with Session(engine) as session:
        scopes = scheduled_scopes(session)
        newest_jobs = select(TrainingJob.scope_key, func.max(TrainingJob.created_at)).group_by(
            TrainingJob.scope_key
        )
        checked_since = {key: created for key, created in session.execute(newest_jobs)}
    queued = []
    for scope in scopes:
        last_job = checked_since.get(scope.scope_key)
        if last_job is not None and last_job >= last_fire:
            continue
        if retrain_if_new_messages(engine, scope, min_messages=min_messages) is not None:
            queued.append(scope)
    if queued:
        logger.info("caught up %d retrain(s) missed at %s UTC", len(queued), f"{last_fire:%Y-%m-%d %H:%M}")
    return queued


def _last_fire_time(trigger: Any, now: datetime) -> datetime | None:
    """The latest time `trigger` fired in the grace period before `now`, or None."""
    previous = None
    fire = trigger.get_next_fire_time(None, now - timedelta(seconds=MISFIRE_GRACE_SECONDS))
    while fire is not None and fire <= now:
        previous = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return previous


def run_scheduled_retrain(scope_key: str) -> None:
    """The function APScheduler's stored cron jobs call (by reference): retrain one scope if needed."""
    if _context is None:
        logger.warning("retrain of scope %s fired outside a running trainer; ignored", scope_key)
        return
    retrain_if_new_messages(_context.engine, Scope.from_key(scope_key), min_messages=_context.min_messages)


def sync_schedules(scheduler: Any, engine: Engine, expression: str, trigger: Any) -> tuple[int, int]:
    """Make the scheduler's retrain jobs match the scopes in the database.

    A job whose cron expression changed is rescheduled; jobs of scopes no longer collecting are removed;
    others are left alone so their next run time is kept.

    Args:
        scheduler: A started APScheduler 3 scheduler.
        engine: The database.
        expression: The cron expression (kept in the job's name to notice a change).
        trigger: The `CronTrigger` built from it.

    Returns:
        How many schedules were added or changed, and how many removed.
    """
    with Session(engine) as session:
        wanted = {f"{SCHEDULE_ID_PREFIX}{scope.scope_key}": scope for scope in scheduled_scopes(session)}
    existing = {job.id: job for job in scheduler.get_jobs() if job.id.startswith(SCHEDULE_ID_PREFIX)}
    changed = removed = 0
    for job_id, scope in wanted.items():
        name = f"retrain scope {scope.scope_key} at '{expression}'"
        current = existing.get(job_id)
        if current is not None and current.name == name:
            continue
        scheduler.add_job(
            run_scheduled_retrain,
            trigger=trigger,
            args=[scope.scope_key],
            id=job_id,
            name=name,
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=MISFIRE_GRACE_SECONDS,
        )
        changed += 1
    for job_id in existing.keys() - wanted.keys():
        scheduler.remove_job(job_id)
        removed += 1
    if changed or removed:
        logger.info(
            "retrain schedules: %d added or changed, %d removed ('%s' UTC)", changed, removed, expression
        )
    return changed, removed
