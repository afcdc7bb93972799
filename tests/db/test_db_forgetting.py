"""Withdrawing model versions that learned from forgotten or expired messages (`db.forgetting`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.errors import DatabaseError, NothingToRollBack
from db.forgetting import (
    plan_retraining,
    record_exposure,
    versions_older_than,
    versions_that_saw_author,
    withdraw_versions,
)
from db.jobs import claim_next_job, enqueue_job, heartbeat
from db.models import Channel, Message, ModelVersion, TrainingJob, utcnow
from db.registry import create_version, mark_candidate, promote, rollback
from db.scopes import Scope
from db.serving import serving_model_for_scope


def trained(
    session: Session,
    scope: Scope,
    tmp_path: Path,
    authors: set[str],
    *,
    parent: ModelVersion | None = None,
    active: bool = True,
    days_old: int = 0,
) -> ModelVersion:
    """A published version of `scope` that learned from `authors` (and its parent's)."""
    version = create_version(
        session,
        scope,
        tokenizer_kind="byte",
        spec={},
        parent_version_id=parent.id if parent is not None else None,
    )
    record_exposure(session, version, authors, utcnow() - timedelta(days=days_old))
    bundle = tmp_path / f"bundle-{scope.scope_key.replace('/', '-')}-v{version.version}"
    bundle.mkdir()
    mark_candidate(session, version, bundle_path=str(bundle))
    if active:
        promote(session, version)
    return version


def test_a_channel_model_inherits_what_its_workspace_parent_saw(
    session: Session, make_channel: Callable[..., Channel], tmp_path: Path
) -> None:
    general = make_channel("general")
    workspace, channel = Scope(general.workspace_id), Scope.of(general)
    parent = trained(session, workspace, tmp_path, {"ann", "bob"})
    child = trained(session, channel, tmp_path, {"carl"}, parent=parent)
    session.commit()

    assert {v.id for v in versions_that_saw_author(session, general.workspace_id, "ann")} == {
        parent.id,
        child.id,
    }
    assert [v.id for v in versions_that_saw_author(session, general.workspace_id, "carl")] == [child.id]
    assert versions_that_saw_author(session, general.workspace_id, "dora") == []


def test_a_version_without_records_counts_as_having_seen_everyone(
    session: Session, make_channel: Callable[..., Channel], tmp_path: Path
) -> None:
    general = make_channel("general")
    legacy = create_version(session, Scope.of(general), tokenizer_kind="byte", spec={})
    session.commit()
    assert [v.id for v in versions_that_saw_author(session, general.workspace_id, "anyone")] == [legacy.id]


def test_withdrawn_versions_fall_back_and_can_never_serve_again(
    session: Session, make_channel: Callable[..., Channel], tmp_path: Path
) -> None:
    general = make_channel("general")
    scope = Scope.of(general)
    clean = trained(session, scope, tmp_path, {"bob"})
    tainted = trained(session, scope, tmp_path, {"ann", "bob"}, parent=clean)
    later = trained(session, scope, tmp_path, {"bob"}, parent=tainted)
    session.commit()
    bundle = Path(tainted.bundle_path or "")

    withdrawal = withdraw_versions(
        session, versions_that_saw_author(session, general.workspace_id, "ann"), reason="forget-me"
    )
    session.commit()

    assert withdrawal.versions == [(scope.scope_key, 2), (scope.scope_key, 3)]
    assert withdrawal.fallbacks == {scope.scope_key: 1}
    assert bundle.as_posix() in withdrawal.bundle_locations
    serving = serving_model_for_scope(session, scope)
    assert serving is not None and serving.version == 1
    for version in (tainted, later):
        session.refresh(version)
        assert version.status == "retired" and version.bundle_path is None
        with pytest.raises(DatabaseError, match="cannot be activated"):
            promote(session, version)
    with pytest.raises(NothingToRollBack):
        rollback(session, scope)


def test_a_scope_without_a_clean_version_falls_through_to_the_workspace_model(
    session: Session, make_channel: Callable[..., Channel], tmp_path: Path
) -> None:
    general = make_channel("general")
    workspace_model = trained(session, Scope(general.workspace_id), tmp_path, {"bob"})
    trained(session, Scope.of(general), tmp_path, {"ann"})
    session.commit()

    withdrawal = withdraw_versions(
        session, versions_that_saw_author(session, general.workspace_id, "ann"), reason="forget-me"
    )
    session.commit()

    assert withdrawal.fallbacks == {Scope.of(general).scope_key: None}
    serving = serving_model_for_scope(session, Scope.of(general))
    assert serving is not None and serving.version_id == workspace_model.id


def test_a_running_job_that_read_the_messages_is_stopped_and_queued_again(
    engine: Engine, session: Session, make_channel: Callable[..., Channel], tmp_path: Path
) -> None:
    general, random = make_channel("general"), make_channel("random")
    enqueue_job(session, Scope.of(general), "admin")
    enqueue_job(session, Scope.of(random), "admin")
    session.commit()
    first = claim_next_job(engine, "worker-a")
    second = claim_next_job(engine, "worker-b")
    assert first is not None and second is not None

    # Ann wrote only in #general: the job of #general may have read her words; #random's did not.
    withdrawal = withdraw_versions(session, [], reason="forget-me", affected_scopes=[Scope.of(general)])
    session.commit()

    assert withdrawal.requeued_jobs == [first.id]
    jobs = {job.id: job for job in session.scalars(select(TrainingJob))}
    assert jobs[first.id].status == "queued" and jobs[first.id].attempts == 0
    assert jobs[second.id].status == "running"
    # The worker learns it from its next heartbeat, and so publishes nothing.
    assert heartbeat(engine, first.id, "worker-a") is False
    assert heartbeat(engine, second.id, "worker-b") is True


def test_retraining_plan_names_scopes_with_too_few_messages_left(
    session: Session, make_channel: Callable[..., Channel], tmp_path: Path
) -> None:
    general = make_channel("general")
    trained(session, Scope.of(general), tmp_path, {"ann"})
    session.add_all(
        Message(
            channel_id=general.id,
            platform_message_id=f"m{i}",
            author_id="bob",
            text=f"bob says {i}",
            created_at=utcnow(),
        )
        for i in range(3)
    )
    session.commit()
    withdrawal = withdraw_versions(
        session, versions_that_saw_author(session, general.workspace_id, "ann"), reason="forget-me"
    )

    assert plan_retraining(session, withdrawal, [], min_messages=3).retrain == [Scope.of(general)]
    assert plan_retraining(session, withdrawal, [], min_messages=4).too_small == [Scope.of(general)]


def test_versions_older_than_a_cutoff_are_found_through_their_parents(
    session: Session, make_channel: Callable[..., Channel], tmp_path: Path
) -> None:
    general = make_channel("general")
    old = trained(session, Scope.of(general), tmp_path, {"ann"}, days_old=40)
    child = trained(session, Scope.of(general), tmp_path, {"bob"}, parent=old)
    recent = trained(session, Scope(general.workspace_id), tmp_path, {"bob"}, days_old=2)
    session.commit()

    found = {v.id for v in versions_older_than(session, utcnow() - timedelta(days=30))}
    assert found == {old.id, child.id}
    assert recent.id not in found
