"""Taking messages out of the models: which versions learned from whom, and withdrawing those that must go.

Every version the trainer makes records the members whose messages shaped its weights: the authors of
its own corpus and, because fine-tuning keeps what the parent learned, every author its parent had
(`record_exposure`). It records the channels those messages came from the same way, so that a channel
that stops being shared takes back what the workspace's models learned from it, and the oldest message
behind it, for the retention limit.

When a member asks to be forgotten (`forget-me`), messages pass the retention limit, or a channel stops
being shared (`versions_that_saw_channel`), `withdraw_versions`
takes every version that saw them out of service in the caller's transaction: it is marked retired, its
bundle location is cleared (so it can never be activated or rolled back to again) and returned for the
caller to delete once committed. A scope whose active version went falls back at once to its newest clean
version that served before; without one, serving falls through to the workspace model or the base model
(`db.serving`). Running training jobs that may have read the messages, or fine-tune from a withdrawn
version, are put back in the queue: their worker learns it from its next heartbeat and publishes nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import and_, exists, not_, or_, select
from sqlalchemy.orm import Session

from db.errors import NothingToRollBack
from db.messages import count_messages_since
from db.models import ModelVersion, ModelVersionAuthor, ModelVersionChannel, TrainingJob, utcnow
from db.registry import BundleExists, active_version, list_versions, rollback
from db.scopes import Scope

WITHDRAWN_STATUSES = ("retired",)


@dataclass
class Withdrawal:
    """What `withdraw_versions` did.

    Attributes:
        versions: The withdrawn versions as (scope key, version number), oldest scope first.
        bundle_locations: Their bundle locations, to delete after the transaction commits.
        fallbacks: For each scope whose serving version was withdrawn, the version number that serves it
            now, or None when the workspace model or the base model answers there.
        requeued_jobs: Running training jobs stopped and queued again.
    """

    versions: list[tuple[str, int]] = field(default_factory=list)
    bundle_locations: list[str] = field(default_factory=list)
    fallbacks: dict[str, int | None] = field(default_factory=dict)
    requeued_jobs: list[int] = field(default_factory=list)


def record_exposure(
    session: Session,
    version: ModelVersion,
    authors: Iterable[str],
    oldest_message_at: datetime | None,
    channels: Iterable[int] | None = None,
) -> None:
    """Record whose messages, and which channels', `version` learned from: its corpus's plus its parent's.

    A parent whose exposure was never recorded makes the version unrecorded too (it may have seen anyone),
    and likewise for channels.

    Args:
        session: The caller's session (flushed, not committed).
        version: A new version, its `parent_version_id` set.
        authors: Authors of the messages in its corpus.
        oldest_message_at: When the oldest of those messages was written.
        channels: Database ids of the channels those messages came from; None when unknown, which
            counts as every channel of the workspace.
    """
    everyone = set(authors)
    places = set(channels or ())
    oldest = oldest_message_at
    recorded = True
    channels_recorded = channels is not None
    parent = session.get(ModelVersion, version.parent_version_id) if version.parent_version_id else None
    if parent is not None:
        recorded = parent.exposure_recorded
        channels_recorded = channels_recorded and parent.channels_recorded
        everyone |= set(
            session.scalars(
                select(ModelVersionAuthor.author_id).where(ModelVersionAuthor.model_version_id == parent.id)
            )
        )
        places |= set(
            session.scalars(
                select(ModelVersionChannel.channel_id).where(
                    ModelVersionChannel.model_version_id == parent.id
                )
            )
        )
        if parent.oldest_message_at is not None:
            oldest = min(oldest, parent.oldest_message_at) if oldest else parent.oldest_message_at
    version.exposure_recorded = recorded
    version.channels_recorded = channels_recorded
    version.oldest_message_at = oldest
    session.add_all(
        ModelVersionAuthor(model_version_id=version.id, author_id=a[:64]) for a in sorted(everyone)
    )
    session.add_all(ModelVersionChannel(model_version_id=version.id, channel_id=c) for c in sorted(places))
    session.flush()


def channels_learned_from(session: Session, version: ModelVersion) -> set[int] | None:
    """Database ids of the channels `version` learned from; None when that was never recorded."""
    if not version.channels_recorded:
        return None
    return set(
        session.scalars(
            select(ModelVersionChannel.channel_id).where(ModelVersionChannel.model_version_id == version.id)
        )
    )


def versions_that_saw_channel(session: Session, channel: Scope) -> list[ModelVersion]:
    """Versions, outside the channel's own models, that learned from its messages (or may have).

    These are what must go when the channel stops being shared with its workspace (unshared, turned
    private, deleted or left): the workspace's models and the channel models tuned from them. The channel's
    own models answer only in that channel and stay.
    """
    if channel.channel_id is None:
        raise ValueError("Received a workspace scope, expected a channel")
    saw = exists().where(
        ModelVersionChannel.model_version_id == ModelVersion.id,
        ModelVersionChannel.channel_id == channel.channel_id,
    )
    elsewhere = or_(ModelVersion.channel_id.is_(None), ModelVersion.channel_id != channel.channel_id)
    return _withdrawable(
        session, channel.workspace_id, and_(elsewhere, or_(saw, not_(ModelVersion.channels_recorded)))
    )


def versions_that_saw_author(session: Session, workspace_id: int, author_id: str) -> list[ModelVersion]:
    """Versions of the workspace's models that learned from `author_id` (or may have), still withdrawable."""
    saw = exists().where(
        ModelVersionAuthor.model_version_id == ModelVersion.id, ModelVersionAuthor.author_id == author_id
    )
    return _withdrawable(session, workspace_id, or_(saw, not_(ModelVersion.exposure_recorded)))


