"""Which model bundle serves a scope: the one rule the bots, the trainer and the CLI all read.

The channel's active model, else the workspace's active model, else the base model: a channel without a
model of its own still answers. An active version whose bundle vanished from disk, or lies outside the
model directory, is flagged failed and the scope's previous good version takes over
(`db.registry.resolve_serving_version`), so a lost bundle degrades to an older model instead of an error;
one that is there but does not load is reported by whoever tried to load it (`fail_unloadable_version`),
with the same effect. The bots answer `/generate` with `serving_model_in`, the CLI with
`resolve_serving_model`; the trainer uses `serving_model_for_scope` to pick the parent it fine-tunes
from and the incumbent its candidate must beat.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from db.errors import NothingToRollBack
from db.model_store import ModelStore
from db.models import ModelVersion
from db.registry import flag_unservable, resolve_serving_version, rollback
from db.retry import retry_on_lock
from db.scopes import Scope, find_scope

SOURCES = ("channel", "workspace", "base")
# A lineage longer than this is a cycle in damaged rows, not a real chain of fine-tunes.
MAX_ANCESTORS = 16


@dataclass(frozen=True)
class ServingModel:
    """The bundle that serves a scope, and where it came from.

    Attributes:
        path: Local bundle directory, ready for `Generator.from_bundle` or `load_bundle`.
        source: "channel", "workspace" or "base".
        version_id: The `ModelVersion` id; None for the base model.
        version: The version number within its scope; None for the base model.
        scope_key: The scope of the version; None for the base model.
        ancestors: The bundles it was fine-tuned from, parent first (the base model is not among them):
            their messages are in its weights too, so a reply is checked against their copy guards.
    """

    path: Path
    source: str
    version_id: int | None = None
    version: int | None = None
    scope_key: str | None = None
    ancestors: tuple[Path, ...] = ()


def ancestor_bundles(
    session: Session, version: ModelVersion, store: ModelStore | None = None
) -> tuple[Path, ...]:
    """The bundles of the versions `version` was fine-tuned from, parent first, in the caller's session.

    Stops at a version fine-tuned from the base model (no parent row) or whose parent row is gone.
    """
    paths: list[Path] = []
    seen = {version.id}
    parent_id = version.parent_version_id
    while parent_id is not None and parent_id not in seen and len(paths) < MAX_ANCESTORS:
        seen.add(parent_id)
        parent = session.get(ModelVersion, parent_id)
        if parent is None:
            break
        if parent.bundle_path:
            paths.append(
                store.local_path(parent.bundle_path) if store is not None else Path(parent.bundle_path)
            )
        parent_id = parent.parent_version_id
    return tuple(paths)


def serving_model_for_scope(
    session: Session, scope: Scope, *, store: ModelStore | None = None, base_model: Path | None = None
) -> ServingModel | None:
    """What serves `scope` now: its active model, a channel's workspace model, or the base model.

    Flags active versions whose bundle is missing and rolls back past them in the caller's session
    (commit it to keep that). For a workspace scope only the workspace's own model counts.

    Args:
        session: The caller's session.
        scope: The channel or workspace.
        store: Where bundles live; None: locations are local paths.
        base_model: The base model bundle, or None when there is none.

    Returns:
        The serving model, or None when nothing is trained and there is no base model.
    """
    problem = store.problem if store is not None else None
    version = resolve_serving_version(session, scope.workspace_id, scope.channel_id, bundle_problem=problem)
    if version is not None and version.bundle_path:
        path = store.local_path(version.bundle_path) if store is not None else Path(version.bundle_path)
        return ServingModel(
            path=path,
            source="channel" if version.channel_id is not None else "workspace",
            version_id=version.id,
            version=version.version,
            scope_key=version.scope_key,
            ancestors=ancestor_bundles(session, version, store),
        )
    if base_model is not None:
        return ServingModel(path=Path(base_model), source="base")
    return None


def serving_model_in(
    session: Session,
    platform: str,
    workspace: str,
    channel: str | None = None,
    *,
    store: ModelStore | None = None,
    base_model: Path | None = None,
) -> ServingModel | None:
    """What serves a channel (or workspace) named by platform ids, in the caller's session.

    A workspace or channel the database does not know yet is served by what serves above it (the
    workspace model, the base model). Like `serving_model_for_scope`, it may flag a vanished bundle in the
    caller's session.

    Args:
        session: The caller's session.
        platform: "discord", "slack" or "console".
        workspace: The platform's workspace (guild, team) id, as stored in `workspaces.external_id`.
        channel: The platform's channel id, or None for the workspace model.
        store: Where bundles live; None: locations are local paths.
        base_model: The base model bundle, or None when there is none.

    Returns:
        The serving model, or None when nothing is trained there and there is no base model.
    """
    scope = find_scope(session, platform, workspace, channel) if channel is not None else None
    if scope is None:
        scope = find_scope(session, platform, workspace)
    if scope is None:
        return ServingModel(path=Path(base_model), source="base") if base_model is not None else None
    return serving_model_for_scope(session, scope, store=store, base_model=base_model)


def resolve_serving_model(
    engine: Engine,
    platform: str,
    workspace: str,
    channel: str | None = None,
    *,
    store: ModelStore | None = None,
    base_model: Path | None = None,
) -> ServingModel | None:
    """`serving_model_in` in a short transaction of its own, retried while the database is locked.

    Commits any flag it set on a vanished bundle, so the next request does not look again.

    Returns:
        The serving model, or None when nothing is trained there and there is no base model.
    """

    def attempt() -> ServingModel | None:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            return serving_model_in(session, platform, workspace, channel, store=store, base_model=base_model)

    return retry_on_lock(attempt)


def fail_unloadable_version(
    session: Session, version_id: int, problem: str, *, store: ModelStore | None = None
) -> ModelVersion | None:
    """A version's bundle is there but does not load (damaged): mark it failed, and when it was serving,
    let the scope's previous good version serve in its place, in the caller's session.

    A failed version is never served, rolled back to or fine-tuned from again. Where the scope has no
    earlier good version, the workspace model or the base model serves (`serving_model_for_scope`).

    Args:
        session: The caller's session (commit it to keep the change).
        version_id: The version whose bundle failed to load.
        problem: The loader's one-line message, kept in the version's note for operators.
        store: Where bundles live, to check the fallback's bundle; None: locations are local paths.

    Returns:
        The version now active in that scope, if any.
    """
    version = session.get(ModelVersion, version_id)
    if version is None or version.status == "failed":
        return None
    was_active = version.status == "active"
    flag_unservable(version, f"bundle does not load: {problem}")
    session.flush()
    if not was_active:
        return None
    try:
        scope = Scope(version.workspace_id, version.channel_id)
        return rollback(session, scope, bundle_problem=store.problem if store is not None else None)
    except NothingToRollBack:
        return None
