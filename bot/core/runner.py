"""How every platform's bot runs: one runner for `chatsmith bot NAME`, whatever the platform.

An adapter module exposes `ADAPTER` (an `Adapter`): its config type, the check of that config, and how to
build its server. The server connects, serves and closes; the runner stops it cleanly on SIGTERM or SIGINT
(`bot.core.shutdown`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bot.core.collection import flush_pending
from bot.core.services import Services
from bot.core.shutdown import GRACE_SECONDS, InFlight, stop_signals, stopped_before_end


class PlatformServer(Protocol):
    """A connected adapter as the shared runner sees it."""

    in_flight: InFlight

    async def serve(self) -> None:
        """Connect and serve until `close` (or until the connection ends by itself)."""

    async def close(self) -> None:
        """Disconnect; `serve` returns soon after."""


@dataclass(frozen=True)
class Adapter:
    """What `chatsmith bot NAME` needs of an adapter module (its `ADAPTER`).

    Attributes:
        config_type: The adapter's config dataclass; each field `x` is the setting `<name>_x`.
        check_config: Raises `ConfigurationError` (one line naming the variable) when the config lacks
            what the adapter needs.
        build_server: Builds the unconnected server from the config and the services.
    """

    config_type: type[Any]
    check_config: Callable[[Any], object]
    build_server: Callable[[Any, Services], PlatformServer]


async def run_until_stopped(
    server: PlatformServer, services: Services, *, grace_seconds: float = GRACE_SECONDS
) -> None:
    """Serve until the connection ends, or until SIGTERM or SIGINT stops it cleanly: no new commands,
    running ones finish or are answered within `grace_seconds`, then the server closes and message events
    kept while the database was down get a last chance to be written.

    Raises:
        Whatever `server.serve` raised (a refused token is a `ConfigurationError`).
    """
    async with stop_signals() as stop:
        serving = asyncio.create_task(server.serve())
        try:
            if await stopped_before_end(serving, stop):
                await server.in_flight.drain(grace_seconds)
        finally:
            await server.close()
            await asyncio.wait({serving})
        serving.result()
    await flush_pending(services)


async def run_adapter(
    adapter: Adapter, config: Any, services: Services, *, grace_seconds: float = GRACE_SECONDS
) -> None:
    """Build `adapter`'s server on the running event loop (client libraries bind to it) and run it
    with `run_until_stopped`: how `chatsmith bot NAME` runs every platform.

    Raises:
        ConfigurationError: The config lacks what the adapter needs, or the platform refused it.
    """
    await run_until_stopped(adapter.build_server(config, services), services, grace_seconds=grace_seconds)
