"""The model registry: versions of each scope's model, which one serves, promotion and rollback.

A version moves training -> candidate -> active (or rejected, or failed). Promoting a candidate demotes
the scope's previous active version to candidate in the same transaction (a partial unique index allows
one active version per scope). A version that was active once and is still a candidate with a bundle is a
rollback target. Retired versions have had their bundle deleted.

Every function takes the caller's session and flushes without committing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.errors import DatabaseError, NothingToRollBack
from db.models import ModelVersion, utcnow
from db.scopes import Scope

BundleExists = Callable[[str], bool]
# Why a bundle location cannot serve (one line for operators), or None when it can.
BundleProblem = Callable[[str], str | None]


def bundle_path_exists(bundle_path: str) -> bool:
    """The default check of `resolve_serving_version`: the bundle is a path on this machine that exists."""
    return os.path.exists(bundle_path)


def _problem_check(bundle_exists: BundleExists | None, bundle_problem: BundleProblem | None) -> BundleProblem:
    if bundle_problem is not None:
        return bundle_problem
    exists = bundle_exists or bundle_path_exists
    return lambda path: None if exists(path) else f"bundle missing at {path}"


def get_version(session: Session, version_id: int) -> ModelVersion:
    """The model version with this id.

    Raises:
        DatabaseError: There is none (the message suggests `chatsmith models list`).
    """
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise DatabaseError(f"no model version with id {version_id}; see `chatsmith models list`")
    return version


def next_version_number(session: Session, scope: Scope) -> int:
    """1 for a scope's first model, else one more than its highest version number."""
    highest = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.scope_key == scope.scope_key)
    )
    return (highest or 0) + 1


def create_version(
    session: Session,
    scope: Scope,
    *,
    tokenizer_kind: str,
    spec: dict[str, Any],
    corpus_stats: dict[str, Any] | None = None,
    parent_version_id: int | None = None,
    bundle_path: str | None = None,
    status: str = "training",
) -> ModelVersion:
    """Register a new version of the scope's model with the next version number.

    Args:
        session: The caller's session.
        scope: The scope it is trained for.
        tokenizer_kind: Name of its tokenizer ("bytes", "chars", "words", "bpe").
        spec: Its model spec, as JSON-compatible data.
        corpus_stats: What it was trained on (message and character counts).
        parent_version_id: The version it was fine-tuned from, if any.
        bundle_path: Where its bundle is, when already published.
        status: "training" while it trains; "candidate" when registering a finished bundle.

    Returns:
        The new row, flushed (its id is set).
    """
    if status not in ("training", "candidate"):
        raise DatabaseError(
            f"Received status {status!r} for a new version, expected 'training' or 'candidate'"
        )
    version = ModelVersion(
        workspace_id=scope.workspace_id,
        channel_id=scope.channel_id,
        scope_key=scope.scope_key,
        version=next_version_number(session, scope),
        status=status,
        bundle_path=bundle_path,
        spec=spec,
        tokenizer_kind=tokenizer_kind,
        corpus_stats=corpus_stats,
        parent_version_id=parent_version_id,
    )
    session.add(version)
    session.flush()
    return version


def mark_candidate(
    session: Session, version: ModelVersion, *, bundle_path: str, metrics: dict[str, Any] | None = None
) -> ModelVersion:
    """A version finished training and its bundle was published at `bundle_path`; it awaits the gate."""
    version.status = "candidate"
    version.bundle_path = bundle_path
    if metrics is not None:
        version.metrics = metrics
    session.flush()
    return version


def mark_failed(session: Session, version: ModelVersion, note: str) -> ModelVersion:
    """A version's training failed; `note` says why."""
    version.status = "failed"
    version.note = note
    session.flush()
    return version


def active_version(session: Session, scope: Scope) -> ModelVersion | None:
    """The scope's active version, if any (without checking its bundle; see `resolve_serving_version`)."""
    return session.scalars(
        select(ModelVersion).where(ModelVersion.scope_key == scope.scope_key, ModelVersion.status == "active")
    ).one_or_none()


