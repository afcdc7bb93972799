"""Backfill: read a channel's past messages from the platform and keep them, reporting progress as it goes."""

from __future__ import annotations

from bot.core.collection import record_history
from bot.core.places import Place
from bot.core.request import HistoryMessage, Request
from bot.core.services import Services

# Messages stored per transaction during a backfill, and how often progress is reported.
BACKFILL_BATCH = 100


async def backfill(services: Services, request: Request, place: Place, limit: int) -> tuple[int, int]:
    """Read up to `limit` past messages of the request's channel and keep those that may be training data.

    Args:
        services: The services.
        request: A request whose adapter can read history (`request.history` is set).
        place: The request's channel, collecting.
        limit: Most past messages to read.

    Returns:
        How many messages were read, and how many new ones were kept.
    """
    assert request.history is not None
    read = kept = 0
    batch: list[HistoryMessage] = []

    async def flush() -> None:
        nonlocal kept
        kept += await services.run_db(record_history, services, place.channel_id, list(batch))
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
