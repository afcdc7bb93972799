"""The model registry: version numbers, promotion, rejection, rollback, retirement, serving fallback."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.errors import DatabaseError, NothingToRollBack
from db.models import ModelVersion
from db.registry import (
    active_version,
    create_version,
    list_versions,
    mark_candidate,
    next_version_number,
    promote,
    reject,
    resolve_serving_version,
    retire_old_versions,
    rollback,
)
from db.scopes import Scope

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SPEC = {"architecture": "lstm", "units": 64}


@pytest.fixture
def publish(session: Session, tmp_path: Path) -> Callable[..., ModelVersion]:
    """Train-and-publish stand-in: a version with a real bundle directory, promoted unless told not to."""

    def make(scope: Scope, *, activate: bool = True, nats: float = 1.0) -> ModelVersion:
        version = create_version(
            session, scope, tokenizer_kind="bytes", spec=SPEC, corpus_stats={"messages": 10}
        )
        bundle = tmp_path / "models" / scope.scope_key.replace("/", "-") / f"v{version.version}"
        bundle.mkdir(parents=True)
        mark_candidate(session, version, bundle_path=str(bundle), metrics={"nats_per_char": nats})
        if activate:
            promote(session, version)
        session.commit()
        return version

    return make


def _scopes(make_channel: Callable) -> tuple[Scope, Scope]:
    channel = make_channel()
    return Scope(channel.workspace_id), Scope.of(channel)


def test_version_numbers_count_per_scope(session: Session, make_channel: Callable) -> None:
    workspace, channel = _scopes(make_channel)
    assert next_version_number(session, channel) == 1

    first = create_version(session, channel, tokenizer_kind="bytes", spec=SPEC)
    second = create_version(session, channel, tokenizer_kind="bytes", spec=SPEC, parent_version_id=first.id)
    elsewhere = create_version(session, workspace, tokenizer_kind="bytes", spec=SPEC)

    assert (first.version, second.version, elsewhere.version) == (1, 2, 1)
    assert (first.status, second.parent_version_id) == ("training", first.id)
    assert [v.version for v in list_versions(session, channel)] == [2, 1]


def test_promote_demotes_the_previous_active_version(
    session: Session, make_channel: Callable, publish: Callable
) -> None:
    _, scope = _scopes(make_channel)
    first = publish(scope)
    second = publish(scope, activate=False)
    assert active_version(session, scope) == first

    previous = promote(session, second, now=T0)
    session.commit()

    assert previous == first
    assert (first.status, second.status, second.activated_at) == ("candidate", "active", T0)
    assert active_version(session, scope) == second
    with pytest.raises(DatabaseError, match="cannot be activated"):
        promote(session, create_version(session, scope, tokenizer_kind="bytes", spec=SPEC))


def test_database_allows_one_active_version_per_scope(
    engine: Engine, session: Session, make_channel: Callable, publish: Callable
) -> None:
    _, scope = _scopes(make_channel)
    publish(scope)
    spare = publish(scope, activate=False)

    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(update(ModelVersion).where(ModelVersion.id == spare.id).values(status="active"))


def test_reject_keeps_the_figures(session: Session, make_channel: Callable, publish: Callable) -> None:
    _, scope = _scopes(make_channel)
    active = publish(scope)
    candidate = publish(scope, activate=False)

    figures = {"candidate_nats_per_char": 1.31, "active_nats_per_char": 1.20}
    reject(session, candidate, figures, note="worse than v1 on 200 held-out messages")
    session.commit()

    assert (candidate.status, candidate.metrics, candidate.note) == ("rejected", figures, candidate.note)
    assert active_version(session, scope) == active


def test_rollback_serves_the_previous_good_version(
    session: Session, make_channel: Callable, publish: Callable
) -> None:
    _, scope = _scopes(make_channel)
    first = publish(scope)
    never_served = publish(scope, activate=False)
    third = publish(scope)

    restored = rollback(session, scope, now=T0)
    session.commit()

    assert restored == first
    assert (first.status, first.activated_at) == ("active", T0)
    assert third.status == "rejected" and "rolled back to v1" in third.note
    assert never_served.status == "candidate"
    with pytest.raises(NothingToRollBack, match="no earlier model version"):
        rollback(session, scope)


def test_retire_keeps_the_newest_and_the_active_version(
    session: Session, make_channel: Callable, publish: Callable
) -> None:
    _, scope = _scopes(make_channel)
    versions = [publish(scope) for _ in range(4)]  # v4 active, v1-v3 candidates
    rollback(session, scope)  # v3 active again, v4 rejected
    training = create_version(session, scope, tokenizer_kind="bytes", spec=SPEC)
    session.commit()
    bundles = [v.bundle_path for v in versions]

    deleted = retire_old_versions(session, scope, keep=2)
    session.commit()

    assert deleted == [bundles[1], bundles[0]]
    assert [(v.version, v.status) for v in list_versions(session, scope)] == [
        (5, "training"),
        (4, "rejected"),
        (3, "active"),
        (2, "retired"),
        (1, "retired"),
    ]
    assert versions[0].bundle_path is None and training.status == "training"
    assert retire_old_versions(session, scope, keep=2) == []
    with pytest.raises(DatabaseError, match="at least 1"):
        retire_old_versions(session, scope, keep=0)


def test_serving_prefers_channel_then_workspace_then_base(
    session: Session, make_channel: Callable, publish: Callable
) -> None:
    workspace, channel = _scopes(make_channel)
    assert resolve_serving_version(session, workspace.workspace_id, channel.channel_id) is None

    workspace_model = publish(workspace)
    assert resolve_serving_version(session, workspace.workspace_id, channel.channel_id) == workspace_model
    channel_model = publish(channel)
    assert resolve_serving_version(session, workspace.workspace_id, channel.channel_id) == channel_model
    assert resolve_serving_version(session, workspace.workspace_id) == workspace_model


def test_missing_bundle_falls_back_to_the_previous_version_and_is_flagged(
    session: Session, make_channel: Callable, publish: Callable
) -> None:
    workspace, channel = _scopes(make_channel)
    workspace_model = publish(workspace)
    first = publish(channel)
    second = publish(channel)
    Path(second.bundle_path).rmdir()

    served = resolve_serving_version(session, channel.workspace_id, channel.channel_id, now=T0)
    session.commit()

    assert served == first and first.status == "active"
    assert second.status == "failed"
    assert f"bundle missing at {second.bundle_path}" in second.note
    # With no good channel version left, the workspace model serves.
    Path(first.bundle_path).rmdir()
    assert resolve_serving_version(session, channel.workspace_id, channel.channel_id) == workspace_model
    assert first.status == "failed" and active_version(session, channel) is None