def versions_older_than(session: Session, cutoff: datetime) -> list[ModelVersion]:
    """Versions, in any workspace, that learned from a message written before `cutoff` (or may have)."""
    return _withdrawable(
        session,
        None,
        or_(
            ModelVersion.oldest_message_at < cutoff,
            and_(not_(ModelVersion.exposure_recorded), ModelVersion.created_at < cutoff),
        ),
    )


def _withdrawable(session: Session, workspace_id: int | None, condition: object) -> list[ModelVersion]:
    query = select(ModelVersion).where(
        condition,  # type: ignore[arg-type]
        or_(ModelVersion.status.not_in(WITHDRAWN_STATUSES), ModelVersion.bundle_path.is_not(None)),
    )
    if workspace_id is not None:
        query = query.where(ModelVersion.workspace_id == workspace_id)
    return list(session.scalars(query.order_by(ModelVersion.scope_key, ModelVersion.version)))


def withdraw_versions(
    session: Session,
    versions: list[ModelVersion],
    *,
    reason: str,
    affected_scopes: Iterable[Scope] = (),
    bundle_exists: BundleExists | None = None,
    now: datetime | None = None,
) -> Withdrawal:
    """Take `versions` out of service for good, fall back where they served, and requeue tainted jobs.

    Args:
        session: The caller's session, ideally holding the write lock; commit it, then delete
            `bundle_locations`.
        versions: The versions to withdraw (see `versions_that_saw_author`, `versions_older_than`).
        reason: Why, for the versions' notes ("its corpus held messages deleted by forget-me").
        affected_scopes: Scopes whose stored messages changed: a running job of one of them may have read
            them, so it is queued again even if no withdrawn version is involved yet.
        bundle_exists: Whether a fallback's bundle is there (a `ModelStore`'s `exists`); default: a local
            path that exists.
        now: The current time (tests).

    Returns:
        What was withdrawn, what serves instead, and which jobs were queued again.
    """
    moment = now or utcnow()
    result = Withdrawal()
    withdrawn_ids = {version.id for version in versions}
    scopes_served: dict[str, Scope] = {}
    for version in versions:
        if version.status == "active":
            scopes_served[version.scope_key] = Scope(version.workspace_id, version.channel_id)
        if version.bundle_path:
            result.bundle_locations.append(version.bundle_path)
        result.versions.append((version.scope_key, version.version))
        version.note = f"{version.note}; withdrawn: {reason}" if version.note else f"withdrawn: {reason}"
        version.status = "retired"
        version.bundle_path = None
        # Flush each demotion at once: the one-active-per-scope index checks rows as they change.
        session.flush()
    for scope_key, scope in scopes_served.items():
        if active_version(session, scope) is not None:
            continue
        try:
            result.fallbacks[scope_key] = rollback(
                session, scope, bundle_exists=bundle_exists, now=moment
            ).version
        except NothingToRollBack:
            result.fallbacks[scope_key] = None
    result.requeued_jobs = _requeue_tainted_jobs(
        session, versions, withdrawn_ids, {scope.scope_key for scope in affected_scopes}, moment
    )
    session.flush()
    return result


