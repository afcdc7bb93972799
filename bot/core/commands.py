"""The command core: admission and dispatch of every chat command, and the message events adapters forward.

Adapters translate platform events into requests and render replies; nothing here knows Discord or
Slack. Each command is declared once in `bot.core.catalog` (its handler, in `bot.core.handlers`, its rights,
its cooldown, whether its answer is public). Database work runs on
the services' database threads and generation on the generation pool, so the event loop of the adapter
only ever awaits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from bot.core import collection, withdrawals
from bot.core.catalog import COMMANDS, COOLDOWN_COMMANDS
from bot.core.command_spec import Handler
from bot.core.cooldowns import Cooldowns, describe_wait
from bot.core.errors import user_message
from bot.core.request import IncomingMessage, Reply, Request
from bot.core.safety import safe_reply
from bot.core.services import Services


class CommandCore:
    """Runs commands for every adapter.

    Args:
        services: Database, models, worker pools and configuration.
        clock: Monotonic clock for cooldowns (tests pass a fake one).

    Raises:
        ValueError: The configuration sets a cooldown for a command not declared with one.
    """

    def __init__(self, services: Services, clock: Callable[[], float] = time.monotonic) -> None:
        self.services = services
        self.config = services.config
        undeclared = sorted(set(self.config.cooldowns) - COOLDOWN_COMMANDS)
        if undeclared:
            # A rule nobody applies would look like a limit that holds; say so at start instead.
            raise ValueError(f"cooldowns set for commands declared without one: {', '.join(undeclared)}")
        self.cooldowns = Cooldowns(self.config.cooldowns, clock)
        self._handlers: dict[str, Handler] = {name: spec.handler for name, spec in COMMANDS.items()}

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
        spec = COMMANDS.get(request.command)
        if spec is None:
            return safe_reply(
                request, f"Unknown command `{request.command}`. Try `help` for the list.", ephemeral=True
            )
        if spec.admin and not request.is_admin:
            who = (
                "start the console with `--admin`"
                if request.platform == "console"
                else "administrator or manage-server rights, or a configured admin role or user id"
            )
            return safe_reply(request, f"`{request.command}` is for admins ({who}).", ephemeral=True)
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
        """Run an admitted command (see `admit`). Only a command declared public answers the whole
        channel; every other answer is for the caller alone."""
        try:
            reply = await self._handlers[request.command](self.services, request)
        except Exception as error:
            message = user_message(error)
            if message is None:
                raise
            return safe_reply(request, message, ephemeral=True)
        if not COMMANDS[request.command].public and not reply.ephemeral:
            return replace(reply, ephemeral=True)
        return reply

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

    async def channel_gone(self, platform: str, workspace: str, channel: str) -> bool:
        """The channel was deleted or the bot left it: stop collecting and withdraw what models learned
        from it outside its own (`bot.core.withdrawals.channel_gone`). Returns whether it was known."""
        return await self.services.run_db(
            withdrawals.channel_gone, self.services, platform, workspace, channel
        )

    async def is_collecting(self, platform: str, workspace: str, channel: str) -> bool:
        """Whether collection is on in a channel (unknown channels: off)."""
        return await collection.is_collecting(self.services, platform, workspace, channel)
