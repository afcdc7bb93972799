"""Message collection: what people write in opted-in channels is kept, edited and deleted as on the platform.

Bot messages, commands to the bot and empty messages are never training data; `db.messages.record_message`
checks consent (the channel's opt-in, the author's opt-out). Events are applied one at a time in arrival
order on the collection thread (`Services.run_collect`): an edit or a delete never overtakes its message.
While the database is down, events wait in a bounded in-memory buffer (`bot.core.pending`) and are written
when it returns.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from bot.core.command_spec import is_command
from bot.core.pending import DRAIN_RETRY_S, PendingWrite, PendingWrites
from bot.core.places import find_channel
from bot.core.request import HistoryMessage, IncomingMessage
from bot.core.services import Services
from db import messages
from db.models import Channel, Message, utcnow

log = logging.getLogger(__name__)

# One buffer per services object (one per process in practice).
_BUFFERS: weakref.WeakKeyDictionary[Services, PendingWrites] = weakref.WeakKeyDictionary()


def pending_writes(services: Services) -> PendingWrites:
    """The buffer of message events waiting for the database, for these services."""
    buffer = _BUFFERS.get(services)
    if buffer is None:
        buffer = _BUFFERS[services] = PendingWrites()
    return buffer


async def _apply(services: Services, description: str, write: Callable[[], bool]) -> bool:
    """Run a message event's transaction on the collection thread, or buffer it while the database is down."""
    buffer = pending_writes(services)
    result = await services.run_collect(buffer.apply, PendingWrite(description, write))
    if result is None:
        _ensure_draining(services, buffer)
        return False
    return result


def _ensure_draining(services: Services, buffer: PendingWrites) -> None:
    if buffer.drain_task is not None and not buffer.drain_task.done():
        return
    buffer.drain_task = asyncio.get_running_loop().create_task(_drain_until_empty(services, buffer))


async def _drain_until_empty(services: Services, buffer: PendingWrites) -> None:
    delay, longest = DRAIN_RETRY_S
    while True:
        await asyncio.sleep(delay)
        try:
            if await services.run_collect(buffer.drain):
                return
        except RuntimeError:  # the services were closed under us (shutdown)
            return
        delay = min(delay * 2, longest)


async def flush_pending(services: Services) -> int:
    """Try once more to write the buffered message events (at shutdown). Returns how many are still lost."""
    buffer = _BUFFERS.get(services)
    if buffer is None or len(buffer) == 0:
        return 0
    if buffer.drain_task is not None:
        buffer.drain_task.cancel()
    await services.run_collect(buffer.drain)
    left = len(buffer)
    if left:
        log.error("database still down at shutdown: %d waiting message events were not written", left)
    return left


def is_training_text(text: str, author_is_bot: bool) -> bool:
    """Whether a message may become training data: written by a person, not a command, not empty."""
    return not author_is_bot and not is_command(text) and bool(text.strip())


async def collect_message(services: Services, message: IncomingMessage) -> bool:
    """Keep a message seen in a channel, if the channel is opted in and its author did not opt out.

    Returns whether it was stored.
    """
    if not is_training_text(message.text, message.author_is_bot):
        return False

    def record() -> bool:
        with services.write_sessions.begin() as session:
            channel = find_channel(session, message.platform, message.workspace, message.channel)
            if channel is None or not channel.collecting:
                return False
            stored = messages.record_message(
                session, channel, message.message_id, message.author_id, message.text, message.created_at
            )
            return stored is not None

    where = f"{message.platform} {message.workspace}/{message.channel}"
    return await _apply(services, f"message {message.message_id} in {where}", record)


async def edit_message(
    services: Services, platform: str, workspace: str, channel: str, message_id: str, text: str
) -> bool:
    """Apply an edit made on the platform to a stored message. Returns whether one changed."""

    def edit() -> bool:
        with services.write_sessions.begin() as session:
            row = find_channel(session, platform, workspace, channel)
            return row is not None and messages.edit_message(session, row, message_id, text)

    return await _apply(services, f"edit of message {message_id} in {platform} {workspace}/{channel}", edit)


async def delete_message(
    services: Services, platform: str, workspace: str, channel: str, message_id: str
) -> bool:
    """Apply a delete made on the platform. Returns whether a stored message was deleted."""

    def delete() -> bool:
        with services.write_sessions.begin() as session:
            row = find_channel(session, platform, workspace, channel)
            return row is not None and messages.delete_message(session, row, message_id)

    return await _apply(
        services, f"delete of message {message_id} in {platform} {workspace}/{channel}", delete
    )


async def is_collecting(services: Services, platform: str, workspace: str, channel: str) -> bool:
    """Whether collection is on in a channel (unknown channels: off)."""

    def check() -> bool:
        with services.sessions() as session:
            row = find_channel(session, platform, workspace, channel)
            return bool(row is not None and row.collecting)

    return await services.run_db(check)


def record_history(services: Services, channel_id: int, batch: list[HistoryMessage]) -> int:
    """Keep past messages of a channel (a backfill), skipping those already stored. Returns how many were kept.

    Runs its own transaction; call it on the database threads.
    """
    kept = 0
    days = services.config.retention_days
    # Past the retention limit a message would only be deleted again, and retire the models that learn it.
    cutoff = utcnow() - timedelta(days=days) if days > 0 else None
    with services.write_sessions.begin() as session:
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
            if not is_training_text(past.text, past.author_is_bot) or past.message_id in known:
                continue
            if cutoff is not None and past.created_at < cutoff:
                continue
            stored = messages.record_message(
                session, channel, past.message_id, past.author_id, past.text, past.created_at
            )
            kept += stored is not None
    return kept
