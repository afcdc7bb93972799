"""The command core: every chat command as a plain async method from `Request` to `Reply`.

Adapters translate platform events into requests and render replies; nothing here knows Discord or
Slack. Database work runs on the services' database threads and generation on the generation pool, so
the event loop of the adapter only ever awaits.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.charts import render_stats_chart
from bot.core.cooldowns import Cooldowns, describe_wait
from bot.core.errors import CommandError, user_message
from bot.core.request import ArgValue, HistoryMessage, IncomingMessage, Reply, Request
from bot.core.safety import generated_or_friendly, make_safe
from bot.core.services import Services
from db import jobs, messages, registry
from db.models import Channel, Message, ModelVersion, TrainingJob, Workspace, utcnow
from db.scopes import Scope, get_or_create_channel, get_or_create_workspace
from db.serving import serving_model_in
from textgen.bundle import read_manifest
from textgen.sampling import SamplingParams

log = logging.getLogger(__name__)

# Longest prompt fed to a model: every prompt token is one decoding step.
MAX_PROMPT_CHARS = 500
# Messages stored per transaction during a backfill, and how often progress is reported.
BACKFILL_BATCH = 100
COMMAND_PREFIXES = ("/",)


@dataclass(frozen=True)
class CommandInfo:
    """A command's help line and whether it needs admin rights."""

    usage: str
    summary: str
    admin: bool = False


COMMANDS: dict[str, CommandInfo] = {
    "generate": CommandInfo(
        "generate [prompt] [length:N] [temperature:T]", "write something in this channel's voice"
    ),
    "status": CommandInfo("status", "which model answers here, its scores, and training progress"),
    "stats": CommandInfo("stats", "chart of the model's loss per epoch and the messages collected"),
    "forget-me": CommandInfo("forget-me", "delete your collected messages here and stop collecting yours"),
    "help": CommandInfo("help", "this list"),
    "train": CommandInfo(
        "train [channel|workspace] [backfill:N]",
        "queue training; backfill first reads up to N past messages",
        admin=True,
    ),
    "collect": CommandInfo("collect on|off", "opt this channel in or out of collection", admin=True),
    "models": CommandInfo("models [channel|workspace]", "list model versions and their scores", admin=True),
    "rollback": CommandInfo(
        "rollback [channel|workspace]", "serve the previous good model version again", admin=True
    ),
}
ADMIN_COMMANDS = frozenset(name for name, info in COMMANDS.items() if info.admin)


@dataclass(frozen=True)
class ServingModel:
    """The bundle that answers in a channel, and how to name it ("channel model v3")."""

    path: Path
    label: str
    version: ModelVersion | None = None


@dataclass(frozen=True)
class _Place:
    """Database ids of the request's workspace and channel."""

    workspace_id: int
    channel_id: int
    channel_label: str
    collecting: bool

    @property
    def channel_scope(self) -> Scope:
        return Scope(self.workspace_id, self.channel_id)

    @property
    def workspace_scope(self) -> Scope:
        return Scope(self.workspace_id)


