"""The retention limit (`CHATSMITH_RETENTION_DAYS`): old messages go, and so do the models that hold them.

Run on the trainer's schedule. Messages written before the cutoff are deleted; every model version that
learned from one of them (directly or through its parent) is withdrawn exactly as for `forget-me`
(`db.forgetting`): it stops serving at once, can never be activated or rolled back to, and its bundle is
deleted; the scope falls back to a clean version, the workspace model or the base model; running jobs that
may have read the old messages start again; and scopes with enough messages left are queued for retraining.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import CursorResult, Engine, delete, select
from sqlalchemy.orm import Session

from db.engine import immediate
from db.forgetting import Withdrawal, plan_retraining, versions_older_than, withdraw_versions
from db.jobs import request_training
from db.messages import retention_cutoff
from db.model_store import ModelStore
from db.models import Channel, Message
from db.retry import retry_on_lock
from db.scopes import Scope

logger = logging.getLogger(__name__)


@dataclass
class RetentionResult:
    """What one pass of the retention limit did."""

    deleted_messages: int = 0
    withdrawal: Withdrawal = field(default_factory=Withdrawal)
    retrain: list[Scope] = field(default_factory=list)
    too_small: list[Scope] = field(default_factory=list)


def apply_retention(
    engine: Engine, store: ModelStore, days: int, *, min_messages: int, now: datetime | None = None
) -> RetentionResult:
    """Delete messages older than `days` days and withdraw the model versions that learned from them.

    Args:
        engine: The database.
        store: Where the withdrawn bundles are deleted.
        days: The retention limit; 0 or less does nothing.
        min_messages: Trainable messages a scope needs for a retrain (the trainer's minimum).
        now: The current time (tests).
    """
    cutoff = retention_cutoff(days, now)
    if cutoff is None:
        return RetentionResult()

    def attempt() -> RetentionResult:
        with Session(immediate(engine), expire_on_commit=False) as session, session.begin():
            channels = session.execute(
                select(Channel.workspace_id, Channel.id)
                .where(Channel.id.in_(select(Message.channel_id).where(Message.created_at < cutoff)))
                .distinct()
            ).all()
            affected = [Scope(w) for w in sorted({w for w, _ in channels})] + [
                Scope(w, c) for w, c in channels
            ]
            result = session.execute(delete(Message).where(Message.created_at < cutoff))
            deleted = result.rowcount if isinstance(result, CursorResult) else 0
            withdrawal = withdraw_versions(
                session,
                versions_older_than(session, cutoff),
                reason=f"its corpus held messages older than the retention limit of {days} days",
                affected_scopes=affected,
                bundle_exists=store.exists,
            )
            plan = plan_retraining(session, withdrawal, affected, min_messages)
            return RetentionResult(deleted, withdrawal, plan.retrain, plan.too_small)

    outcome = retry_on_lock(attempt)
    for location in outcome.withdrawal.bundle_locations:
        try:
            store.delete(location)
        except Exception:
            # The row is withdrawn already, so nothing can load the bundle again.
            logger.exception("could not delete a withdrawn bundle")
    for scope in outcome.retrain:
        request_training(engine, scope, "schedule", "retention")
    if outcome.deleted_messages or outcome.withdrawal.versions:
        logger.info(
            "retention (%d days): deleted %d messages, withdrew %d model versions, queued %d retrains",
            days,
            outcome.deleted_messages,
            len(outcome.withdrawal.versions),
            len(outcome.retrain),
        )
    return outcome
