"""Faults, on SQLite and PostgreSQL: a trainer process SIGKILLed mid-training, then two trainer processes at
once, a bundle deleted under an active row, and a row pointing outside the model directory."""

from __future__ import annotations

import dataclasses
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.jobs import request_training
from db.model_store import LocalModelStore
from db.models import ModelVersion, TrainingJob
from db.registry import list_versions
from db.serving import resolve_serving_model
from tests.trainer.conftest import ScopeMaker, register_version, start_trainer, trainer_environment
from textgen.bundle import read_manifest
from trainer.config import TrainerConfig

# Trains until killed. `steps_per_epoch` only caps an epoch (one pass over 300 messages is about 40 steps, a
# fraction of a second), so it is epochs that keep the job running, and patience that keeps the plateau
# stop from ending it.
SLOW_TRAINING = '{"epochs": 100000, "patience": 100000, "batch_size": 8}'


def _job(engine: Engine, job_id: int) -> TrainingJob:
    with Session(engine) as session:
        job = session.get(TrainingJob, job_id)
        assert job is not None
        return job


def _wait_for(condition, timeout: float, what: str, process=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            pytest.fail(f"trainer exited with {process.returncode} while waiting for {what}")
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def _serving(engine: Engine, **where: Any) -> Path | None:
    model = resolve_serving_model(engine, "console", "W", "general", **where)
    return model.path if model is not None else None


@pytest.mark.slow
def test_a_killed_trainers_job_is_requeued_and_two_trainers_at_once_run_each_job_once(
    tmp_path: Path,
    database_url: str,
    engine: Engine,
    store: LocalModelStore,
    make_scope: ScopeMaker,
    tiny_bundle: Path,
) -> None:
    """A trainer SIGKILLed mid-training: its job goes back to the queue and the old model serves on. Then
    two trainers started at once share the queue (the requeued job and another channel's): each job runs
    once, and whatever serves meanwhile is a complete bundle."""
    scope = make_scope(messages=300)
    old_id = register_version(engine, store, scope, tiny_bundle, activate=True)
    old_path = _serving(engine)
    job_id = request_training(engine, scope, "cli").job.id
    log = tmp_path / "trainer.log"

    # The scheduler-driven trainer, as deployed, training for a long time.
    first = start_trainer(
        trainer_environment(tmp_path, database_url, CHATSMITH_TRAINER_TRAIN_CONFIG=SLOW_TRAINING),
        "--worker-id",
        "doomed",
        log=log,
    )
    try:
        _wait_for(lambda: (_job(engine, job_id).progress or {}).get("epoch"), 90, "training progress", first)
        assert _serving(engine) == old_path
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)

    job = _job(engine, job_id)
    assert job.status == "running" and job.worker_id == "doomed"
    with Session(engine) as session:
        orphan = session.scalars(select(ModelVersion).where(ModelVersion.status == "training")).one()
    assert orphan.bundle_path is None  # no row points at a half-written bundle
    assert _serving(engine) == old_path
    other_scope = make_scope("other", messages=150)
    other_job_id = request_training(engine, other_scope, "cli").job.id
    time.sleep(2.2)  # past the stale-after setting (2 s) of the next trainers

    names = ("rescuer", "helper")
    trainers = [
        start_trainer(trainer_environment(tmp_path, database_url), "--once", "--worker-id", name, log=log)
        for name in names
    ]
    seen = []
    while any(trainer.poll() is None for trainer in trainers):
        path = _serving(engine)
        # Whatever serves is a complete bundle, and the old one until the new one is promoted.
        read_manifest(path)
        seen.append(path)
        time.sleep(0.1)
    assert [trainer.returncode for trainer in trainers] == [0, 0], log.read_text()[-3000:]

    job, other_job = _job(engine, job_id), _job(engine, other_job_id)
    assert job.status == "succeeded" and job.attempts == 2 and job.worker_id in names
    assert other_job.status == "succeeded" and other_job.attempts == 1 and other_job.worker_id in names
    with Session(engine) as session:
        [other_version] = list_versions(session, other_scope)
    # The scheduler-driven trainer also queued the workspace's retrain when it started. Where that model
    # was published first, it serves the channel, and the gate may rightly prefer it to the channel's own.
    assert other_version.status == "active" or (
        other_version.status == "rejected" and "worse than workspace model" in other_version.note
    ), other_version.note
    with Session(engine) as session:
        versions = {v.id: v for v in list_versions(session, scope)}
    assert versions[orphan.id].status == "failed" and "trainer stopped" in versions[orphan.id].note
    new = versions[job.model_version_id]
    assert new.status in ("active", "rejected") and Path(new.bundle_path).is_dir()
    expected = Path(new.bundle_path) if new.status == "active" else old_path
    assert _serving(engine) == expected
    assert set(seen) <= {old_path, Path(new.bundle_path)} and seen[0] == old_path
    if new.status == "active":  # never back to the old model once the new one served
        assert seen[seen.index(expected) :] == [expected] * (len(seen) - seen.index(expected))
    else:
        assert versions[old_id].status == "active"
    # The killed attempt's staging directory was cleaned up when the job ran again.
    assert list((store.root / ".staging").iterdir()) == []


