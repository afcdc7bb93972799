"""The trainer while its PostgreSQL server restarts: a trained model is registered once the database is back.

SQLite has no server to restart; its lock conflicts are the worker tests' concern (`tests/trainer`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from db.engine import create_database_engine
from db.jobs import request_training
from db.models import TrainingJob
from db.registry import list_versions
from db.schema import upgrade
from tests.faults.postgres_server import RestartablePostgres
from tests.trainer.conftest import ScopeMaker, start_trainer, trainer_environment
from tests.trainer.conftest import chat_lines as chat_lines  # noqa: F401
from tests.trainer.conftest import make_scope as make_scope  # noqa: F401
from textgen.bundle import MANIFEST
from trainer.job_steps import NOTICE_OUTAGE_AFTER_S

# Long enough that the database can be stopped while the model trains (a few seconds on one core).
TRAIN_FOR_SECONDS = '{"epochs": 1, "steps_per_epoch": 60, "batch_size": 8}'


@pytest.fixture
def database_url(restartable_postgres: RestartablePostgres) -> str:
    return restartable_postgres.new_database()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _job(engine: Engine, job_id: int) -> TrainingJob:
    with Session(engine) as session:
        job = session.get(TrainingJob, job_id)
        assert job is not None
        return job


def _wait_for(condition, timeout: float, what: str, process) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"trainer exited with {process.returncode} while waiting for {what}")
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.mark.slow
def test_a_database_restart_after_training_registers_the_model_once_the_database_is_back(
    tmp_path: Path,
    restartable_postgres: RestartablePostgres,
    database_url: str,
    engine: Engine,
    make_scope: ScopeMaker,  # noqa: F811
) -> None:
    """What must hold: the job is done exactly once (one attempt, one version, active) and its row says
    succeeded; the trained model is not thrown away while the database is down."""
    scope = make_scope(messages=300)
    job_id = request_training(engine, scope, "cli").job.id
    log = tmp_path / "trainer.log"
    env = trainer_environment(tmp_path, database_url, CHATSMITH_TRAINER_TRAIN_CONFIG=TRAIN_FOR_SECONDS)
    trainer = start_trainer(env, "--once", "--worker-id", "steady", log=log)
    staged = tmp_path / "models" / ".staging"
    try:
        # The staging directory appears when training starts, after the steps before it used the database.
        _wait_for(lambda: any(staged.glob("job-*")), 120, "training to start", trainer)
        engine.dispose()
        restartable_postgres.stop()
        # Once trained, the bundle is complete in staging; judging and registering it need the database.
        _wait_for(lambda: any(staged.glob(f"job-*/bundle/{MANIFEST}")), 120, "the trained bundle", trainer)
        time.sleep(NOTICE_OUTAGE_AFTER_S + 2.0)
        assert trainer.poll() is None, log.read_text()[-3000:]
        restartable_postgres.start()
        trainer.wait(120)
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.wait(10)
        if not _is_up(restartable_postgres):
            restartable_postgres.start()
    assert trainer.returncode == 0, log.read_text()[-3000:]
    assert "the database is not answering while" in log.read_text()  # the outage came after training
    job = _job(engine, job_id)
    assert job.status == "succeeded" and job.attempts == 1 and job.error is None
    with Session(engine) as session:
        versions = list_versions(session, scope)
    assert [v.status for v in versions] == ["active"] and versions[0].id == job.model_version_id
    assert Path(versions[0].bundle_path).is_dir()


def _is_up(server: RestartablePostgres) -> bool:
    return (server.data / "postmaster.pid").exists()


def test_the_queue_poll_logs_one_line_per_outage_not_a_traceback_per_poll(
    tmp_path: Path,
    restartable_postgres: RestartablePostgres,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What must hold: while the database is down the trainer keeps polling and says so once; when it is
    back, once more; no traceback."""
    import dataclasses
    import logging

    from db.model_store import LocalModelStore
    from db.retry import retry_on_lock
    from trainer.config import TrainerConfig
    from trainer.service import TrainerService

    # Each poll gives up on the stopped server after one second instead of the default ten: what is checked
    # is how many lines two failed polls log, not how long one waits.
    monkeypatch.setitem(retry_on_lock.__kwdefaults__, "outage_seconds", 1.0)

    config = dataclasses.replace(TrainerConfig(), model_dir=tmp_path / "models", base_model=None)
    service = TrainerService(engine, config, LocalModelStore(tmp_path / "models"), "poller")
    service.poll()
    restartable_postgres.stop()
    try:
        with caplog.at_level(logging.INFO):
            for _ in range(2):
                service.poll()
            down = [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        restartable_postgres.start()
    with caplog.at_level(logging.INFO):
        service.poll()

    assert len(down) == 1 and "queue poll paused" in down[0].getMessage(), [r.getMessage() for r in down]
    assert all(record.exc_info is None for record in caplog.records)
    assert "the database answers again" in caplog.text