class CommandCore:
    """Runs commands for every adapter.

    Args:
        services: Database, models, worker pools and configuration.
        clock: Monotonic clock for cooldowns (tests pass a fake one).
    """

    def __init__(self, services: Services, clock: Callable[[], float] = time.monotonic) -> None:
        self.services = services
        self.config = services.config
        self.cooldowns = Cooldowns(self.config.cooldowns, clock)
        self._handlers = {
            "generate": self._generate,
            "train": self._train,
            "status": self._status,
            "models": self._models,
            "rollback": self._rollback,
            "collect": self._collect,
            "forget-me": self._forget_me,
            "stats": self._stats,
            "help": self._help,
        }

    # ------------------------------------------------------------------ entry points

    async def handle(self, request: Request) -> Reply:
        """Check and run a command. Errors written for users become an ephemeral one-line reply; any
        other error propagates to the adapter's error handler."""
        refusal = self.admit(request)
        if refusal is not None:
            return refusal
        return await self.run(request)

    def admit(self, request: Request) -> Reply | None:
        """The quick checks, without I/O: known command, admin rights, cooldowns.

        Adapters call this before deferring, so a refusal is answered at once (and only to the caller).
        Returns None when the command may run; a passing check starts the cooldown.
        """
        info = COMMANDS.get(request.command)
        if info is None:
            return self._reply(
                request, f"Unknown command `{request.command}`. Try `help` for the list.", ephemeral=True
            )
        if info.admin and not request.is_admin:
            return self._reply(
                request,
                f"`{request.command}` is for admins (administrator or manage-server rights, or a "
                "configured admin role or user id).",
                ephemeral=True,
            )
        wait = self.cooldowns.check_and_start(
            request.command,
            (request.platform, request.workspace, request.user),
            (request.platform, request.workspace, request.channel),
        )
        if wait > 0:
            return self._reply(
                request, f"Slow down: try `{request.command}` again in {describe_wait(wait)}.", ephemeral=True
            )
        return None

    async def run(self, request: Request) -> Reply:
        """Run an admitted command (see `admit`)."""
        try:
            return await self._handlers[request.command](request)
        except Exception as error:
            message = user_message(error)
            if message is None:
                raise
            return self._reply(request, message, ephemeral=True)

    # ------------------------------------------------------------------ message collection

    async def collect_message(self, message: IncomingMessage) -> bool:
        """Keep a message seen in a channel, if the channel is opted in and its author did not opt out.

        Bot messages and commands to the bot are not kept: they are never training data.
        Returns whether it was stored.
        """
        if message.author_is_bot or _is_command(message.text) or not message.text.strip():
            return False
        return await self.services.run_collect(self._record, message)

    def _record(self, message: IncomingMessage) -> bool:
        with self.services.write_sessions.begin() as session:
            channel = self._find_channel(session, message.platform, message.workspace, message.channel)
            if channel is None or not channel.collecting:
                return False
            stored = messages.record_message(
                session, channel, message.message_id, message.author_id, message.text, message.created_at
            )
            return stored is not None

    async def edit_message(
        self, platform: str, workspace: str, channel: str, message_id: str, text: str
    ) -> bool:
        """Apply an edit made on the platform to a stored message. Returns whether one changed."""

        def edit() -> bool:
            with self.services.write_sessions.begin() as session:
                row = self._find_channel(session, platform, workspace, channel)
                return row is not None and messages.edit_message(session, row, message_id, text)

        return await self.services.run_collect(edit)

    async def delete_message(self, platform: str, workspace: str, channel: str, message_id: str) -> bool:
        """Apply a delete made on the platform. Returns whether a stored message was deleted."""

        def delete() -> bool:
            with self.services.write_sessions.begin() as session:
                row = self._find_channel(session, platform, workspace, channel)
                return row is not None and messages.delete_message(session, row, message_id)

        return await self.services.run_collect(delete)

    async def is_collecting(self, platform: str, workspace: str, channel: str) -> bool:
        """Whether collection is on in a channel (unknown channels: off)."""

        def check() -> bool:
            with self.services.sessions() as session:
                row = self._find_channel(session, platform, workspace, channel)
                return bool(row is not None and row.collecting)

        return await self.services.run_db(check)

    @staticmethod
    def _find_channel(session: Session, platform: str, workspace: str, channel: str) -> Channel | None:
        return session.scalars(
            select(Channel)
            .join(Workspace, Channel.workspace_id == Workspace.id)
            .where(
                Workspace.platform == platform,
                Workspace.external_id == workspace,
                Channel.external_id == channel,
            )
        ).one_or_none()

    # ------------------------------------------------------------------ generate

    async def _generate(self, request: Request) -> Reply:
        prompt = str(request.args.get("prompt") or "").strip()[:MAX_PROMPT_CHARS]
        length = _int_arg(request.args, "length", self.config.default_length, 1, self.config.max_length)
        temperature = _float_arg(request.args, "temperature", self.config.temperature, 0.0, 2.0)
        serving = await self.services.run_db(self._serving_model, request)
        if serving is None:
            return self._reply(
                request,
                "No model answers here yet: an admin can run `collect on`, let people talk, then `train`.",
                ephemeral=True,
            )
        params = SamplingParams(max_tokens=length, temperature=temperature, top_p=self.config.top_p)
        continuation = await self.services.generation.generate(serving.path, prompt, params)
        if not continuation.strip():
            text = generated_or_friendly("")
        else:
            text = (
                f"{prompt} {continuation.lstrip()}"
                if prompt and continuation[:1].isalnum()
                else prompt + continuation
            )
        log.debug("generate in %s/%s answered by %s", request.workspace, request.channel, serving.label)
        return self._reply(request, text, model=serving.label)

    def _serving_model(self, request: Request) -> ServingModel | None:
        """Channel model, else workspace model, else base model (architecture decision 7)."""
        # Deferred: usually it only reads; the rare write (flagging a vanished bundle) is retried.
        with self.services.sessions.begin() as session:
            serving = serving_model_in(
                session,
                request.platform,
                request.workspace,
                request.channel,
                store=self.services.store,
                base_model=self.config.base_model_path,
            )
            if serving is None:
                return None
            if serving.source == "base":
                return ServingModel(serving.path, "base model")
            version = session.get(ModelVersion, serving.version_id) if serving.version_id else None
            return ServingModel(serving.path, f"{serving.source} model v{serving.version}", version)

    # ------------------------------------------------------------------ train

    async def _train(self, request: Request) -> Reply:
        scope_name = _scope_arg(request.args)
        backfill = _int_arg(request.args, "backfill", 0, 0, self.config.backfill_max)
        place = await self.services.run_db(self._ensure_place, request)
        note = ""
        if backfill:
            if request.history is None:
                raise CommandError("Backfill is not available here; run `train` without it.")
            if not place.collecting:
                raise CommandError(
                    f"Collection is off in {place.channel_label}: run `collect on` first, so that its "
                    "messages may be kept."
                )
            read, kept = await self._backfill(request, place, backfill)
            note = f" Backfill read {read} past messages and added {kept} new ones."
        scope = place.channel_scope if scope_name == "channel" else place.workspace_scope
        where = place.channel_label if scope_name == "channel" else "this workspace"
        trainable = await self.services.run_db(self._count_trainable, scope)
        if trainable == 0:
            return self._reply(
                request,
                f"Nothing to train on in {where} yet: turn `collect on` in a channel and let people talk, "
                f"or use `train backfill:N`.{note}",
                ephemeral=True,
            )
        enqueued, position = await self.services.run_db(self._enqueue, scope, request.user)
        where_in_queue = "training now" if position == 0 else f"position {position} in the queue"
        if enqueued.created:
            text = f"Training queued for {where} on {trainable} messages ({where_in_queue}).{note}"
        else:
            text = f"A training job for {where} is already {where_in_queue}.{note}"
        return self._reply(request, text + " `status` shows its progress.", ephemeral=True)

    async def _backfill(self, request: Request, place: _Place, limit: int) -> tuple[int, int]:
        assert request.history is not None
        read = kept = 0
        batch: list[HistoryMessage] = []

        async def flush() -> None:
            nonlocal kept
            kept += await self.services.run_db(self._record_history, place.channel_id, list(batch))
            batch.clear()
            if request.progress is not None:
                await request.progress(
                    f"Backfilling {place.channel_label}: {read} of up to {limit} past messages read, {kept} new ones kept…"
                )

        async for past in request.history(limit):
            read += 1
            batch.append(past)
            if len(batch) >= BACKFILL_BATCH:
                await flush()
            if read >= limit:
                break
        if batch:
            await flush()
        return read, kept

    def _record_history(self, channel_id: int, batch: list[HistoryMessage]) -> int:
        kept = 0
        with self.services.write_sessions.begin() as session:
            channel = session.get(Channel, channel_id)
            if channel is None:
                return 0
            known = set(
                session.scalars(
                    select(Message.platform_message_id).where(
                        Message.channel_id == channel_id,
                        Message.platform_message_id.in_([past.message_id for past in batch]),
                    )
                )
            )
            for past in batch:
                # Bots and commands are never training data; record_message checks consent and opt-outs.
                if (
                    past.author_is_bot
                    or _is_command(past.text)
                    or not past.text.strip()
                    or past.message_id in known
                ):
                    continue
                stored = messages.record_message(
                    session, channel, past.message_id, past.author_id, past.text, past.created_at
                )
                kept += stored is not None
        return kept

    def _count_trainable(self, scope: Scope) -> int:
        with self.services.sessions() as session:
            return messages.count_messages_since(session, scope, None, command_prefixes=COMMAND_PREFIXES)

    def _enqueue(self, scope: Scope, user: str) -> tuple[jobs.Enqueued, int | None]:
        enqueued = jobs.request_training(self.services.engine, scope, "admin", requested_by=user[:64])
        with self.services.sessions() as session:
            return enqueued, jobs.queue_position(session, scope)

    # ------------------------------------------------------------------ status

    async def _status(self, request: Request) -> Reply:
        return self._reply(request, await self.services.run_db(self._status_text, request), ephemeral=True)

    def _status_text(self, request: Request) -> str:
        serving = self._serving_model(request)
        now = utcnow()
        with self.services.sessions() as session:
            place = self._find_place(session, request)
            label = _channel_label(request)
            if serving is None:
                lines = [f"No model answers in {label} yet."]
            elif serving.version is None:
                lines = [f"In {label} the base model answers (no channel or workspace model yet)."]
            else:
                lines = [
                    f"In {label} the {serving.label} answers: {_describe_version(serving.version, now)}."
                ]
            if place is None:
                lines.append(f"Collection in {label}: off.")
                return "\n".join(lines)
            count = messages.count_messages_since(
                session, place.channel_scope, None, command_prefixes=COMMAND_PREFIXES
            )
            state = "on" if place.collecting else "off"
            lines.append(f"Collection in {label}: {state} ({count} messages kept for training).")
            for scope, where in ((place.channel_scope, label), (place.workspace_scope, "the workspace")):
                job = jobs.latest_job(session, scope)
                if job is not None:
                    lines.append(_describe_job(job, where, jobs.queue_position(session, scope), now))
        return "\n".join(lines)

    # ------------------------------------------------------------------ models and rollback

    async def _models(self, request: Request) -> Reply:
        scope_name = _scope_arg(request.args)

        def listing() -> str:
            now = utcnow()
            with self.services.sessions() as session:
                place = self._find_place(session, request)
                if place is None:
                    return f"No models for {_channel_label(request)} yet."
                scope = place.channel_scope if scope_name == "channel" else place.workspace_scope
                where = place.channel_label if scope_name == "channel" else "the workspace"
                versions = registry.list_versions(session, scope)[:10]
                if not versions:
                    return f"No model versions for {where} yet."
                lines = [f"Model versions for {where}, newest first:"]
                lines += [f"• v{v.version} {v.status}: {_describe_version(v, now)}" for v in versions]
                return "\n".join(lines)

        return self._reply(request, await self.services.run_db(listing), ephemeral=True)

    async def _rollback(self, request: Request) -> Reply:
        scope_name = _scope_arg(request.args)

        def roll_back() -> str:
            with self.services.write_sessions.begin() as session:
                place = self._find_place(session, request)
                if place is None:
                    raise CommandError(f"No models for {_channel_label(request)} yet; nothing to roll back.")
                scope = place.channel_scope if scope_name == "channel" else place.workspace_scope
                where = place.channel_label if scope_name == "channel" else "the workspace"
                previous = registry.active_version(session, scope)
                now_active = registry.rollback(session, scope)
                was = f" (v{previous.version} set aside)" if previous is not None else ""
                return f"Rolled {where} back to model v{now_active.version}{was}."

        return self._reply(request, await self.services.run_db(roll_back), ephemeral=True)

    # ------------------------------------------------------------------ collect

    async def _collect(self, request: Request) -> Reply:
        state = str(request.args.get("state") or "").strip().lower()
        if state not in ("", "on", "off"):
            raise CommandError(f"Received `collect {state}`, expected `collect on` or `collect off`.")

        def apply() -> str:
            with self.services.write_sessions.begin() as session:
                channel = self._channel_row(session, request)
                label = _channel_label(request)
                if state == "":
                    return f"Collection in {label} is {'on' if channel.collecting else 'off'}."
                messages.set_collection(session, channel, state == "on", by=request.user[:64])
            if state == "on":
                return (
                    f"Collection is on in {label}: messages posted from now on are kept for training "
                    "(anyone can remove theirs with `forget-me`). `train backfill:N` adds past messages."
                )
            return f"Collection is off in {label}; its stored messages stay out of training until it is on again."

        return self._reply(request, await self.services.run_db(apply), ephemeral=True)

    # ------------------------------------------------------------------ forget-me

    async def _forget_me(self, request: Request) -> Reply:
        def forget() -> tuple[int, list[Scope]]:
            with self.services.write_sessions.begin() as session:
                workspace = get_or_create_workspace(
                    session, request.platform, request.workspace, request.workspace_name or None
                )
                result = messages.forget_user(session, workspace.id, request.user)
                # Only scopes with a model saw the messages; the rest have nothing to retrain.
                to_retrain = [s for s in result.affected_scopes if registry.list_versions(session, s)]
                return result.deleted_messages, to_retrain

        deleted, scopes = await self.services.run_db(forget)
        for scope in scopes:
            await self.services.run_db(
                jobs.request_training, self.services.engine, scope, "admin", f"forget-me:{request.user}"[:64]
            )
        retrain = f" {len(scopes)} model(s) that saw them will be retrained." if scopes else ""
        return self._reply(
            request,
            f"Deleted {deleted} of your messages in this workspace; nothing you write here will be "
            f"collected from now on.{retrain}",
            ephemeral=True,
        )

    # ------------------------------------------------------------------ stats

    async def _stats(self, request: Request) -> Reply:
        def gather() -> tuple[str, list[dict[str, Any]], list[datetime]]:
            serving = self._serving_model(request)
            history: list[dict[str, Any]] = []
            title = f"{_channel_label(request)}: no model yet"
            if serving is not None:
                title = f"{_channel_label(request)}: {serving.label}"
                try:
                    history = list(read_manifest(serving.path).get("history") or [])
                except Exception:  # a damaged bundle still gets a chart of the corpus
                    log.warning("cannot read the history of %s", serving.path, exc_info=True)
            with self.services.sessions() as session:
                place = self._find_place(session, request)
                times: list[datetime] = []
                if place is not None:
                    times = list(
                        session.scalars(
                            select(Message.created_at)
                            .where(
                                Message.channel_id == place.channel_id,
                                Message.deleted.is_(False),
                                Message.author_is_bot.is_(False),
                            )
                            .order_by(Message.created_at)
                        )
                    )
            return title, history, times

        title, history, times = await self.services.run_db(gather)
        png = await self.services.run_work(render_stats_chart, title, history, times)
        epochs = len(history)
        summary = f"{title}. {epochs} epoch(s) of training history; {len(times)} messages collected here."
        return self._reply(request, summary, file=png, filename="chatsmith-stats.png")

    # ------------------------------------------------------------------ help

    async def _help(self, request: Request) -> Reply:
        lines = ["Commands:"]
        for info in COMMANDS.values():
            lines.append(f"• `{info.usage}`: {info.summary}" + (" (admins)" if info.admin else ""))
        return self._reply(request, "\n".join(lines), ephemeral=True)

    # ------------------------------------------------------------------ helpers

    def _find_place(self, session: Session, request: Request) -> _Place | None:
        channel = self._find_channel(session, request.platform, request.workspace, request.channel)
        if channel is None:
            return None
        return _Place(channel.workspace_id, channel.id, _channel_label(request), channel.collecting)

    def _channel_row(self, session: Session, request: Request) -> Channel:
        workspace = get_or_create_workspace(
            session, request.platform, request.workspace, request.workspace_name or None
        )
        return get_or_create_channel(session, workspace, request.channel, request.channel_name or None)

    def _ensure_place(self, request: Request) -> _Place:
        with self.services.write_sessions.begin() as session:
            channel = self._channel_row(session, request)
            session.flush()
            return _Place(channel.workspace_id, channel.id, _channel_label(request), channel.collecting)

    @staticmethod
    def _reply(
        request: Request,
        text: str,
        *,
        ephemeral: bool = False,
        model: str | None = None,
        file: bytes | None = None,
        filename: str | None = None,
    ) -> Reply:
        return Reply(
            make_safe(text, request.platform), file=file, filename=filename, ephemeral=ephemeral, model=model
        )