def promote(session: Session, version: ModelVersion, *, now: datetime | None = None) -> ModelVersion | None:
    """Make `version` its scope's active model; the previous active one becomes a candidate again.

    Both changes happen in the caller's transaction, so readers see the old or the new model, never none.

    Returns:
        The version that was active before, or None.

    Raises:
        DatabaseError: `version` has no bundle, or is in a status that cannot serve.
    """
    if version.status == "active":
        return None
    if version.status not in ("candidate", "rejected") or not version.bundle_path:
        raise DatabaseError(
            f"model version {version.id} (v{version.version}, {version.status}) has no published bundle and "
            "cannot be activated; pick a candidate from `chatsmith models list`"
        )
    previous = active_version(session, Scope(version.workspace_id, version.channel_id))
    if previous is not None:
        previous.status = "candidate"
        # Flush the demotion first: the one-active-per-scope index checks each row as it is updated.
        session.flush()
    version.status = "active"
    version.activated_at = now or utcnow()
    session.flush()
    return previous


def reject(
    session: Session, version: ModelVersion, metrics: dict[str, Any] | None = None, note: str | None = None
) -> ModelVersion:
    """The promotion gate turned `version` down; keep the figures it was judged on."""
    version.status = "rejected"
    if metrics is not None:
        version.metrics = metrics
    if note is not None:
        version.note = note
    session.flush()
    return version


def list_versions(session: Session, scope: Scope) -> list[ModelVersion]:
    """All versions of a scope's model, newest first."""
    return list(
        session.scalars(
            select(ModelVersion)
            .where(ModelVersion.scope_key == scope.scope_key)
            .order_by(ModelVersion.version.desc())
        )
    )


def _rollback_targets(session: Session, scope: Scope, below: int | None) -> list[ModelVersion]:
    """Earlier good versions, newest first: candidates that served once and still have a bundle."""
    query = select(ModelVersion).where(
        ModelVersion.scope_key == scope.scope_key,
        ModelVersion.status == "candidate",
        ModelVersion.activated_at.is_not(None),
        ModelVersion.bundle_path.is_not(None),
    )
    if below is not None:
        query = query.where(ModelVersion.version < below)
    return list(session.scalars(query.order_by(ModelVersion.version.desc())))


def rollback(
    session: Session,
    scope: Scope,
    *,
    bundle_exists: BundleExists | None = None,
    bundle_problem: BundleProblem | None = None,
    now: datetime | None = None,
) -> ModelVersion:
    """Serve the scope's previous good version again; the current active one is marked rejected.

    Earlier versions whose bundle cannot serve (`bundle_problem`, else `bundle_exists`) are flagged failed
    on the way.

    Returns:
        The version now active.

    Raises:
        NothingToRollBack: The scope has no earlier version that served and still has its bundle.
    """
    check = _problem_check(bundle_exists, bundle_problem)
    current = active_version(session, scope)
    for candidate in _rollback_targets(session, scope, current.version if current else None):
        problem = check(candidate.bundle_path or "")
        if problem is not None:
            flag_unservable(candidate, problem, now)
            continue
        if current is not None:
            current.status = "rejected"
            current.note = _append_note(current.note, f"rolled back to v{candidate.version}")
            session.flush()
        candidate.status = "active"
        candidate.activated_at = now or utcnow()
        session.flush()
        return candidate
    session.flush()
    raise NothingToRollBack(
        "no earlier model version with its bundle to roll back to; train a new one with `/train` "
        "or `chatsmith train-scope`"
    )