def _requeue_tainted_jobs(
    session: Session,
    versions: list[ModelVersion],
    withdrawn_ids: set[int],
    affected_keys: set[str],
    moment: datetime,
) -> list[int]:
    """Queue again the running jobs that read changed messages or fine-tune from a withdrawn version."""
    workspaces = {version.workspace_id for version in versions}
    workspaces |= {Scope.from_key(key).workspace_id for key in affected_keys}
    if not workspaces:
        return []
    running = session.scalars(
        select(TrainingJob)
        .where(TrainingJob.status == "running", TrainingJob.workspace_id.in_(workspaces))
        .order_by(TrainingJob.id)
        .with_for_update()
    ).all()
    tainted_keys = affected_keys | {version.scope_key for version in versions}
    requeued = []
    for job in running:
        # The version an attempt trains is created after its corpus is read, so a job that has none yet
        # may be reading right now; it goes back to the queue whenever its workspace lost a model.
        training = session.scalars(
            select(ModelVersion).where(
                ModelVersion.scope_key == job.scope_key, ModelVersion.status == "training"
            )
        ).all()
        fine_tunes_withdrawn = any(v.parent_version_id in withdrawn_ids for v in training) or (
            not training and bool(withdrawn_ids)
        )
        if job.scope_key not in tainted_keys and not fine_tunes_withdrawn:
            continue
        job.status = "queued"
        job.error = (
            f"stopped at {moment:%Y-%m-%d %H:%M:%S} UTC: it may have read withdrawn messages; queued again"
        )
        job.worker_id = None
        job.heartbeat_at = None
        job.started_at = None
        job.progress = None
        # Not the job's fault: the attempt does not count against its limit.
        job.attempts = max(0, job.attempts - 1)
        for version in training:
            version.status = "failed"
            version.note = f"{version.note}; stopped: its job may have read withdrawn messages"
        requeued.append(job.id)
    return requeued


@dataclass(frozen=True)
class RetrainPlan:
    """Which scopes to retrain after messages went, and which have too few left for the trainer.

    Attributes:
        retrain: Scopes with enough trainable messages for a new model.
        too_small: Scopes with models but fewer messages than the trainer needs; they serve the fallback.
    """

    retrain: list[Scope]
    too_small: list[Scope]


def plan_retraining(
    session: Session, withdrawal: Withdrawal, affected_scopes: Iterable[Scope], min_messages: int
) -> RetrainPlan:
    """Scopes that lost a version, or had models and lost messages, split by whether they can retrain."""
    scopes: dict[str, Scope] = {key: Scope.from_key(key) for key, _ in withdrawal.versions}
    for scope in affected_scopes:
        if scope.scope_key not in scopes and list_versions(session, scope):
            scopes[scope.scope_key] = scope
    retrain: list[Scope] = []
    too_small: list[Scope] = []
    for key in sorted(scopes, key=lambda k: (Scope.from_key(k).channel_id is not None, k)):
        scope = scopes[key]
        enough = count_messages_since(session, scope, None) >= max(1, min_messages)
        (retrain if enough else too_small).append(scope)
    return RetrainPlan(retrain, too_small)


def delete_bundle_directory(location: str) -> None:
    """Delete a withdrawn bundle kept at a local path (stores without a `ModelStore` object).

    Renamed first, so that no reader ever loads a half-deleted bundle; a bundle already gone is fine.
    """
    path = Path(location)
    if not path.is_dir():
        return
    doomed = path.with_name(f".withdrawn-{path.name}-{os.getpid()}")
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
