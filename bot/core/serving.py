"""Which model answers a request, named the way replies name it ("channel model v3", "base model").

The model that answers is one that loads. A bundle that is there but damaged makes the loader raise a
one-line `TextgenError`; its version is then marked failed, the scope falls back (its previous good
version, the workspace model, the base model), and the request is answered by the fallback. The loader's
message names a server path, so it goes to the log and the version's note, never to chat. While the
database does not answer, the base model, which needs none, answers.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from bot.core.errors import CommandError
from bot.core.request import Request
from bot.core.services import Services
from db.retry import DatabaseUnavailable, retry_on_lock
from db.serving import fail_unloadable_version, serving_model_in
from errortext import first_line
from textgen.copyguard import CopyGuard
from textgen.errors import TextgenError

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long a request waits for a database that does not answer before it does without it.
GENERATE_DATABASE_WAIT_S = 2.0
# Each fallback retires one damaged version; a scope with more than this many in a row is not served.
MAX_FALLBACKS = 8
BASE_MODEL_BROKEN = "The base model cannot be loaded right now, so nothing answers here; an admin can see why in the bot's log."


@dataclass(frozen=True)
class AnsweringModel:
    """The bundle that answers in a channel, and how to name it ("channel model v3").

    Attributes:
        path: The bundle directory.
        label: How replies name the model.
        version_id: Its `ModelVersion` id; None for the base model.
        ancestors: The bundles it was fine-tuned from, parent first, then the base model: their
            corpora are in its weights too, so its replies pass their copy guards as well.
    """

    path: Path
    label: str
    version_id: int | None = None
    ancestors: tuple[Path, ...] = ()
    # The copy guards of its lineage, as `serving_model` loaded them (empty when not looked up).
    guards: tuple[CopyGuard, ...] = field(default=(), compare=False, repr=False)

    @property
    def lineage(self) -> tuple[Path, ...]:
        """Its bundle, then those it was fine-tuned from: whose copy guards its replies pass."""
        return (self.path, *self.ancestors)


def serving_model(services: Services, request: Request) -> AnsweringModel | None:
    """Channel model, else workspace model, else base model (the rule of `db.serving`),
    the first of them whose bundle loads.

    Loads the model into the services' cache on the way (the next `generate` finds it there). Runs its
    own transactions; call it on the database threads.

    Raises:
        CommandError: The base model is the only one left and it does not load (no path in the text).
    """
    for _ in range(MAX_FALLBACKS):
        try:
            serving = retry_on_lock(
                functools.partial(_resolve, services, request), outage_seconds=GENERATE_DATABASE_WAIT_S
            )
        except DatabaseUnavailable:
            # The base model needs no database: it answers while the database is down.
            if services.config.base_model_path is None:
                raise
            log.warning(
                "database not answering: the base model answers in %s/%s", request.workspace, request.channel
            )
            serving = AnsweringModel(services.config.base_model_path, "base model")
        if serving is None:
            return None
        try:
            services.models.get(serving.path)
            # Its copy guards too: a reply is never sent unchecked, so a damaged guard is a damaged bundle.
            guards = tuple(services.copy_guards.for_serving(serving.lineage))
        except TextgenError as error:
            if serving.version_id is None:
                log.error("the base model at %s does not load: %s", serving.path, error)
                raise CommandError(BASE_MODEL_BROKEN) from None
            log.error(
                "%s of %s/%s does not load; marked failed, falling back: %s",
                serving.label,
                request.workspace,
                request.channel,
                error,
            )
            _fail_version(services, serving.version_id, str(error))
            continue
        return replace(serving, guards=guards)
    raise CommandError(
        "No model here loads right now; an admin can see why with `models` and in the bot's log."
    )


def read_or_default(default: T, function: Callable[..., T], *args: object) -> T:
    """`function(*args)` (a read), or `default` when the database does not answer within a short wait.

    For what a reply can do without: a workspace's filter words, the channel's recent messages.
    """
    try:
        return retry_on_lock(functools.partial(function, *args), outage_seconds=GENERATE_DATABASE_WAIT_S)
    except DatabaseUnavailable:
        log.warning("database not answering: %s done without", getattr(function, "__name__", "a read"))
        return default


def _resolve(services: Services, request: Request) -> AnsweringModel | None:
    # Deferred: usually it only reads; the rare write (flagging a vanished bundle) is retried.
    with services.sessions.begin() as session:
        serving = serving_model_in(
            session,
            request.platform,
            request.workspace,
            request.channel,
            store=services.store,
            base_model=services.config.base_model_path,
        )
        if serving is None:
            return None
        if serving.source == "base":
            return AnsweringModel(serving.path, "base model")
        base = services.config.base_model_path
        return AnsweringModel(
            serving.path,
            f"{serving.source} model v{serving.version}",
            serving.version_id,
            (*serving.ancestors, base) if base is not None else serving.ancestors,
        )


def _fail_version(services: Services, version_id: int, problem: str) -> None:
    with services.write_sessions.begin() as session:
        fail_unloadable_version(session, version_id, first_line(problem), store=services.store)