# ---------------------------------------------------------------------- small helpers


def _is_command(text: str) -> bool:
    return text.lstrip().startswith(COMMAND_PREFIXES)


def _channel_label(request: Request) -> str:
    return f"#{request.channel_name or request.channel}"


def _int_arg(args: dict[str, ArgValue] | Any, name: str, default: int, low: int, high: int) -> int:
    value = args.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(str(value)) if not isinstance(value, int) else value
    except ValueError:
        raise CommandError(
            f"Received {name} `{value}`, expected a whole number from {low} to {high}."
        ) from None
    if not low <= number <= high:
        raise CommandError(f"Received {name} {number}, expected a whole number from {low} to {high}.")
    return number


def _float_arg(args: dict[str, ArgValue] | Any, name: str, default: float, low: float, high: float) -> float:
    value = args.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise CommandError(
            f"Received {name} `{value}`, expected a number from {low:g} to {high:g}."
        ) from None
    if not math.isfinite(number) or not low <= number <= high:
        raise CommandError(f"Received {name} {number:g}, expected a number from {low:g} to {high:g}.")
    return number


def _scope_arg(args: dict[str, ArgValue] | Any) -> str:
    scope = str(args.get("scope") or "channel").strip().lower()
    if scope not in ("channel", "workspace"):
        raise CommandError(f"Received scope `{scope}`, expected `channel` or `workspace`.")
    return scope


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = max(0.0, (now - moment.astimezone(UTC)).total_seconds())
    if seconds < 90:
        return f"{int(seconds)} s ago"
    if seconds < 90 * 60:
        return f"{int(seconds // 60)} min ago"
    if seconds < 36 * 3600:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


