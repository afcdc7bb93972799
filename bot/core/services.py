"""What the command core needs: database, model cache, worker pools, policy; built once per process."""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot import defaults
from bot.core.cooldowns import CooldownRule
from bot.core.copy_guards import CopyGuardCache
from bot.core.expiring import ExpiringCache
from bot.core.generation import GenerationPool
from bot.core.models import ModelCache
from bot.core.output_filter import FilterStats
from bot.core.request import AdminPolicy
from db.engine import immediate
from db.filters import FilterSettings
from db.retry import retry_on_lock

if TYPE_CHECKING:
    from db.model_store import ModelStore

log = logging.getLogger(__name__)
GIL_SWITCH_INTERVAL_S = 0.001
# Seconds a workspace's filter settings are served from memory: a change by `filter` in this process shows
# at once, one made by another process of the same platform within this time.
FILTER_SETTINGS_TTL_S = 10.0
# A workspace's member ids (`bot.core.names`), read again after this long: a new member is named as
# written at once anyway (they are in the conversation); only a long-gone one waits for the next read.
MEMBERS_TTL_S = 300.0
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class BotConfig:
    """The bots' settings, a plain copy the composition root makes, so the bots never read the environment.

    The defaults are those of `bot.defaults`, which `chatsmith.settings` reads too.

    Attributes:
        policy: Who may run admin commands.
        cooldowns: Per-command cooldowns, by command name.
        default_length: Tokens `generate` writes unless asked (at most `max_length`).
        max_length: Most tokens one `generate` may ask for.
        temperature: Default sampling temperature.
        top_p: Nucleus sampling share.
        overrun: How far past its length (a share of it) a reply may run to end its message before it is
            cut back to its last sentence or word (`textgen.endings`). Measured on 300 replies of a
            fine-tuned channel model (bench `replies`): 53% end at a message or sentence end when cut
            at the length, 79% with 0.5.
        typical_p: Typical sampling share (`textgen.sampling`); None: off.
        min_p: Min-p sampling share (`textgen.sampling`); None: off.
        best_of: Candidates sampled per reply in one batch; the most fluent is kept (`textgen.generator`).
        length_from_channel: A reply after a conversation is capped at the length of one of the channel's
            last `LENGTH_MESSAGES` messages, drawn at random (`textgen.endings.length_from_channel`),
            rather than at `default_length`. Measured (bench `replies`, Stripe channel, 600 replies x 3
            seeds, two runs): detectability AUC 0.776 and 0.785 with it, 0.804 and 0.799 at one fixed
            length; 64 characters a reply against 97-102 (the held-out messages: mean 90, median 64).
        names_from_conversation: A reply after the conversation names only its members: a member of the
            workspace who wrote none of the messages the reply read is named as the conversation's last
            speaker (`bot.core.names`). Measured (`python -m bench.reply_tells`, Stripe channel, 600
            replies): detectability AUC 0.740 with it, 0.761 without.
        end_untempered: A reply ends at the model's own probability of ending its message, whatever the
            temperature and truncation (`textgen.sampling.SamplingParams.end_untempered`). Measured (bench
            `replies`, 600 replies x 3 seeds, fine-tuned channel model, same temperature and top-p): a
            classifier tells replies from the channel's messages at AUC 0.862 with it, 0.893 without;
            132 characters a reply on average without it, 108 with it.
        backfill_max: Most past messages one `train backfill:N` reads.
        base_model_path: The bundle that serves where no channel or workspace model is active; None: none.
        model_cache_bytes: Bytes of model weights kept loaded (least recently used models go first).
        generation_workers: Threads decoding generate requests.
        generation_max_batch: Most generate requests decoded together in one batch.
        generation_queue_max: Most generate requests waiting or decoding at once; past it a request is
            refused at once as busy (`GenerationBusy`).
        generation_queue_per_workspace: Most of those one workspace may hold, so that one workspace
            cannot fill the queue and leave the others refused.
        train_queue_per_workspace: Most training jobs `train` may have queued per workspace (retrains
            that remove a member's messages, and the schedule, are never refused).
        min_training_messages: Trainable messages the trainer needs for a model (its `min_messages`);
            `train` and `forget-me` queue no job below it.
        retention_days: Messages older than this many days are not kept by a backfill (the trainer deletes
            them anyway, `CHATSMITH_RETENTION_DAYS`); 0: no limit.
    """

    policy: AdminPolicy = AdminPolicy()
    # None unless given: a core built in code (tests, benchmarks) runs commands back to back; a deployed
    # bot gets `bot.defaults.COOLDOWNS` through its settings.
    cooldowns: dict[str, CooldownRule] = field(default_factory=dict)
    default_length: int = defaults.DEFAULT_LENGTH
    max_length: int = defaults.MAX_LENGTH
    temperature: float = defaults.TEMPERATURE
    top_p: float | None = defaults.TOP_P
    overrun: float = 0.5
    typical_p: float | None = None
    min_p: float | None = None
    best_of: int = 1
    length_from_channel: bool = True
    end_untempered: bool = True
    names_from_conversation: bool = True
    backfill_max: int = defaults.BACKFILL_MAX
    base_model_path: Path | None = None
    model_cache_bytes: int = defaults.MODEL_CACHE_MB * 1024 * 1024
    generation_workers: int = defaults.GENERATION_WORKERS
    generation_max_batch: int = defaults.GENERATION_MAX_BATCH
    generation_queue_max: int = defaults.GENERATION_QUEUE_MAX
    generation_queue_per_workspace: int = defaults.GENERATION_QUEUE_PER_WORKSPACE
    train_queue_per_workspace: int = defaults.TRAIN_QUEUE_PER_WORKSPACE
    min_training_messages: int = defaults.MIN_TRAINING_MESSAGES
    retention_days: int = 0


