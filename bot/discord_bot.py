"""The Discord adapter: slash commands and message collection, translated to and from the command core.

The client owns its `app_commands.CommandTree`, built from the command declarations by
`bot.discord_commands`, and syncs it in `setup_hook` when it changed. Every command answers the
interaction at once (a refusal, or `defer()`), then the core works on its threads and the answer comes as a
follow-up. Replies never ping: the client's `allowed_mentions` is none and the core neutralises mentions.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import sys
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import discord

from bot.core.catalog import PUBLIC_COMMANDS
from bot.core.collection import flush_pending
from bot.core.commands import CommandCore
from bot.core.errors import CommandError, ConfigurationError
from bot.core.request import (
    ADMINISTRATOR,
    MANAGE_SERVER,
    ArgValue,
    HistoryMessage,
    IncomingMessage,
    Reply,
    Request,
)
from bot.core.services import Services
from bot.core.shutdown import GRACE_SECONDS, RESTARTING, InFlight, stop_signals, stopped_before_end
from bot.discord_commands import ChatsmithTree

log = logging.getLogger(__name__)

# At most one progress edit per this many seconds (Discord rate-limits message edits).
PROGRESS_INTERVAL_S = 1.0
ERROR_REPLY = "Something went wrong on my side; the error was logged."


@dataclass(frozen=True)
class DiscordConfig:
    """The Discord bot's settings, a plain copy the composition root makes.

    Attributes:
        token: The bot token; "" when none is configured. Never shown in a repr.
        sharded: Run an AutoShardedClient (many servers).
        shard_count: Shards in all; None: Discord's recommendation.
        shard_ids: The shards this process runs; empty: all of them.
        commands_record: The file that remembers the last command sync, so that an unchanged command
            tree is not synced again; None: sync at every start.
    """

    token: str = field(default="", repr=False)
    sharded: bool = False
    shard_count: int | None = None
    shard_ids: tuple[int, ...] = ()
    commands_record: Path | None = None


class ChatsmithDiscordBot(discord.Client):
    """chatsmith on Discord.

    Args:
        core: The command core.
        guild_ready_timeout: Seconds to wait for guilds at start (discord.py's option).
        commands_record: Where the last command sync is remembered (`DiscordConfig.commands_record`).
        options: Passed to `discord.Client` (for example `shard_count` on the sharded variant).
    """

    def __init__(
        self,
        core: CommandCore,
        *,
        guild_ready_timeout: float = 2.0,
        commands_record: Path | None = None,
        **options: Any,
    ) -> None:
        intents = discord.Intents.default()
        # Message content is needed to collect what people write in opted-in channels (privileged intent:
        # switch it on in the developer portal). The members intent is not needed.
        intents.message_content = True
        intents.members = False
        super().__init__(
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=guild_ready_timeout,
            **options,
        )
        self.core = core
        self.tree = ChatsmithTree(self, self.run_command, self.report_error)
        # Recent unexpected errors, newest last (operators and tests look here; the log has the detail).
        self.errors: deque[BaseException] = deque(maxlen=50)
        # Interactions being answered, so that a stop can let them finish or tell them (SIGTERM).
        self.in_flight = InFlight()
        self.commands_record = commands_record

    async def setup_hook(self) -> None:
        await self.tree.sync_if_changed(self.application_id, self.commands_record)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        error = sys.exc_info()[1]
        if error is not None:
            await self.report_error(error, None, where=event_method)

    async def report_error(
        self, error: BaseException, interaction: discord.Interaction | None, where: str = "command"
    ) -> None:
        """Log an unexpected error and, for a command, tell the caller in one line. Never raises."""
        self.errors.append(error)
        log.error("discord %s failed", where, exc_info=error)
        if interaction is None:
            return
        try:
            if interaction.response.is_done():
                await interaction.followup.send(ERROR_REPLY, ephemeral=True)
            else:
                await interaction.response.send_message(ERROR_REPLY, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not tell the caller about the error", exc_info=True)

    # ------------------------------------------------------------------ commands

    async def run_command(
        self, interaction: discord.Interaction, command: str, args: dict[str, ArgValue | None] | None = None
    ) -> None:
        """Answer a slash command; once the bot is stopping, say so instead (`bot.core.shutdown`)."""
        if not self.in_flight.accepting:
            await interaction.response.send_message(RESTARTING, ephemeral=True)
            return
        with self.in_flight.track(lambda: _answer_cut_off(interaction)):
            await self._run_command(interaction, command, args)

    async def _run_command(
        self, interaction: discord.Interaction, command: str, args: dict[str, ArgValue | None] | None = None
    ) -> None:
        """Answer a slash command through the core: refuse at once, or defer and follow up."""
        if interaction.guild_id is None:
            await interaction.response.send_message("chatsmith works in server channels.", ephemeral=True)
            return
        reporter = _ProgressEditor(interaction)
        request = self._request(interaction, command, args or {}, reporter)
        refusal = self.core.admit(request)
        if refusal is not None:
            await interaction.response.send_message(refusal.text, ephemeral=True)
            return
        # Deferred privately even for the public commands: their answer may be an error ("no model answers
        # here yet", a refused prompt), and Discord keeps a deferred response as private or public as the
        # defer was. A public answer then comes as a message of its own.
        await interaction.response.defer(ephemeral=True, thinking=True)
        reply = await self.core.run(request)
        if reply.ephemeral or command not in PUBLIC_COMMANDS:
            await self._follow_up(interaction, replace(reply, ephemeral=True))
            return
        await self._post_publicly(interaction, reply)

    def _request(
        self,
        interaction: discord.Interaction,
        command: str,
        args: dict[str, ArgValue | None],
        reporter: _ProgressEditor,
    ) -> Request:
        permissions: set[str] = set()
        # Missing data (a partial member) leaves the set empty: deny by default.
        resolved = interaction.permissions
        if resolved.administrator:
            permissions.add(ADMINISTRATOR)
        if resolved.manage_guild:
            permissions.add(MANAGE_SERVER)
        roles: tuple[str, ...] = ()
        if isinstance(interaction.user, discord.Member):
            # Ids, never names: anyone who may create roles can give one any name.
            roles = tuple(str(role.id) for role in interaction.user.roles)
        channel = interaction.channel
        return Request(
            platform="discord",
            workspace=str(interaction.guild_id),
            channel=str(interaction.channel_id),
            user=str(interaction.user.id),
            command=command,
            args={key: value for key, value in args.items() if value is not None},
            permissions=frozenset(permissions),
            roles=roles,
            policy=self.core.config.policy,
            workspace_name=interaction.guild.name if interaction.guild else "",
            channel_name=getattr(channel, "name", None) or "",
            channel_private=_is_private(channel, interaction.guild),
            history=self._history_reader(interaction),
            progress=reporter,
        )

    def _history_reader(self, interaction: discord.Interaction) -> Any:
        async def read(limit: int) -> AsyncIterator[HistoryMessage]:
            channel: Any = interaction.channel
            if not isinstance(channel, discord.abc.Messageable):
                channel = await self.fetch_channel(interaction.channel_id or 0)
            if not isinstance(channel, discord.abc.Messageable):
                raise CommandError("This channel's history cannot be read; run `train` without backfill.")
            async for message in channel.history(limit=limit):
                yield HistoryMessage(
                    message_id=str(message.id),
                    author_id=str(message.author.id),
                    text=message.content,
                    created_at=message.created_at,
                    author_is_bot=message.author.bot or message.webhook_id is not None,
                )

        return read

    async def _post_publicly(self, interaction: discord.Interaction, reply: Reply) -> None:
        """Post `reply` for the whole channel after a private defer, and remove the private placeholder.

        The first follow-up after a defer only edits the deferred response (keeping it private); once that
        response is edited, a follow-up is a new message with its own visibility.
        """
        await interaction.edit_original_response(content="Posted.")
        await self._follow_up(interaction, reply)
        try:
            await interaction.delete_original_response()
        except discord.HTTPException:
            log.warning("could not remove the private placeholder", exc_info=True)

    async def _follow_up(self, interaction: discord.Interaction, reply: Reply) -> None:
        options: dict[str, Any] = {
            "ephemeral": reply.ephemeral,
            "allowed_mentions": discord.AllowedMentions.none(),
        }
        if reply.file is not None:
            options["file"] = discord.File(io.BytesIO(reply.file), reply.filename or "attachment.png")
        await interaction.followup.send(reply.text, **options)

    # ------------------------------------------------------------------ collection

    async def on_message(self, message: discord.Message) -> None:
        if message.guild is None or message.author.bot or message.webhook_id is not None:
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        await self.core.collect_message(
            IncomingMessage(
                platform="discord",
                workspace=str(message.guild.id),
                channel=str(message.channel.id),
                message_id=str(message.id),
                author_id=str(message.author.id),
                text=message.content,
                created_at=message.created_at,
                author_is_bot=message.author.bot,
            )
        )
        if self._addressed_to_me(message):
            await self._answer(message)

    def _addressed_to_me(self, message: discord.Message) -> bool:
        """Whether a message mentions the bot or replies to one of its messages."""
        me = self.user
        if me is None:
            return False
        if any(user.id == me.id for user in message.mentions):
            return True
        resolved = message.reference.resolved if message.reference is not None else None
        return isinstance(resolved, discord.Message) and resolved.author.id == me.id

    async def _answer(self, message: discord.Message) -> None:
        """Reply to a message addressed to the bot with the conversation's next message (`generate`
        without a prompt). Refusals (cooldowns, no model yet) are private by nature, and a channel
        message has no private answer: they are logged, not posted."""
        assert message.guild is not None and self.user is not None
        said = re.sub(rf"<@!?{self.user.id}>", "", message.content).strip()
        request = Request(
            platform="discord",
            workspace=str(message.guild.id),
            channel=str(message.channel.id),
            user=str(message.author.id),
            command="generate",
            args={"reply_to": said} if said else {},
            policy=self.core.config.policy,
            workspace_name=message.guild.name,
            channel_name=getattr(message.channel, "name", None) or "",
            channel_private=_is_private(message.channel, message.guild),
        )
        reply = await self.core.handle(request)
        if reply.ephemeral:
            log.info("mention in %s/%s not answered: %s", request.workspace, request.channel, reply.text)
            return
        await message.reply(reply.text, allowed_mentions=discord.AllowedMentions.none(), mention_author=False)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        content = payload.data.get("content")
        if payload.guild_id is None or content is None:  # embed-only updates carry no new text
            return
        await self.core.edit_message(
            "discord", str(payload.guild_id), str(payload.channel_id), str(payload.message_id), content
        )

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if payload.guild_id is None:
            return
        await self.core.delete_message(
            "discord", str(payload.guild_id), str(payload.channel_id), str(payload.message_id)
        )

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        if payload.guild_id is None:
            return
        for message_id in payload.message_ids:
            await self.core.delete_message(
                "discord", str(payload.guild_id), str(payload.channel_id), str(message_id)
            )


def _is_private(channel: Any, guild: discord.Guild | None) -> bool | None:
    """Whether @everyone cannot read the channel (a private thread always counts); None: unknown."""
    if isinstance(channel, discord.Thread):
        if channel.type == discord.ChannelType.private_thread:
            return True
        channel = channel.parent
    if guild is None or not isinstance(channel, discord.abc.GuildChannel):
        return None
    return not channel.permissions_for(guild.default_role).view_channel


async def _answer_cut_off(interaction: discord.Interaction) -> None:
    """Tell the caller of an interaction the stop cut off that the bot is restarting."""
    if interaction.response.is_done():
        await interaction.followup.send(RESTARTING, ephemeral=True)
    else:
        await interaction.response.send_message(RESTARTING, ephemeral=True)


class ShardedChatsmithDiscordBot(ChatsmithDiscordBot, discord.AutoShardedClient):
    """chatsmith on Discord with automatic sharding, for bots in many servers."""


class _ProgressEditor:
    """Shows progress by editing the deferred reply, at most once per `PROGRESS_INTERVAL_S`."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction
        self._last = 0.0

    async def __call__(self, text: str) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_INTERVAL_S:
            return
        self._last = now
        try:
            await self.interaction.edit_original_response(content=text[:2000])
        except discord.HTTPException:
            log.warning("progress edit failed", exc_info=True)


