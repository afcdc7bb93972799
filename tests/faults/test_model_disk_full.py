"""A model directory whose disk is full: the job fails in one line that says so, its row keeps the whole
cause, the trainer exits 1 (not a crash), and the previous model keeps serving with nothing half-written.

A small file system is mounted for the model directory (tmpfs); where mounting is not allowed (not root,
or a container without the right), the test is skipped with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from db.jobs import request_training
from db.model_store import LocalModelStore
from db.models import TrainingJob
from db.serving import resolve_serving_model
from tests.trainer.conftest import ScopeMaker, register_version, start_trainer, trainer_environment
from tests.trainer.conftest import chat_lines as chat_lines  # noqa: F401
from tests.trainer.conftest import engine as engine  # noqa: F401
from tests.trainer.conftest import make_scope as make_scope  # noqa: F401
from tests.trainer.conftest import tiny_bundle as tiny_bundle  # noqa: F401
from trainer.failures import DISK_FULL


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 2 MB file system of its own (tmpfs), unmounted afterwards."""
    mount_point = Path(tempfile.mkdtemp(prefix="chatsmith-full-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"cannot mount a small file system to fill here: {mounted.stderr.strip() or 'not root'}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)
        mount_point.rmdir()


def _fill(disk: Path, leave_bytes: int) -> None:
    free = shutil.disk_usage(disk).free
    with open(disk / "filler", "wb") as filler:
        filler.write(b"\0" * max(0, free - leave_bytes))
        filler.flush()
        os.fsync(filler.fileno())


@pytest.mark.slow
def test_a_full_model_disk_fails_the_job_in_one_line_keeps_the_cause_and_the_old_model_serves(
    tmp_path: Path,
    small_disk: Path,
    database_url: str,
    engine: Engine,  # noqa: F811
    make_scope: ScopeMaker,  # noqa: F811
    tiny_bundle: Path,  # noqa: F811
) -> None:
    """What must hold: exit 1, the job failed with the cause kept, the old model serving, nothing new on
    the disk, and no process crash."""
    models = small_disk / "models"
    store = LocalModelStore(models)
    scope = make_scope(messages=300)
    register_version(engine, store, scope, tiny_bundle, activate=True)
    serving_before = resolve_serving_model(engine, "console", "W", "general", store=store)
    job_id = request_training(engine, scope, "cli").job.id
    _fill(small_disk, leave_bytes=30_000)  # less than a bundle needs
    log = tmp_path / "trainer.log"

    trainer = start_trainer(
        trainer_environment(tmp_path, database_url, CHATSMITH_MODEL_DIR=str(models)),
        "--once",
        "--worker-id",
        "full",
        log=log,
    )
    trainer.wait(300)

    assert trainer.returncode == 1, log.read_text()[-3000:]
    with Session(engine) as session:
        job = session.get(TrainingJob, job_id)
        assert job is not None
    assert job.status == "failed"
    summary, _, detail = (job.error or "").partition("\n")
    assert summary == DISK_FULL
    assert "No space left on device" in detail and str(models) in detail
    assert resolve_serving_model(engine, "console", "W", "general", store=store) == serving_before
    assert sorted(p.name for p in (models / "workspace-1" / "channel-1").iterdir()) == ["model-v1"]
    assert list((models / ".staging").iterdir()) == []