class Services:
    """Long-lived resources shared by every adapter of one process.

    Database work is blocking (SQLAlchemy), so `run_db` runs it on a small thread pool of its own, apart
    from the generation workers: a slow batch of generations never holds up a status query.

    Args:
        engine: A database at the current schema (see `db.open_database`).
        config: The core's settings.
        models: The model cache (default: one of `model_cache_bytes`).
        generation: The generation pool (default: one on `models`).
        store: The model store the trainer publishes to (None: registry locations are local paths).
        db_workers: Threads for database work.
    """

    def __init__(
        self,
        engine: Engine,
        config: BotConfig,
        *,
        models: ModelCache | None = None,
        generation: GenerationPool | None = None,
        store: ModelStore | None = None,
        db_workers: int = 4,
    ) -> None:
        self.engine = engine
        self.config = config
        # Where version bundles live; None: the locations in the registry are local paths.
        self.store = store
        self.sessions: sessionmaker[Session] = sessionmaker(bind=engine, expire_on_commit=False)
        # Transactions that write take SQLite's write lock at BEGIN, so they wait their turn (busy
        # timeout) instead of failing when another writer committed after they read.
        self.write_sessions: sessionmaker[Session] = sessionmaker(
            bind=immediate(engine), expire_on_commit=False
        )
        self.models = models or ModelCache()
        self.generation = generation or GenerationPool(self.models)
        # The output filter's copy guards, and what it did per workspace (for `status` and `stats`).
        self.copy_guards = CopyGuardCache()
        self.filter_stats = FilterStats()
        # Each workspace's filter settings, read by every /generate (`bot.core.expiring`).
        self.filter_settings: ExpiringCache[tuple[str, str], FilterSettings] = ExpiringCache(
            FILTER_SETTINGS_TTL_S
        )
        # Each workspace's member ids, read by every /generate that follows the conversation.
        self.members: ExpiringCache[tuple[str, str], frozenset[str]] = ExpiringCache(MEMBERS_TTL_S)
        self._db_executor = ThreadPoolExecutor(max_workers=db_workers, thread_name_prefix="chatsmith-db")
        # Message events (new, edited, deleted) are applied one at a time in arrival order: an edit or a
        # delete must never overtake the message it applies to.
        self._collect_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatsmith-collect")
        # CPU work that is neither database nor decoding: loading copy guards, which every /generate
        # waits on, and charts apart from it, so that a burst of /stats never delays a reply.
        self._work_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatsmith-work")
        self._chart_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatsmith-chart")

    async def run_db(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking database code on the database threads and await its result.

        `function` must be whole transactions: it is run again when it loses a lock race.
        """
        loop = asyncio.get_running_loop()
        call = functools.partial(retry_on_lock, functools.partial(function, *args, **kwargs))
        return await loop.run_in_executor(self._db_executor, call)

    async def run_collect(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Like `run_db`, on the single collection thread: calls run in the order they were made."""
        loop = asyncio.get_running_loop()
        call = functools.partial(retry_on_lock, functools.partial(function, *args, **kwargs))
        return await loop.run_in_executor(self._collect_executor, call)

    async def run_work(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking CPU work of the generation path (copy guards) off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._work_executor, functools.partial(function, *args, **kwargs))

    async def run_chart(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a chart's drawing off the event loop, on a thread of its own (never the generation path's)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._chart_executor, functools.partial(function, *args, **kwargs))

    def close(self) -> None:
        """Stop the worker threads and release the database connections."""
        self.generation.close()
        self._db_executor.shutdown(wait=True)
        self._collect_executor.shutdown(wait=True)
        self._work_executor.shutdown(wait=True)
        self._chart_executor.shutdown(wait=True)
        self.engine.dispose()


def build_services(
    config: BotConfig, database_url: str, store: ModelStore, *, migrate_new_database: bool = False
) -> Services:
    """Open the database and build the services around it.

    Args:
        config: The bots' settings.
        database_url: The database (any SQLAlchemy URL).
        store: Where the trainer publishes bundles.
        migrate_new_database: Apply the migrations when the database has no schema at all yet (the
            console's fresh-clone case, on the embedded SQLite database). A database at an older schema
            is still refused with the message naming `chatsmith db upgrade`, because migrating a
            database other processes share is an operator's decision.

    Raises:
        DatabaseError: The database cannot be reached, or its schema is not current.
    """
    from db.engine import create_database_engine
    from db.schema import current_revision, ensure_schema_current, upgrade

    engine = create_database_engine(database_url)
    try:
        if migrate_new_database and current_revision(engine) is None:
            log.info("new embedded database: applying migrations")
            upgrade(engine)
        ensure_schema_current(engine)
    except BaseException:
        engine.dispose()
        raise
    # Decoding threads are CPU-bound Python; with CPython's default 5 ms GIL switch interval the event
    # loop thread can wait several slices for the GIL after every socket read (a convoy), which shows as
    # loop stalls of hundreds of milliseconds on a busy machine. A 1 ms interval keeps the loop responsive.
    sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
    models = ModelCache(config.model_cache_bytes)
    generation = GenerationPool(
        models,
        config.generation_workers,
        config.generation_max_batch,
        max_queued=config.generation_queue_max,
        max_queued_per_workspace=config.generation_queue_per_workspace,
    )
    return Services(engine, config, models=models, generation=generation, store=store)
