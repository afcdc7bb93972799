"""Bundles no model version needs are removed by the trainer's hourly pass; what anything still needs stays."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from db.engine import immediate
from db.forgetting import versions_that_saw_author, withdraw_versions
from db.jobs import claim_next_job, request_training
from db.messages import forget_user
from db.model_store import LocalModelStore
from db.models import ModelVersion, TrainingJob
from db.scopes import Scope
from tests.trainer.conftest import ScopeMaker, register_version
from trainer.config import TrainerConfig
from trainer.job_steps import JobSteps
from trainer.orphans import ORPHAN_GRACE_SECONDS, remove_orphans
from trainer.service import TrainerService

AN_HOUR_AND_A_BIT = ORPHAN_GRACE_SECONDS + 60


def _age(directory: Path, seconds: float) -> None:
    """Make `directory` and everything in it look last changed `seconds` ago."""
    moment = time.time() - seconds
    for path in [directory, *directory.rglob("*")]:
        os.utime(path, (moment, moment))


def _killed_after_publishing(
    engine: Engine, store: LocalModelStore, config: TrainerConfig, scope: Scope, bundle: Path
) -> tuple[int, Path, Path]:
    """A job's steps run as a trainer does until it publishes, then nothing more: killed before registering.

    Returns:
        The job, the bundle it published, and the staging directory it left.
    """
    request_training(engine, scope, "cli")
    job = claim_next_job(engine, "doomed")
    assert job is not None
    steps = JobSteps(engine, config, store, "doomed", threading.Event())
    scope_name, serving = steps.pick_parent(scope, job)
    corpus = steps.read_corpus(scope, scope_name)
    version = steps.create_version(scope, job, None, config.model_spec(), "byte", corpus)
    staging = store.new_staging_dir(f"job-{job.id}")
    shutil.copytree(bundle, staging / "bundle")
    _age(staging / "bundle", 0)  # written just now, as training does
    published = Path(store.publish(staging / "bundle", scope.scope_key, version.number))
    (staging / "checkpoint.weights.h5").write_bytes(b"weights being written")
    return job.id, published, staging


def test_a_bundle_a_killed_trainer_published_goes_after_a_forget_me(
    engine: Engine,
    store: LocalModelStore,
    trainer_config: TrainerConfig,
    make_scope: ScopeMaker,
    tiny_bundle: Path,
) -> None:
    scope = make_scope(messages=300)  # written by user0 .. user6
    serving = register_version(engine, store, scope, tiny_bundle, activate=True)
    job_id, published, staging = _killed_after_publishing(engine, store, trainer_config, scope, tiny_bundle)

    # user0 asks to be forgotten: the killed attempt's version, which learned from them, is failed.
    with Session(immediate(engine)) as session, session.begin():
        forgotten = forget_user(session, scope.workspace_id, "user0")
        withdraw_versions(
            session,
            versions_that_saw_author(session, scope.workspace_id, "user0"),
            reason="forget-me",
            affected_scopes=forgotten.affected_scopes,
        )
    # Its job runs again (a new version number), and an hour later the trainer looks again.
    [outcome] = TrainerService(engine, trainer_config, store, "rescuer").run_once()
    assert outcome.status == "succeeded" and outcome.job_id == job_id, outcome.message
    assert published.is_dir() and not staging.exists()  # within the grace period: kept this time
    _age(published, AN_HOUR_AND_A_BIT)

    assert TrainerService(engine, trainer_config, store, "later").run_once() == []  # nothing queued
    assert not published.exists()
    with Session(engine) as session:
        for version in session.query(ModelVersion).all():
            if version.bundle_path:  # every bundle a row points at is still there
                assert Path(version.bundle_path).is_dir(), version
        assert session.get(ModelVersion, serving) is not None


def test_what_a_row_a_running_job_or_the_grace_period_needs_is_kept(
    engine: Engine,
    store: LocalModelStore,
    trainer_config: TrainerConfig,
    make_scope: ScopeMaker,
    tiny_bundle: Path,
) -> None:
    scope = make_scope(messages=300)
    active = register_version(engine, store, scope, tiny_bundle, activate=True)
    with Session(engine) as session:
        pointed_at = Path(session.get(ModelVersion, active).bundle_path or "")
    # Published, not yet registered, by a trainer that is alive (its job runs): registering comes next.
    job_id, publishing, staging = _killed_after_publishing(engine, store, trainer_config, scope, tiny_bundle)
    # Nothing points at these: an old leftover, a fresh one, a staging directory that is not a job's,
    # and a delete cut short.
    stray_old = Path(store.location_for(scope.scope_key, 40))
    stray_new = Path(store.location_for(scope.scope_key, 41))
    not_a_job = store.new_staging_dir("bench-1")
    half_deleted = stray_old.with_name(".deleting-model-v3-999")
    for directory in (stray_old, stray_new, half_deleted):
        shutil.copytree(tiny_bundle, directory)
    _age(stray_new, 0)
    for directory in (pointed_at, publishing, staging, stray_old, not_a_job, half_deleted):
        _age(directory, AN_HOUR_AND_A_BIT)

    removed = remove_orphans(engine, store)

    assert sorted(removed) == sorted([str(stray_old), str(half_deleted)])
    for kept in (pointed_at, publishing, staging, stray_new, not_a_job):
        assert kept.is_dir(), kept

    # Once the job is no longer running (its trainer died and the job failed), its leftovers go too.
    with Session(immediate(engine)) as session, session.begin():
        job = session.get(TrainingJob, job_id)
        assert job is not None
        job.status = "failed"
    assert sorted(remove_orphans(engine, store)) == sorted([str(publishing), str(staging)])
    assert pointed_at.is_dir()


def test_nothing_outside_the_model_directory_is_touched(
    engine: Engine, tmp_path: Path, tiny_bundle: Path
) -> None:
    store = LocalModelStore(tmp_path / "models")
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(tiny_bundle, elsewhere / "model-v1")
    (tmp_path / "models").mkdir()
    # A scope directory and a staging directory that are links out of the model directory.
    (tmp_path / "models" / "workspace-1").symlink_to(elsewhere, target_is_directory=True)
    (tmp_path / "models" / ".staging").mkdir()
    (tmp_path / "models" / ".staging" / "job-1-abc").symlink_to(elsewhere, target_is_directory=True)
    _age(elsewhere, AN_HOUR_AND_A_BIT)

    assert remove_orphans(engine, store) == []
    assert (elsewhere / "model-v1").is_dir()


def test_a_failing_sweep_holds_up_nothing_and_is_tried_again_an_hour_later(
    engine: Engine, store: LocalModelStore, trainer_config: TrainerConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def broken(*_args: object, **_kwargs: object) -> list[str]:
        calls.append(1)
        raise PermissionError(13, "Permission denied", str(store.root))

    monkeypatch.setattr("trainer.service.remove_orphans", broken)
    service = TrainerService(engine, trainer_config, store, "w")
    assert service.run_once() == [] and service.run_once() == []  # the queue is still polled
    assert len(calls) == 1
