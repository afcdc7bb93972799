"""A running job's heartbeat: a background thread that tells the queue the worker is alive, with progress.

Training runs for minutes in the worker's thread; the heartbeat must not depend on how often training
reports, so it runs on its own clock. When the queue answers that the job is no longer this worker's
(cancelled, or requeued because the worker was thought dead), `lost` is set and training stops at its
next step without publishing anything.
"""

from __future__ import annotations

import logging
import math
import threading
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from db.errors import DatabaseError
from db.jobs import JobProgress, heartbeat
from errortext import error_line

logger = logging.getLogger(__name__)


class Heartbeat:
    """Sends `db.jobs.heartbeat` every `interval` seconds while used as a context manager.

    Args:
        engine: The database.
        job_id: The running job.
        worker_id: The worker holding it.
        interval: Seconds between heartbeats.
    """

    def __init__(self, engine: Engine, job_id: int, worker_id: str, interval: float) -> None:
        self.engine = engine
        self.job_id = job_id
        self.worker_id = worker_id
        self.interval = interval
        self.lost = threading.Event()
        self._progress: JobProgress | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def update(self, progress: JobProgress) -> None:
        """Record the latest progress; the next heartbeat carries it (non-finite numbers are dropped)."""
        clean: JobProgress = {}
        for key, value in progress.items():
            if isinstance(value, float) and not math.isfinite(value):
                continue  # JSON on PostgreSQL has no NaN or Infinity
            clean[key] = value  # type: ignore[literal-required]
        with self._lock:
            self._progress = clean

    def beat(self) -> bool:
        """Send one heartbeat now. Returns False (and sets `lost`) when the job is no longer ours."""
        with self._lock:
            progress = dict(self._progress) if self._progress is not None else None
        try:
            alive = heartbeat(self.engine, self.job_id, self.worker_id, progress)  # type: ignore[arg-type]
        except (DatabaseError, SQLAlchemyError) as error:
            # Locked through every retry, or the connection dropped: skip this beat rather than kill the
            # thread. The stale-after window spans several beats, so one missed beat requeues nothing.
            # One line per outage, not one per beat.
            if not self._failing:
                logger.warning(
                    "heartbeats of job %d skipped until the database answers: %s",
                    self.job_id,
                    error_line(error),
                )
            self._failing = True
            return not self.lost.is_set()
        if self._failing:
            logger.info("heartbeats of job %d reach the database again", self.job_id)
            self._failing = False
        if not alive:
            if not self.lost.is_set():
                logger.warning(
                    "job %d is no longer held by %s (cancelled or requeued)", self.job_id, self.worker_id
                )
            self.lost.set()
        return alive

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()
            if self.lost.is_set():
                return

    def __enter__(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-job-{self.job_id}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop beating (before the job is closed, so no beat lands on a finished job). Idempotent."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
