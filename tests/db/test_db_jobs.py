"""The training queue: one open job per scope, atomic claims, heartbeats, stale jobs, locked SQLite."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

import db.jobs
from db.engine import create_database_engine, immediate, session_factory
from db.errors import DatabaseError
from db.jobs import (
    QueueFull,
    claim_next_job,
    enqueue_job,
    finish_job,
    heartbeat,
    latest_job,
    open_job,
    queue_position,
    request_training,
    requeue_stale_jobs,
)
from db.models import TrainingJob
from db.retry import is_lock_conflict, retry_on_lock
from db.schema import upgrade
from db.scopes import Scope, get_or_create_channel, get_or_create_workspace

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _raw_job(scope: Scope, status: str = "queued") -> dict[str, object]:
    return {
        "workspace_id": scope.workspace_id,
        "channel_id": scope.channel_id,
        "scope_key": scope.scope_key,
        "reason": "cli",
        "status": status,
        "created_at": T0,
    }


def test_database_rejects_a_second_open_job_for_a_scope(engine: Engine, make_scopes: Callable) -> None:
    scope, other = make_scopes(2)
    table = TrainingJob.__table__
    with engine.begin() as connection:
        connection.execute(insert(table).values(_raw_job(scope)))
        connection.execute(insert(table).values(_raw_job(other)))  # another scope is free

    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(table).values(_raw_job(scope, status="running")))

    # Once the open job is finished the slot is free again, and finished jobs do not count.
    with engine.begin() as connection:
        connection.execute(
            update(table).where(table.c.scope_key == scope.scope_key).values(status="succeeded")
        )
        connection.execute(insert(table).values(_raw_job(scope, status="failed")))
        connection.execute(insert(table).values(_raw_job(scope)))


def test_enqueue_returns_the_existing_open_job(session: Session, make_scopes: Callable) -> None:
    (scope,) = make_scopes(1)

    first = enqueue_job(session, scope, "admin", requested_by="U1")
    second = enqueue_job(session, scope, "schedule", requested_by="scheduler")
    session.commit()

    assert first.created and not second.created
    assert second.job.id == first.job.id
    assert second.job.reason == "admin"
    assert session.scalars(select(TrainingJob)).all() == [first.job]


def test_enqueue_recovers_from_losing_the_race_at_the_index(
    session: Session, make_scopes: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    (scope,) = make_scopes(1)
    winner = enqueue_job(session, scope, "admin").job
    session.commit()
    # Make the pre-check miss the open job, as it does when another process inserts between check and insert.
    real_open_job = db.jobs.open_job
    calls = []

    def racing_open_job(session: Session, scope: Scope) -> TrainingJob | None:
        calls.append(scope)
        return None if len(calls) == 1 else real_open_job(session, scope)

    monkeypatch.setattr(db.jobs, "open_job", racing_open_job)

    result = enqueue_job(session, scope, "schedule")

    assert result == (winner, False)
    assert len(calls) == 2
    # The savepoint kept the caller's transaction usable.
    session.commit()
    assert session.scalar(select(TrainingJob.id).where(TrainingJob.reason == "schedule")) is None


def test_enqueue_refuses_an_unknown_reason(session: Session, make_scopes: Callable) -> None:
    (scope,) = make_scopes(1)
    with pytest.raises(DatabaseError, match="expected one of schedule, admin, cli"):
        enqueue_job(session, scope, "whim")


def test_concurrent_requests_for_one_scope_make_one_job(engine: Engine, make_scopes: Callable) -> None:
    (scope,) = make_scopes(1)
    results: list[db.jobs.Enqueued] = []
    start = threading.Barrier(8)

    def request(i: int) -> None:
        start.wait()
        results.append(request_training(engine, scope, "admin", requested_by=f"user{i}"))

    threads = [threading.Thread(target=request, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(result.created for result in results) == 1
    assert len({result.job.id for result in results}) == 1


def test_claim_takes_the_oldest_job_and_marks_it_running(
    engine: Engine, session: Session, make_scopes: Callable
) -> None:
    older, newer = make_scopes(2)
    with engine.begin() as connection:
        connection.execute(insert(TrainingJob.__table__).values({**_raw_job(newer), "created_at": T0}))
        connection.execute(
            insert(TrainingJob.__table__).values({**_raw_job(older), "created_at": T0 - timedelta(hours=1)})
        )

    job = claim_next_job(engine, "worker-a", now=T0)

    assert job is not None
    assert (job.scope_key, job.status, job.worker_id, job.attempts) == (
        older.scope_key,
        "running",
        "worker-a",
        1,
    )
    assert job.started_at == T0 == job.heartbeat_at
    assert claim_next_job(engine, "worker-b").scope_key == newer.scope_key
    assert claim_next_job(engine, "worker-c") is None


def _seed_queue(engine: Engine, make_scopes: Callable, count: int) -> set[int]:
    with session_factory(engine).begin() as session:
        return {enqueue_job(session, scope, "schedule").job.id for scope in make_scopes(count)}


def test_threads_claim_each_job_exactly_once(engine: Engine, make_scopes: Callable) -> None:
    expected = _seed_queue(engine, make_scopes, 40)
    claimed: list[int] = []
    start = threading.Barrier(6)

    def worker(name: str) -> None:
        start.wait()
        while (job := claim_next_job(engine, name)) is not None:
            claimed.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(claimed) == sorted(expected)


WORKER_PROCESS = textwrap.dedent(
    """
    import glob, os, sys, threading, time
    from db.engine import create_database_engine
    from db.jobs import claim_next_job

    url, name, rendezvous, processes = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    engine = create_database_engine(url)
    print("ready", flush=True)
    while not os.path.exists(os.path.join(rendezvous, "go")):
        time.sleep(0.01)
    claimed = []

    def wait_for_every_process():
        # After its first claim a process waits until every process has claimed once, so that on a busy
        # machine one process cannot drain the queue before the other starts: the rest is a real race.
        open(os.path.join(rendezvous, "claimed-" + name), "w").close()
        deadline = time.monotonic() + 30
        while len(glob.glob(os.path.join(rendezvous, "claimed-*"))) < processes and time.monotonic() < deadline:
            time.sleep(0.005)

    def work(worker):
        first = True
        while (job := claim_next_job(engine, worker)) is not None:
            claimed.append(job.id)
            if first:
                first = False
                wait_for_every_process()

    threads = [threading.Thread(target=work, args=(f"{name}-{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(" ".join(map(str, claimed)), flush=True)
    """
)


def test_two_processes_claim_each_job_exactly_once(
    engine: Engine, database_url: str, make_scopes: Callable, tmp_path: Path
) -> None:
    expected = _seed_queue(engine, make_scopes, 60)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER_PROCESS, database_url, f"p{i}", str(tmp_path), "2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for process in processes:
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
    (tmp_path / "go").touch()
    outputs = [process.communicate(timeout=60) for process in processes]

    claimed = [int(i) for out, _ in outputs for i in out.split()]
    assert all(process.returncode == 0 for process in processes), [err for _, err in outputs]
    assert sorted(claimed) == sorted(expected)
    assert all(out.split() for out, _ in outputs), "a process claimed nothing; the race was not exercised"


def test_heartbeat_records_progress_only_for_the_holder(engine: Engine, make_scopes: Callable) -> None:
    _seed_queue(engine, make_scopes, 1)
    job = claim_next_job(engine, "worker-a", now=T0)

    progress = {"epoch": 2, "epochs": 5, "loss": 1.25, "eta_seconds": 30.0, "fraction": 0.4}
    assert heartbeat(engine, job.id, "worker-a", progress, now=T0 + timedelta(seconds=10))
    assert not heartbeat(engine, job.id, "worker-b", {"epoch": 9}, now=T0 + timedelta(seconds=20))

    with Session(engine) as session:
        stored = session.get(TrainingJob, job.id)
        assert stored.progress == progress
        assert stored.heartbeat_at == T0 + timedelta(seconds=10)


def test_cancelled_job_tells_its_worker_to_stop(engine: Engine, make_scopes: Callable) -> None:
    running, queued = make_scopes(2)
    _seed_queue(engine, lambda n: [running], 1)
    job = claim_next_job(engine, "worker-a")
    with session_factory(engine).begin() as session:
        waiting = enqueue_job(session, queued, "cli").job

    assert finish_job(engine, job.id, "cancelled")
    assert finish_job(engine, waiting.id, "cancelled")
    assert not heartbeat(engine, job.id, "worker-a")
    assert not finish_job(engine, job.id, "succeeded", worker_id="worker-a")
    assert claim_next_job(engine, "worker-b") is None


def test_finish_job_closes_once(engine: Engine, make_scopes: Callable) -> None:
    (scope,) = make_scopes(1)
    _seed_queue(engine, lambda n: [scope], 1)
    job = claim_next_job(engine, "worker-a")

    assert not finish_job(engine, job.id, "failed", error="nope", worker_id="someone-else")
    assert finish_job(engine, job.id, "failed", error="corpus too small: 3 messages, need 200", now=T0)
    assert not finish_job(engine, job.id, "succeeded")
    with pytest.raises(DatabaseError, match="final job status"):
        finish_job(engine, job.id, "running")

    with Session(engine) as session:
        stored = latest_job(session, scope)
        assert (stored.status, stored.error, stored.finished_at) == (
            "failed",
            "corpus too small: 3 messages, need 200",
            T0,
        )
        assert open_job(session, scope) is None
        # The scope can be queued again.
        assert enqueue_job(session, scope, "admin").created


def test_stale_job_is_requeued_then_failed_after_max_attempts(engine: Engine, make_scopes: Callable) -> None:
    (scope,) = make_scopes(1)
    _seed_queue(engine, lambda n: [scope], 1)
    job = claim_next_job(engine, "dead-worker", now=T0)
    stale_after = timedelta(minutes=5)

    # Heartbeats younger than `stale_after` keep the job.
    assert requeue_stale_jobs(
        engine, stale_after=stale_after, max_attempts=2, now=T0 + timedelta(minutes=4)
    ) == (db.jobs.StaleJobs([], []))
    first = requeue_stale_jobs(engine, stale_after=stale_after, max_attempts=2, now=T0 + timedelta(minutes=6))
    assert first == db.jobs.StaleJobs(requeued=[job.id], failed=[])
    with Session(engine) as session:
        requeued = session.get(TrainingJob, job.id)
        assert (requeued.status, requeued.worker_id) == ("queued", None)
        assert "worker dead-worker sent no heartbeat" in requeued.error
        assert queue_position(session, scope) == 1

    again = claim_next_job(engine, "second-worker", now=T0 + timedelta(minutes=7))
    assert (again.id, again.attempts) == (job.id, 2)
    second = requeue_stale_jobs(
        engine, stale_after=stale_after, max_attempts=2, now=T0 + timedelta(minutes=20)
    )

    assert second == db.jobs.StaleJobs(requeued=[], failed=[job.id])
    with Session(engine) as session:
        failed = session.get(TrainingJob, job.id)
        assert failed.status == "failed"
        assert failed.error.endswith("gave up after 2 attempts")
        assert failed.finished_at == T0 + timedelta(minutes=20)


def test_queue_position(engine: Engine, session: Session, make_scopes: Callable) -> None:
    first, second, third, idle = make_scopes(4)
    for offset, scope in enumerate([first, second, third]):
        with engine.begin() as connection:
            values = {**_raw_job(scope), "created_at": T0 + timedelta(seconds=offset)}
            connection.execute(insert(TrainingJob.__table__).values(values))

    assert [queue_position(session, s) for s in (first, second, third, idle)] == [1, 2, 3, None]
    claim_next_job(engine, "w")
    session.rollback()  # end the read transaction; a new one sees the claim
    assert [queue_position(session, s) for s in (first, second, third)] == [0, 1, 2]


def test_locked_sqlite_is_retried_not_crashed(
    sqlite_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    engine = sqlite_engine
    path = str(engine.url.database)
    with session_factory(engine).begin() as session:
        enqueue_job(session, Scope.of(get_or_create_workspace(session, "console", "W")), "cli")
    # A short busy timeout so the lock outlasts it and the retry loop has to carry the claim.
    impatient = create_database_engine(engine.url, busy_timeout_ms=20)
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.4, blocker.rollback)
    release.start()
    started = time.monotonic()

    with caplog.at_level(logging.WARNING, logger="db.retry"):
        job = claim_next_job(impatient, "patient-worker")

    release.join()
    blocker.close()
    assert job is not None and job.worker_id == "patient-worker"
    assert time.monotonic() - started >= 0.4
    assert "database locked (attempt 1 of" in caplog.text
    impatient.dispose()


def test_lock_held_too_long_becomes_a_database_error(sqlite_engine: Engine) -> None:
    engine = sqlite_engine
    path = str(engine.url.database)
    with session_factory(engine).begin() as session:
        scope = Scope.of(get_or_create_workspace(session, "console", "W"))
    impatient = create_database_engine(engine.url, busy_timeout_ms=10)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")

    def enqueue() -> None:
        with Session(immediate(impatient)) as session, session.begin():
            enqueue_job(session, scope, "cli")

    try:
        with pytest.raises(DatabaseError, match="stayed locked by another writer through 3 attempts"):
            retry_on_lock(enqueue, attempts=3, first_delay=0.01)
    finally:
        blocker.rollback()
        blocker.close()
        impatient.dispose()


def test_retry_backs_off_and_passes_other_errors_through() -> None:
    locked = OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked"))
    other = OperationalError("UPDATE", {}, sqlite3.OperationalError("no such table: x"))
    failures = [locked, locked]
    waits: list[float] = []

    def action() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    assert retry_on_lock(action, first_delay=0.05, sleep=waits.append) == "done"
    assert waits == [0.05, 0.1]
    assert is_lock_conflict(locked) and not is_lock_conflict(other)

    def broken() -> None:
        raise other

    with pytest.raises(OperationalError, match="no such table"):
        retry_on_lock(broken, sleep=waits.append)
    assert waits == [0.05, 0.1]


def test_upgrade_works_on_a_url(database_url: str) -> None:
    assert upgrade(database_url)[1] is not None


def _channels(session: Session, workspace: str, count: int) -> list[Scope]:
    """`count` channel scopes of one console workspace, committed."""
    row = get_or_create_workspace(session, "console", workspace)
    channels = [get_or_create_channel(session, row, f"{workspace}-channel-{i}") for i in range(count)]
    session.commit()
    return [Scope.of(channel) for channel in channels]


def test_a_workspace_that_floods_the_queue_does_not_hold_back_another(
    engine: Engine, session: Session
) -> None:
    flooding = _channels(session, "busy", 5)
    quiet = _channels(session, "quiet", 1)[0]
    for scope in flooding:
        request_training(engine, scope, "admin", "flooder")
    request_training(engine, quiet, "admin", "someone")

    # The quiet workspace's job waits behind one of the busy workspace's jobs, not all five.
    assert queue_position(session, quiet) == 2
    session.rollback()
    claimed = [claim_next_job(engine, f"w{i}") for i in range(6)]
    order = [job.scope_key for job in claimed if job is not None]
    assert order[:2] == [flooding[0].scope_key, quiet.scope_key]
    assert order[2:] == [scope.scope_key for scope in flooding[1:]]


def test_the_next_job_comes_from_the_workspace_served_longest_ago(engine: Engine, session: Session) -> None:
    first, second = _channels(session, "first", 2)
    other = _channels(session, "other", 1)[0]
    request_training(engine, first, "admin")
    claimed = claim_next_job(engine, "w", now=T0)
    assert claimed is not None and claimed.scope_key == first.scope_key
    # `first`'s workspace was just served; `other` queued after `second` but goes first.
    request_training(engine, second, "admin")
    request_training(engine, other, "admin")
    assert [queue_position(session, scope) for scope in (first, other, second)] == [0, 1, 2]
    session.rollback()
    assert claim_next_job(engine, "w2").scope_key == other.scope_key
    assert claim_next_job(engine, "w3").scope_key == second.scope_key


def test_a_workspace_at_its_queue_cap_is_refused_in_one_line(engine: Engine, session: Session) -> None:
    first, second, third = _channels(session, "capped", 3)
    request_training(engine, first, "admin", max_queued_in_workspace=2)
    request_training(engine, second, "admin", max_queued_in_workspace=2)
    with pytest.raises(QueueFull, match="already has 2 training jobs queued") as refused:
        request_training(engine, third, "admin", max_queued_in_workspace=2)
    assert "\n" not in str(refused.value)
    assert open_job(session, third) is None
    # Asking again for a scope already queued is no new job, so the cap does not refuse it...
    assert request_training(engine, first, "admin", max_queued_in_workspace=2).created is False
    # ...and a request without a cap (a retrain that removes a member's messages) always queues.
    assert request_training(engine, third, "admin", "forget-me").created is True
