"""`train`: queue training of the channel's or the workspace's model, after an optional backfill."""

from __future__ import annotations

from bot.core.arguments import int_arg, scope_arg
from bot.core.backfill import backfill
from bot.core.command_spec import COMMAND_PREFIXES
from bot.core.errors import CommandError
from bot.core.places import ensure_place
from bot.core.request import Reply, Request
from bot.core.safety import safe_reply
from bot.core.services import Services
from db import jobs, messages
from db.scopes import Scope


async def train(services: Services, request: Request) -> Reply:
    """Queue a training job for the scope; `backfill:N` first keeps up to N past messages of the channel."""
    scope_name = scope_arg(request.args)
    backfill_limit = int_arg(request.args, "backfill", 0, 0, services.config.backfill_max)
    place = await services.run_db(ensure_place, services, request)
    note = ""
    if backfill_limit:
        if request.history is None:
            raise CommandError("Backfill is not available here; run `train` without it.")
        if not place.collecting:
            raise CommandError(
                f"Collection is off in {place.channel_label}: run `collect on` first, so that its "
                "messages may be kept."
            )
        read, kept = await backfill(services, request, place, backfill_limit)
        note = f" Backfill read {read} past messages and added {kept} new ones."
    scope = place.scope(scope_name)
    where = place.channel_label if scope_name == "channel" else "this workspace"
    trainable = await services.run_db(_count_trainable, services, scope)
    # Only platforms that can read a channel's history offer a backfill.
    or_backfill = ", or use `train backfill:N`" if request.history is not None else ""
    if trainable == 0:
        start = (
            "let people talk" if place.collecting else "turn `collect on` in a channel and let people talk"
        )
        return safe_reply(
            request, f"Nothing to train on in {where} yet: {start}{or_backfill}.{note}", ephemeral=True
        )
    needed = services.config.min_training_messages
    if trainable < needed:
        # Checked here, so the trainer never fails a job for it later.
        return safe_reply(
            request,
            f"{where[:1].upper()}{where[1:]} has {trainable} messages to train on; the trainer needs at least "
            f"{needed}, so {needed - trainable} more. Let people talk{or_backfill}.{note}",
            ephemeral=True,
        )
    try:
        enqueued, position = await services.run_db(_enqueue, services, scope, request.user)
    except jobs.QueueFull as full:
        raise CommandError(f"Not queued: {full}.{note}") from None
    where_in_queue = "training now" if position == 0 else f"position {position} in the queue"
    if enqueued.created:
        text = f"Training queued for {where} on {trainable} messages ({where_in_queue}).{note}"
    else:
        text = f"A training job for {where} is already {where_in_queue}.{note}"
    return safe_reply(
        request,
        text + " A trainer process (`chatsmith trainer`) runs it; `status` shows its progress.",
        ephemeral=True,
    )


def _count_trainable(services: Services, scope: Scope) -> int:
    with services.sessions() as session:
        return messages.count_messages_since(session, scope, None, command_prefixes=COMMAND_PREFIXES)


def _enqueue(services: Services, scope: Scope, user: str) -> tuple[jobs.Enqueued, int | None]:
    # Only admin requests wait on the workspace's cap: forget-me retrains and the schedule never do.
    enqueued = jobs.request_training(
        services.engine,
        scope,
        "admin",
        requested_by=user[:64],
        max_queued_in_workspace=services.config.train_queue_per_workspace,
    )
    with services.sessions() as session:
        return enqueued, jobs.queue_position(session, scope)
