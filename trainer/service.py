"""The trainer process: APScheduler with the retrain schedules, a queue poll, and a clean shutdown.

`TrainerService.serve()` (what `chatsmith trainer` runs) starts a `BackgroundScheduler` whose jobs all live
in memory: the per-scope cron retrains, rebuilt from the scopes in the database at start and every few
minutes (`trainer.schedules`); the queue poll (every `poll_seconds`: requeue stale jobs, then claim and run
queued jobs one at a time); and that re-sync. Nothing is unpickled from the database, so whoever can write
to it cannot make the trainer run code; a retrain missed while the trainer was down is caught up at start
(`catch_up_missed_runs`). `run_once()` (`chatsmith trainer --once`) does one poll in the calling thread.

SIGTERM or SIGINT sets the stop event: a job in training is released back to the queue at its next step
(a finished model still gets published), the scheduler shuts down, and the process exits.

Several trainers may share a queue: claims are atomic. Each also runs the cron schedules of the shared
store; two trainers firing the same schedule enqueue one job, because a scope has one open job at most.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from sqlalchemy import Engine

from db.model_store import ModelStore
from db.retry import DatabaseUnavailable
from trainer.config import TrainerConfig, cron_trigger
from trainer.orphans import ORPHAN_SWEEP_SECONDS, remove_orphans
from trainer.retention import apply_retention
from trainer.schedules import catch_up_missed_runs, set_schedule_context, sync_schedules
from trainer.worker import JobOutcome, Worker

logger = logging.getLogger(__name__)

POLL_JOB_ID = "queue-poll"
POLL_JOB_NAME = "poll the training queue"
# How often messages past CHATSMITH_RETENTION_DAYS are deleted (and the models holding them withdrawn).
RETENTION_INTERVAL_SECONDS = 3600.0
# New channels opted in by a bot get their schedule within this many seconds.
SCHEDULE_SYNC_SECONDS = 300.0


class _SkipBusyPoll(logging.Filter):
    """Drops APScheduler's warning that the poll is still running: it is, training a job, by design."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (POLL_JOB_NAME in message and "maximum number of running instances" in message)


class _QuietDuringOutage(logging.Filter):
    """Drops APScheduler's warning, every 10 s, that its job store cannot be read while the database is
    down and the queue poll has already said so; shortens it to one line otherwise."""

    def __init__(self, service: TrainerService) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Error getting due jobs from job store"):
            return True
        if self.service.database_down:
            return False
        lines = record.getMessage().splitlines()
        record.msg, record.args = (lines[0] if lines else record.getMessage()), None
        return True