def build_discord_bot(
    config: DiscordConfig,
    services: Services,
    *,
    core: CommandCore | None = None,
    guild_ready_timeout: float = 2.0,
) -> ChatsmithDiscordBot:
    """An unstarted Discord client for chatsmith; start it with `await bot.start(token)`.

    Args:
        config: Sharding options (`sharded`, `shard_count`, `shard_ids`).
        services: Shared services.
        core: A command core to use (default: a new one on `services`).
        guild_ready_timeout: Seconds to wait for guild data at start.
    """
    core = core or CommandCore(services)
    if config.sharded:
        # Several processes split the shards between them: each runs its own shard ids of one total.
        return ShardedChatsmithDiscordBot(
            core,
            guild_ready_timeout=guild_ready_timeout,
            commands_record=config.commands_record,
            shard_count=config.shard_count,
            shard_ids=list(config.shard_ids) or None,
        )
    return ChatsmithDiscordBot(
        core, guild_ready_timeout=guild_ready_timeout, commands_record=config.commands_record
    )


def check_discord_config(config: DiscordConfig) -> str:
    """The Discord token, or a one-line error naming the variable to set.

    Raises:
        ConfigurationError: No token is configured.
    """
    token = config.token.strip()
    if not token:
        raise ConfigurationError(
            "no Discord token: set DISCORD_TOKEN (or CHATSMITH_DISCORD_TOKEN) to the bot token from the "
            "Discord developer portal"
        )
    return token


async def run_discord_bot(
    config: DiscordConfig, services: Services, *, grace_seconds: float = GRACE_SECONDS
) -> None:
    """Run the Discord bot until it is closed, or until SIGTERM or SIGINT stops it cleanly: no new
    commands, running ones finish or are answered within `grace_seconds`, then the client closes and
    message events kept while the database was down get a last chance to be written.

    Raises:
        ConfigurationError: The token is missing or Discord refused it, or the message content intent is
            not enabled for the application.
    """
    token = check_discord_config(config)
    bot = build_discord_bot(config, services)
    async with bot, stop_signals() as stop:
        client = asyncio.create_task(_start(bot, token))
        if await stopped_before_end(client, stop):
            await bot.in_flight.drain(grace_seconds)
            await bot.close()
        await client
    await flush_pending(services)


async def _start(bot: ChatsmithDiscordBot, token: str) -> None:
    """`bot.start`, with Discord's refusals turned into one-line configuration errors."""
    try:
        await bot.start(token)
    except discord.LoginFailure:
        raise ConfigurationError(
            "Discord refused the token in DISCORD_TOKEN; copy it again from the developer portal"
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigurationError(
            "the Message Content intent is not enabled: switch it on under Bot in the Discord developer portal"
        ) from None