def _describe_version(version: ModelVersion, now: datetime) -> str:
    parts = []
    metrics = version.metrics or {}
    if isinstance(metrics.get("val_nats_per_char"), int | float):
        parts.append(f"{metrics['val_nats_per_char']:.3f} nats/char on held-out messages")
    elif isinstance(metrics.get("val_loss"), int | float):
        parts.append(f"validation loss {metrics['val_loss']:.3f}")
    stats = version.corpus_stats or {}
    if isinstance(stats.get("messages"), int):
        parts.append(f"trained on {stats['messages']} messages")
    parts.append(
        f"{'activated' if version.activated_at else 'made'} {_age(version.activated_at or version.created_at, now)}"
    )
    if version.note:
        parts.append(f"note: {version.note}")
    return ", ".join(parts)


def _describe_job(job: TrainingJob, where: str, position: int | None, now: datetime) -> str:
    if job.status == "queued":
        return f"Training of {where}: queued" + (f", position {position}." if position else ".")
    if job.status == "running":
        progress = job.progress or {}
        text = f"Training of {where}: running"
        if "epoch" in progress and "epochs" in progress:
            text += f", epoch {progress['epoch']}/{progress['epochs']}"
        if isinstance(progress.get("fraction"), int | float):
            text += f", {progress['fraction']:.0%}"
        if isinstance(progress.get("loss"), int | float):
            text += f", loss {progress['loss']:.3f}"
        eta = progress.get("eta_seconds")
        if isinstance(eta, int | float) and math.isfinite(eta):
            text += f", about {describe_wait(eta)} left"
        return text + "."
    text = f"Last training of {where}: {job.status} {_age(job.finished_at or job.created_at, now)}"
    if job.status == "failed" and job.error:
        text += f" ({job.error.splitlines()[0][:200]})"
    return text + "."
