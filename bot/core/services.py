"""What the command core needs, built once from settings: database, model cache, worker pools, policy."""

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

from bot.core.cooldowns import CooldownRule
from bot.core.generation import GenerationPool
from bot.core.models import ModelCache
from bot.core.request import AdminPolicy
from db.engine import immediate
from db.retry import retry_on_lock

if TYPE_CHECKING:
    from chatsmith.model_store import ModelStore
    from chatsmith.settings import Settings

log = logging.getLogger(__name__)
GIL_SWITCH_INTERVAL_S = 0.001
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class BotConfig:
    """The settings the command core reads (a plain copy, so the core never touches the environment)."""

    policy: AdminPolicy = AdminPolicy()
    cooldowns: dict[str, CooldownRule] = field(default_factory=dict)
    default_length: int = 160
    max_length: int = 600
    temperature: float = 0.8
    top_p: float = 0.95
    backfill_max: int = 5000
    base_model_path: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> BotConfig:
        """Copy the bot fields of `settings`; the base model is found as the trainer finds it.

        Raises:
            TrainerError: `CHATSMITH_BASE_MODEL_PATH` names a directory that does not exist.
        """
        from trainer.base_model import find_base_model

        return cls(
            policy=AdminPolicy(frozenset(settings.admin_roles), frozenset(settings.admin_user_ids)),
            cooldowns={
                "generate": CooldownRule(settings.generate_user_cooldown, settings.generate_channel_cooldown),
                "train": CooldownRule(settings.train_user_cooldown, settings.train_channel_cooldown),
            },
            default_length=min(settings.generate_default_length, settings.generate_max_length),
            max_length=settings.generate_max_length,
            temperature=settings.generate_temperature,
            top_p=settings.generate_top_p,
            backfill_max=settings.backfill_max,
            base_model_path=find_base_model(settings.base_model_path),
        )


class Services:
    """Long-lived resources shared by every adapter of one process.

    Database work is blocking (SQLAlchemy), so `run_db` runs it on a small thread pool of its own, apart
    from the generation workers: a slow batch of generations never holds up a status query.

    Args:
        engine: A database at the current schema (see `db.open_database`).
        config: The core's settings.
        models: The model cache (default: one of `model_cache_size` entries).
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
        self._db_executor = ThreadPoolExecutor(max_workers=db_workers, thread_name_prefix="chatsmith-db")
        # Message events (new, edited, deleted) are applied one at a time in arrival order: an edit or a
        # delete must never overtake the message it applies to.
        self._collect_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatsmith-collect")
        # Charts and other CPU work that is neither database nor decoding.
        self._work_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatsmith-work")

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
        """Run blocking CPU work (charts) off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._work_executor, functools.partial(function, *args, **kwargs))

    def close(self) -> None:
        """Stop the worker threads and release the database connections."""
        self.generation.close()
        self._db_executor.shutdown(wait=True)
        self._collect_executor.shutdown(wait=True)
        self._work_executor.shutdown(wait=True)
        self.engine.dispose()


def build_services(settings: Settings, *, migrate_new_database: bool = False) -> Services:
    """Open the database named by `settings` and build the services around it.

    Args:
        settings: The process's settings.
        migrate_new_database: Apply the migrations when the database is the embedded SQLite one and has
            no schema at all yet (the console's fresh-clone case). A database at an older schema is still
            refused with the message naming `chatsmith db upgrade`, because migrating a database other
            processes share is an operator's decision.

    Raises:
        DatabaseError: The database cannot be reached, or its schema is not current.
    """
    from chatsmith.model_store import LocalModelStore
    from db.engine import create_database_engine
    from db.schema import current_revision, ensure_schema_current, upgrade

    config = BotConfig.from_settings(settings)  # first: a wrong base-model path fails before any I/O
    url = settings.effective_database_url
    engine = create_database_engine(url)
    try:
        if migrate_new_database and settings.database_url is None and current_revision(engine) is None:
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
    models = ModelCache(settings.model_cache_size)
    generation = GenerationPool(models, settings.generation_workers, settings.generation_max_batch)
    store = LocalModelStore(settings.effective_model_dir)
    return Services(engine, config, models=models, generation=generation, store=store)
