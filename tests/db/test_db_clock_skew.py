"""Trainers on hosts whose clocks disagree share one queue: heartbeats and the stale cut-off use the database
server's clock, so a host whose clock runs ahead never requeues a live job (and a dead one is still found)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from db import jobs
from db.models import TrainingJob, utcnow


def _skew(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """This host's clock, `seconds` off the true time (what the queue used to stamp heartbeats with)."""
    monkeypatch.setattr(jobs, "utcnow", lambda: utcnow() + timedelta(seconds=seconds), raising=False)


def test_a_host_150_seconds_ahead_does_not_requeue_a_live_job(
    engine: Engine, make_scopes: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What must hold: a job whose worker is beating is never requeued, whatever the hosts' clocks say."""
    [scope] = make_scopes(1)
    job_id = jobs.request_training(engine, scope, "cli").job.id
    _skew(monkeypatch, -30)  # the worker's host runs a little behind
    claimed = jobs.claim_next_job(engine, "worker-on-host-a")
    assert claimed is not None and claimed.id == job_id
    assert jobs.heartbeat(engine, job_id, "worker-on-host-a", {"epoch": 1})

    _skew(monkeypatch, +150)  # another trainer's host runs ahead, judging with stale-after 120 s
    result = jobs.requeue_stale_jobs(engine, stale_after=timedelta(seconds=120), max_attempts=3)

    assert result.requeued == [] and result.failed == []
    with Session(engine) as session:
        job = session.get(TrainingJob, job_id)
        assert job is not None and job.status == "running" and job.worker_id == "worker-on-host-a"
    assert jobs.heartbeat(engine, job_id, "worker-on-host-a")


def test_a_silent_job_is_still_requeued_by_the_database_clock(engine: Engine, make_scopes: Callable) -> None:
    [scope] = make_scopes(1)
    job_id = jobs.request_training(engine, scope, "cli").job.id
    assert jobs.claim_next_job(engine, "dead-worker") is not None
    time.sleep(1.1)

    result = jobs.requeue_stale_jobs(engine, stale_after=timedelta(seconds=1), max_attempts=3)

    assert result.requeued == [job_id]
