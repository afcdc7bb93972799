"""The trainer service: APScheduler with schedules rebuilt from the database's scopes (nothing unpickled),
the queue poll, signals, missed runs caught up, and the scheduled retrain that only enqueues when new
messages arrived."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session

from db.jobs import finish_job, latest_job, open_job
from db.messages import record_message, set_collection
from db.model_store import LocalModelStore
from db.models import Channel, TrainingJob
from db.registry import create_version
from tests.trainer.conftest import ScopeMaker
from trainer.config import TrainerConfig, cron_trigger
from trainer.schedules import SCHEDULE_ID_PREFIX, catch_up_missed_runs, retrain_if_new_messages
from trainer.service import StopOnSignal, TrainerService


def test_service_rebuilds_schedules_from_the_scopes_and_runs_queued_jobs_until_stopped(
    engine: Engine, store: LocalModelStore, trainer_config: TrainerConfig, make_scope: ScopeMaker
) -> None:
    channel = make_scope(messages=150)
    from db.jobs import request_training

    job_id = request_training(engine, channel, "admin", "U1").job.id
    config = dataclasses.replace(trainer_config, poll_seconds=0.2, schedule="30 4 * * *")
    service = TrainerService(engine, config, store, "svc")
    runner = threading.Thread(target=service.serve)
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with Session(engine) as session:
                if session.get(TrainingJob, job_id).status == "succeeded":
                    break
            time.sleep(0.2)
    finally:
        service.stop.set()
        runner.join(30)
    assert not runner.is_alive()
    with Session(engine) as session:
        assert session.get(TrainingJob, job_id).status == "succeeded"

    # No job store in the database (its pickled rows would run as code when read): a new trainer rebuilds
    # the schedules from the scopes.
    assert "trainer_schedules" not in inspect(engine).get_table_names()
    scheduler = service.build_scheduler()
    scheduler.start(paused=True)
    try:
        service.sync_schedules(scheduler)
        jobs = {job.id: job for job in scheduler.get_jobs() if job.id.startswith(SCHEDULE_ID_PREFIX)}
    finally:
        scheduler.shutdown(wait=False)
    assert set(jobs) == {
        f"{SCHEDULE_ID_PREFIX}{channel.workspace_id}",
        f"{SCHEDULE_ID_PREFIX}{channel.scope_key}",
    }
    next_run = jobs[f"{SCHEDULE_ID_PREFIX}{channel.scope_key}"].next_run_time.astimezone(UTC)
    assert (next_run.hour, next_run.minute) == (4, 30)


def test_scheduled_retrain_enqueues_only_when_new_messages_arrived(
    engine: Engine, make_scope: ScopeMaker
) -> None:
    small = make_scope("small", messages=20)
    assert retrain_if_new_messages(engine, small, min_messages=100) is None  # never trained, too few

    scope = make_scope(messages=150)
    enqueued = retrain_if_new_messages(engine, scope, min_messages=100)
    assert enqueued is not None and enqueued.created and enqueued.job.reason == "schedule"
    finish_job(engine, enqueued.job.id, "cancelled")

    # A model made after the last message: nothing new, nothing queued.
    with Session(engine) as session, session.begin():
        create_version(session, scope, tokenizer_kind="byte", spec={})
    assert retrain_if_new_messages(engine, scope, min_messages=100) is None

    with Session(engine) as session, session.begin():
        channel = session.get(Channel, scope.channel_id)
        record_message(
            session, channel, "late", "u1", "a new message", datetime.now(UTC) + timedelta(seconds=5)
        )
    enqueued = retrain_if_new_messages(engine, scope, min_messages=100)
    assert enqueued is not None and enqueued.created
    with Session(engine) as session:
        assert open_job(session, scope).id == enqueued.job.id

    # Collection turned off: the channel's messages no longer count.
    finish_job(engine, enqueued.job.id, "cancelled")
    with Session(engine) as session, session.begin():
        set_collection(session, session.get(Channel, scope.channel_id), False, by="admin")
    assert retrain_if_new_messages(engine, scope, min_messages=100) is None
    with Session(engine) as session:
        assert latest_job(session, scope).status == "cancelled"


def test_sigterm_and_sigint_ask_for_a_clean_stop_once() -> None:
    stop = threading.Event()
    before = signal.getsignal(signal.SIGTERM)
    before_interrupt = signal.getsignal(signal.SIGINT)
    with StopOnSignal(stop) as stopper:
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 5
        while not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stop.is_set() and stopper.signum == signal.SIGTERM
        # The first signal put the usual handlers back: a second Ctrl-C would interrupt as always.
        assert signal.getsignal(signal.SIGTERM) is before
    assert signal.getsignal(signal.SIGINT) is before_interrupt


def test_a_retrain_missed_while_the_trainer_was_down_is_caught_up(
    engine: Engine, make_scope: ScopeMaker
) -> None:
    scope = make_scope(messages=150)
    nightly = cron_trigger("0 3 * * *")
    at_four = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)

    # 03:00 passed while no trainer ran: the check happens at start.
    assert catch_up_missed_runs(engine, nightly, min_messages=100, now=at_four) == [
        scope.workspace_scope(),
        scope,
    ]
    with Session(engine) as session:
        assert open_job(session, scope) is not None
    # Checked since 03:00 already: nothing more.
    assert catch_up_missed_runs(engine, nightly, min_messages=100, now=at_four + timedelta(minutes=5)) == []
    # Long past the grace period: no catch-up.
    late = make_scope("late", messages=150)
    assert late not in catch_up_missed_runs(engine, nightly, now=at_four + timedelta(hours=12))


def test_the_schedulers_job_store_warning_is_one_line_and_silent_during_a_known_outage(
    tmp_path: Path,
) -> None:
    import logging

    from db.model_store import LocalModelStore
    from trainer.config import TrainerConfig
    from trainer.service import TrainerService, _QuietDuringOutage

    service = TrainerService(None, TrainerConfig(), LocalModelStore(tmp_path), "w")  # type: ignore[arg-type]
    quiet = _QuietDuringOutage(service)

    def record() -> logging.LogRecord:
        return logging.LogRecord(
            "apscheduler.scheduler",
            logging.WARNING,
            __file__,
            1,
            "Error getting due jobs from job store %r: %s",
            (
                "default",
                "(psycopg.OperationalError) connection failed\n[SQL: SELECT ...]\n(Background on ...)",
            ),
            None,
        )

    first = record()
    assert quiet.filter(first) and "\n" not in first.getMessage()
    service.database_down = True
    assert not quiet.filter(record())