def roll_back_or_fall_back(
    session: Session,
    scope: Scope,
    *,
    bundle_exists: BundleExists | None = None,
    now: datetime | None = None,
) -> ModelVersion | None:
    """`rollback`, and when no earlier good version exists, the active one is set aside all the same.

    The scope then serves what served before its first version: its workspace's model for a channel,
    else the base model.

    Returns:
        The version now active, or None when the scope has none and falls back.

    Raises:
        NothingToRollBack: The scope has no active version either.
    """
    try:
        return rollback(session, scope, bundle_exists=bundle_exists, now=now)
    except NothingToRollBack:
        current = active_version(session, scope)
        if current is None:
            raise
        current.status = "rejected"
        current.note = _append_note(current.note, "rolled back to what served before it")
        session.flush()
        return None


def resolve_serving_version(
    session: Session,
    workspace_id: int,
    channel_id: int | None = None,
    *,
    bundle_exists: BundleExists | None = None,
    bundle_problem: BundleProblem | None = None,
    now: datetime | None = None,
) -> ModelVersion | None:
    """The version that should answer `/generate` in a channel.

    The channel's active version, else the workspace's, else None (use the base model). An active version
    whose bundle cannot serve (gone from disk, or outside the model directory) is marked failed with a note
    for operators, and the scope's previous good version is activated in its place, so the next request
    does not look again.

    Args:
        session: The caller's session; commit it to keep the flags and fallbacks made here.
        workspace_id: The workspace of the request.
        channel_id: Its channel, or None for a workspace-wide request.
        bundle_exists: Whether a bundle path is still there.
        bundle_problem: Why a bundle path cannot serve, or None when it can (a `ModelStore`'s `problem`);
            takes precedence over `bundle_exists`.
        now: The current time (tests).
    """
    check = _problem_check(bundle_exists, bundle_problem)
    scopes = [Scope(workspace_id, channel_id)] if channel_id is not None else []
    scopes.append(Scope(workspace_id))
    # Both scopes' active versions in one query: every reply asks.
    active = {
        version.scope_key: version
        for version in session.scalars(
            select(ModelVersion).where(
                ModelVersion.scope_key.in_([scope.scope_key for scope in scopes]),
                ModelVersion.status == "active",
            )
        )
    }
    for scope in scopes:
        version = active.get(scope.scope_key)
        if version is None:
            continue
        problem = check(version.bundle_path) if version.bundle_path else "no bundle"
        if problem is None:
            return version
        flag_unservable(version, problem, now)
        session.flush()
        try:
            return rollback(session, scope, bundle_problem=check, now=now)
        except NothingToRollBack:
            continue
    return None


def flag_unservable(version: ModelVersion, problem: str, now: datetime | None = None) -> None:
    """Mark a version failed because its bundle cannot serve; `problem` (one line) goes in its note.

    A failed version is never served, rolled back to, or fine-tuned from again.
    """
    moment = now or utcnow()
    version.status = "failed"
    version.note = _append_note(
        version.note, f"{problem} (found {moment:%Y-%m-%d %H:%M} UTC); retrain or restore it"
    )


def _append_note(note: str | None, addition: str) -> str:
    return addition if not note else f"{note}; {addition}"


def retire_old_versions(session: Session, scope: Scope, keep: int) -> list[str]:
    """Keep the newest `keep` versions of a scope (the active one always among them) and retire the rest.

    Versions still training are left alone. Retired rows stay (history) with their bundle path cleared.

    Args:
        session: The caller's session.
        scope: The scope to tidy.
        keep: How many versions to keep, counting the active one; at least 1.

    Returns:
        The bundle paths of the retired versions, for the caller to delete after committing.
    """
    if keep < 1:
        raise DatabaseError(f"Received keep={keep}, expected at least 1 model version to keep")
    versions = [v for v in list_versions(session, scope) if v.status not in ("training", "retired")]
    active = [v for v in versions if v.status == "active"]
    others = [v for v in versions if v.status != "active"]
    kept = len(active)
    bundle_paths: list[str] = []
    for version in others:
        if kept < keep:
            kept += 1
            continue
        if version.bundle_path:
            bundle_paths.append(version.bundle_path)
        version.note = _append_note(version.note, f"retired (bundle was {version.bundle_path})")
        version.status = "retired"
        version.bundle_path = None
    session.flush()
    return bundle_paths