class TrainerService:
    """A trainer: one worker, the queue poll and the retrain schedules.

    Args:
        engine: The database, schema already checked (`db.schema.open_database`).
        config: Trainer configuration.
        store: Where bundles are published.
        worker_id: This trainer's name in the queue.
    """

    def __init__(self, engine: Engine, config: TrainerConfig, store: ModelStore, worker_id: str) -> None:
        self.engine = engine
        self.config = config
        self.store = store
        self.stop = threading.Event()
        self.worker = Worker(engine, config, store, worker_id, stop=self.stop)
        self._scheduler: Any = None
        # Whether the last poll found the database down (one log line per outage, not one per poll).
        self.database_down = False
        # When bundles no model version needs were last looked for (time.monotonic()); None: never.
        self._orphans_swept_at: float | None = None

    def run_once(self) -> list[JobOutcome]:
        """Apply the retention limit, remove bundles no model version needs (at most hourly), requeue stale
        jobs, then run every queued job (including ones queued meanwhile), then return."""
        self.apply_retention()
        self.remove_orphans()
        self.worker.requeue_stale()
        return self.worker.process_queue()

    def remove_orphans(self) -> None:
        """Remove the model store's directories no model version needs (`trainer.orphans`), once an hour
        at most: the first poll does it, then every `ORPHAN_SWEEP_SECONDS`."""
        started = time.monotonic()
        if self._orphans_swept_at is not None and started - self._orphans_swept_at < ORPHAN_SWEEP_SECONDS:
            return
        # Tried once an hour whatever happens: a failing sweep must neither hold up the queue nor fill the
        # log every poll.
        self._orphans_swept_at = started
        try:
            remove_orphans(self.engine, self.store)
        except Exception:
            logger.exception("could not remove the bundles no model version needs; trying again in an hour")

    def apply_retention(self) -> None:
        """Delete messages past `retention_days` and withdraw the models that learned from them."""
        if self.config.retention_days <= 0:
            return
        apply_retention(
            self.engine, self.store, self.config.retention_days, min_messages=self.config.min_messages
        )

    def _apply_retention_logged(self) -> None:
        try:
            self.apply_retention()
        except Exception:
            logger.exception("could not apply the retention limit; trying again later")

    def poll(self) -> None:
        """One poll of the queue; errors are logged so the scheduler keeps polling (e.g. database down)."""
        if self.stop.is_set():
            return
        try:
            self.run_once()
        except DatabaseUnavailable as error:
            # An outage is expected: one line when it starts and one when it ends, not one per poll.
            if not self.database_down:
                logger.error(
                    "queue poll paused: %s; polling every %gs until it answers",
                    error,
                    self.config.poll_seconds,
                )
            self.database_down = True
            return
        except Exception:
            logger.exception("queue poll failed; trying again in %.0fs", self.config.poll_seconds)
            return
        if self.database_down:
            logger.info("the database answers again; queue poll resumed")
            self.database_down = False

    def build_scheduler(self) -> Any:
        """A `BackgroundScheduler` whose jobs live in memory: schedules come from the database's scopes."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.memory import MemoryJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore(), "memory": MemoryJobStore()},
            # One thread trains (the poll); the other keeps cron retrains enqueueing meanwhile.
            executors={"default": ThreadPoolExecutor(max_workers=2)},
            timezone=UTC,
        )
        now = datetime.now(UTC)
        scheduler.add_job(
            self.poll,
            "interval",
            seconds=self.config.poll_seconds,
            id=POLL_JOB_ID,
            name=POLL_JOB_NAME,
            jobstore="memory",
            max_instances=1,
            coalesce=True,
            next_run_time=now,
        )
        if self.config.retention_days > 0:
            scheduler.add_job(
                self._apply_retention_logged,
                "interval",
                seconds=RETENTION_INTERVAL_SECONDS,
                id="retention",
                name="delete messages past the retention limit",
                jobstore="memory",
                max_instances=1,
                coalesce=True,
                next_run_time=now,
            )
        scheduler.add_job(
            self.sync_schedules,
            "interval",
            seconds=SCHEDULE_SYNC_SECONDS,
            id="schedule-sync",
            name="sync retrain schedules with the scopes",
            jobstore="memory",
            max_instances=1,
            coalesce=True,
        )
        return scheduler

    def sync_schedules(self, scheduler: Any | None = None) -> None:
        """Give every collecting scope its retrain schedule (and drop those of scopes no longer collecting)."""
        scheduler = scheduler or self._scheduler
        try:
            sync_schedules(scheduler, self.engine, self.config.schedule, cron_trigger(self.config.schedule))
        except Exception:
            logger.exception("could not sync the retrain schedules; trying again later")

    def serve(self) -> None:
        """Run until `stop` is set (by a signal handler or a test), then shut down cleanly."""
        logging.getLogger("apscheduler.scheduler").addFilter(_SkipBusyPoll())
        quiet = _QuietDuringOutage(self)
        logging.getLogger("apscheduler.scheduler").addFilter(quiet)
        set_schedule_context(self.engine, self.config.min_messages)
        self._scheduler = scheduler = self.build_scheduler()
        scheduler.start()
        self.sync_schedules(scheduler)
        try:
            catch_up_missed_runs(
                self.engine, cron_trigger(self.config.schedule), min_messages=self.config.min_messages
            )
        except Exception:
            logger.exception("could not catch up retrains missed while the trainer was down")
        logger.info(
            "trainer %s up: polling every %gs, retrain schedule '%s' UTC",
            self.worker.worker_id,
            self.config.poll_seconds,
            self.config.schedule,
        )
        try:
            # A timed wait keeps the main thread responsive to signals on every platform.
            while not self.stop.wait(1.0):
                pass
        finally:
            logger.info("trainer %s stopping: finishing or releasing its job", self.worker.worker_id)
            scheduler.shutdown(wait=True)
            set_schedule_context(None)
            logging.getLogger("apscheduler.scheduler").removeFilter(quiet)


class StopOnSignal:
    """While in use, SIGTERM and SIGINT set `stop` instead of killing the process; call from the main thread.

    The first signal asks for a clean stop and puts the previous handlers back, so a second one acts as
    usual (Ctrl-C twice still kills).

    Attributes:
        stop: The event set on a signal.
        signum: The signal received, or None.
    """

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        logger.warning("received %s; stopping after the current training step", signal.Signals(signum).name)
        self.signum = signum
        self.stop.set()
        self._restore()

    def _restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def __enter__(self) -> StopOnSignal:
        for number in (signal.SIGTERM, signal.SIGINT):
            self._previous[number] = signal.getsignal(number)
            signal.signal(number, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._restore()
