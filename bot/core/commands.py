"""The command core: admission and dispatch of every chat command, and the message events adapters forward.

Adapters translate platform events into requests and render replies; nothing here knows Discord or
Slack. The commands themselves live in `bot.core.handlers`, one module per family. Database work runs on
the services' database threads and generation on the generation pool, so the event loop of the adapter
only ever awaits.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from bot.core import collection
from bot.core.catalog import COMMANDS
from bot.core.cooldowns import Cooldowns, describe_wait
from bot.core.errors import user_message
from bot.core.handlers import consent, generate, models, status, train
from bot.core.handlers.filter import filter_command
from bot.core.handlers.help import help_command
from bot.core.handlers.imitate import imitate_me
from bot.core.handlers.my_data import my_data
from bot.core.request import IncomingMessage, Reply, Request
from bot.core.safety import safe_reply
from bot.core.services import Services

Handler = Callable[[Services, Request], Awaitable[Reply]]


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
        self._handlers: dict[str, Handler] = {
            "generate": generate.generate,
            "train": train.train,
            "status": status.status,
            "models": models.models,
            "rollback": models.rollback,
            "collect": consent.collect,
            "forget-me": consent.forget_me,
            "stats": status.stats,
            "help": help_command,
            "filter": filter_command,
            "imitate-me": imitate_me,
            "my-data": my_data,
        }

    # ------------------------------------------------------------------ commands

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
            return safe_reply(
                request, f"Unknown command `{request.command}`. Try `help` for the list.", ephemeral=True
            )
        if info.admin and not request.is_admin:
            return safe_reply(
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
            return safe_reply(
                request, f"Slow down: try `{request.command}` again in {describe_wait(wait)}.", ephemeral=True
            )
        return None

    async def run(self, request: Request) -> Reply:
        """Run an admitted command (see `admit`)."""
        try:
            return await self._handlers[request.command](self.services, request)
        except Exception as error:
            message = user_message(error)
            if message is None:
                raise
            return safe_reply(request, message, ephemeral=True)

    # ------------------------------------------------------------------ message events (`bot.core.collection`)

    async def collect_message(self, message: IncomingMessage) -> bool:
        """Keep a message seen in a channel, if the channel is opted in and its author did not opt out.

        Bot messages and commands to the bot are not kept: they are never training data.
        Returns whether it was stored.
        """
        return await collection.collect_message(self.services, message)

    async def edit_message(
        self, platform: str, workspace: str, channel: str, message_id: str, text: str
    ) -> bool:
        """Apply an edit made on the platform to a stored message. Returns whether one changed."""
        return await collection.edit_message(self.services, platform, workspace, channel, message_id, text)

    async def delete_message(self, platform: str, workspace: str, channel: str, message_id: str) -> bool:
        """Apply a delete made on the platform. Returns whether a stored message was deleted."""
        return await collection.delete_message(self.services, platform, workspace, channel, message_id)

    async def is_collecting(self, platform: str, workspace: str, channel: str) -> bool:
        """Whether collection is on in a channel (unknown channels: off)."""
        return await collection.is_collecting(self.services, platform, workspace, channel)
