"""Channel lineage: which channels each model version learned from, and withdrawing what a channel gave."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from db.errors import NothingToRollBack
from db.forgetting import (
    channels_learned_from,
    record_exposure,
    versions_that_saw_channel,
    withdraw_versions,
)
from db.models import Channel, ModelVersion, utcnow
from db.registry import create_version, mark_candidate, promote, rollback
from db.scopes import Scope
from db.serving import serving_model_for_scope


def trained(
    session: Session,
    scope: Scope,
    tmp_path: Path,
    channels: set[int] | None,
    *,
    parent: ModelVersion | None = None,
) -> ModelVersion:
    """A published, active version of `scope` that learned from `channels` (and its parent's)."""
    version = create_version(
        session, scope, tokenizer_kind="byte", spec={}, parent_version_id=parent.id if parent else None
    )
    record_exposure(session, version, {"ann"}, utcnow(), channels)
    bundle = tmp_path / f"bundle-{scope.scope_key.replace('/', '-')}-v{version.version}"
    bundle.mkdir()
    mark_candidate(session, version, bundle_path=str(bundle))
    promote(session, version)
    return version


def test_versions_inherit_the_channels_their_parent_learned_from(
    session: Session, make_channel: Callable[..., Channel], tmp_path: Path
) -> None:
    general, random, secret = make_channel("general"), make_channel("random"), make_channel("secret")
    workspace = Scope(general.workspace_id)
    first = trained(session, workspace, tmp_path, {general.id})
    second = trained(session, workspace, tmp_path, {random.id}, parent=first)
    own = trained(session, Scope.of(secret), tmp_path, {secret.id}, parent=second)
    session.commit()

    assert channels_learned_from(session, second) == {general.id, random.id}
    assert channels_learned_from(session, own) == {general.id, random.id, secret.id}
    # What learned from #general, outside #general's own models: both workspace versions and the channel
    # model tuned from them.
    assert {v.id for v in versions_that_saw_channel(session, Scope.of(general))} == {
        first.id,
        second.id,
        own.id,
    }
    assert {v.id for v in versions_that_saw_channel(session, Scope.of(random))} == {second.id, own.id}
    # #secret's own model is not taken back from #secret; nothing else learned from it.
    assert versions_that_saw_channel(session, Scope.of(secret)) == []


def test_unknown_channels_count_as_every_channel(
    session: Session, make_channel: Callable[..., Channel], tmp_path: Path
) -> None:
    general, random = make_channel("general"), make_channel("random")
    workspace = Scope(general.workspace_id)
    unknown = trained(session, workspace, tmp_path, None)
    child = trained(session, workspace, tmp_path, {general.id}, parent=unknown)
    session.commit()

    assert channels_learned_from(session, unknown) is None
    # A child of an unrecorded parent is unrecorded too: it may hold anything its parent learned.
    assert channels_learned_from(session, child) is None
    assert {v.id for v in versions_that_saw_channel(session, Scope.of(random))} == {unknown.id, child.id}


def test_withdrawing_a_channel_falls_back_to_a_version_that_never_saw_it(
    session: Session, make_channel: Callable[..., Channel], tmp_path: Path
) -> None:
    general, shared = make_channel("general"), make_channel("shared")
    workspace = Scope(general.workspace_id)
    clean = trained(session, workspace, tmp_path, {general.id})
    tainted = trained(session, workspace, tmp_path, {shared.id}, parent=clean)
    session.commit()

    withdrawal = withdraw_versions(
        session, versions_that_saw_channel(session, Scope.of(shared)), reason="#shared was unshared"
    )
    session.commit()

    assert withdrawal.versions == [(workspace.scope_key, tainted.version)]
    assert withdrawal.fallbacks == {workspace.scope_key: clean.version}
    serving = serving_model_for_scope(session, Scope.of(general))
    assert serving is not None and serving.version_id == clean.id
    # The withdrawn version can never come back, by rollback or otherwise.
    with pytest.raises(NothingToRollBack):
        rollback(session, workspace)
    assert tainted.bundle_path is None and "unshared" in (tainted.note or "")


def test_a_workspace_scope_is_refused_where_a_channel_is_expected(
    session: Session, make_channel: Callable[..., Channel]
) -> None:
    general = make_channel("general")
    with pytest.raises(ValueError, match="expected a channel"):
        versions_that_saw_channel(session, Scope(general.workspace_id))