def test_deleted_bundle_under_an_active_row_falls_back_to_the_previous_version_and_is_flagged(
    engine: Engine, store: LocalModelStore, make_scope: ScopeMaker, tiny_bundle: Path
) -> None:
    scope = make_scope(messages=10)
    previous_id = register_version(engine, store, scope, tiny_bundle, activate=True)
    lost_id = register_version(engine, store, scope, tiny_bundle, activate=True)
    with Session(engine) as session:
        paths = {v.id: Path(v.bundle_path) for v in list_versions(session, scope)}
    shutil.rmtree(paths[lost_id])

    assert _serving(engine, store=store) == paths[previous_id]

    with Session(engine) as session:
        versions = {v.id: v for v in list_versions(session, scope)}
    assert versions[lost_id].status == "failed" and "bundle missing" in versions[lost_id].note
    assert versions[previous_id].status == "active"
    # The flag was committed: the next request goes straight to the previous version.
    assert _serving(engine, store=store) == paths[previous_id]

    # With every bundle gone the base model serves; without one, nothing does (the CLI says what to do).
    shutil.rmtree(paths[previous_id])
    assert _serving(engine, base_model=tiny_bundle) == tiny_bundle
    assert _serving(engine) is None


def test_a_row_pointing_outside_the_model_directory_is_refused_flagged_and_never_deleted_through(
    tmp_path: Path,
    engine: Engine,
    store: LocalModelStore,
    trainer_config: TrainerConfig,
    make_scope: ScopeMaker,
    tiny_bundle: Path,
) -> None:
    """What must hold: nothing outside the model directory is served, fine-tuned from or deleted."""
    from trainer.worker import Worker

    scope = make_scope(messages=300)
    good_id = register_version(engine, store, scope, tiny_bundle, activate=True)
    stray_id = register_version(engine, store, scope, tiny_bundle, activate=True)
    # As a restored database or a hand edit leaves it: the active row names a directory elsewhere, which
    # holds a complete bundle and an unrelated file.
    elsewhere = tmp_path / "elsewhere" / "model-v2"
    shutil.copytree(tiny_bundle, elsewhere)
    (elsewhere / "precious.txt").write_text("not chatsmith's")
    with Session(engine) as session, session.begin():
        version = session.get(ModelVersion, stray_id)
        shutil.rmtree(version.bundle_path)
        version.bundle_path = str(elsewhere)
    with Session(engine) as session:
        good_path = Path(session.get(ModelVersion, good_id).bundle_path)

    assert _serving(engine, store=store) == good_path
    with Session(engine) as session:
        stray = session.get(ModelVersion, stray_id)
    assert stray.status == "failed" and "outside the model directory" in stray.note
    with pytest.raises(Exception, match="outside the model directory"):
        store.local_path(str(elsewhere))
    with pytest.raises(Exception, match="outside the model directory"):
        store.delete(str(elsewhere))

    # A retrain fine-tunes from the good version and retires everything but one version: the stray row
    # is retired without its directory being touched.
    request_training(engine, scope, "cli")
    config = dataclasses.replace(trainer_config, keep_versions=1)
    [outcome] = Worker(engine, config, store, "w").process_queue()
    assert outcome.status == "succeeded", outcome.message
    with Session(engine) as session:
        new = session.get(ModelVersion, outcome.model_version_id)
    assert new.parent_version_id == good_id
    assert (elsewhere / "precious.txt").read_text() == "not chatsmith's"
    assert read_manifest(elsewhere)["spec"]


def test_a_retrain_never_fine_tunes_from_a_damaged_active_bundle(
    engine: Engine,
    store: LocalModelStore,
    trainer_config: TrainerConfig,
    make_scope: ScopeMaker,
    tiny_bundle: Path,
) -> None:
    """What must hold: the job succeeds, fine-tuned from the previous good version; the damaged version is
    marked failed and never serves again."""
    from trainer.worker import Worker

    scope = make_scope(messages=300)
    good_id = register_version(engine, store, scope, tiny_bundle, activate=True)
    bad_id = register_version(engine, store, scope, tiny_bundle, activate=True)
    with Session(engine) as session:
        damaged = Path(session.get(ModelVersion, bad_id).bundle_path)
    for path in damaged.iterdir():
        if path.suffix in (".h5", ".npy", ".npz", ".keras"):
            path.write_bytes(b"\x00garbage\x00" * 8)

    job_id = request_training(engine, scope, "cli").job.id
    [outcome] = Worker(engine, trainer_config, store, "w").process_queue()

    assert outcome.status == "succeeded", outcome.message
    assert _job(engine, job_id).status == "succeeded"
    with Session(engine) as session:
        versions = {v.id: v for v in list_versions(session, scope)}
    assert versions[outcome.model_version_id].parent_version_id == good_id
    assert versions[bad_id].status == "failed" and "does not load" in versions[bad_id].note
    assert str(store.root) not in versions[bad_id].note  # notes are shown in chat; the log says where
    assert _serving(engine, store=store) != damaged
