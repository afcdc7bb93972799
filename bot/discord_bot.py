"""The Discord adapter: slash commands and message collection, translated to and from the command core.

The client owns its `app_commands.CommandTree` and syncs it in `setup_hook`. Every command answers the
interaction at once (a refusal, or `defer()`), then the core works on its threads and the answer comes as a
follow-up. Replies never ping: the client's `allowed_mentions` is none and the core neutralises mentions.
"""

from __future__ import annotations

import logging
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import discord

from bot.core.catalog import PUBLIC_COMMANDS
from bot.core.commands import CommandCore
from bot.core.errors import ConfigurationError
from bot.core.platform import ErrorReporter, ThrottledProgress
from bot.core.request import (
    ADMINISTRATOR,
    MANAGE_SERVER,
    ArgValue,
    IncomingMessage,
    Request,
)
from bot.core.runner import Adapter
from bot.core.services import Services
from bot.core.shutdown import RESTARTING, InFlight
from bot.discord_commands import ChatsmithTree
from bot.discord_platform import (
    DiscordConfig,
    InteractionReplies,
    channel_is_private,
    check_discord_config,
    history_reader,
    tell_privately,
)

log = logging.getLogger(__name__)


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
        self.error_reporter = ErrorReporter("discord")
        # Recent unexpected errors, newest last (operators and tests look here; the log has the detail).
        self.errors = self.error_reporter.errors
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
        tell = None if interaction is None else lambda text: tell_privately(interaction, text)
        await self.error_reporter.report(error, where, tell)

    # ------------------------------------------------------------------ commands

    async def run_command(
        self, interaction: discord.Interaction, command: str, args: dict[str, ArgValue | None] | None = None
    ) -> None:
        """Answer a slash command; once the bot is stopping, say so instead (`bot.core.shutdown`)."""
        await self.in_flight.answer(
            lambda: tell_privately(interaction, RESTARTING),
            lambda: self._run_command(interaction, command, args),
        )

    async def _run_command(
        self, interaction: discord.Interaction, command: str, args: dict[str, ArgValue | None] | None = None
    ) -> None:
        """Answer a slash command through the core: refuse at once, or defer and follow up."""
        if interaction.guild_id is None:
            await interaction.response.send_message("chatsmith works in server channels.", ephemeral=True)
            return
        replies = InteractionReplies(interaction)
        request = self._request(interaction, command, args or {}, replies.progress)
        refusal = self.core.admit(request)
        if refusal is not None:
            await interaction.response.send_message(refusal.text, ephemeral=True)
            return
        # Deferred privately even for the public commands: their answer may be an error ("no model answers
        # here yet", a refused prompt), and Discord keeps a deferred response as private or public as the
        # defer was. A public answer then comes as a message of its own.
        await interaction.response.defer(ephemeral=True, thinking=True)
        reply = await self.core.run(request)
        await replies.send(reply if command in PUBLIC_COMMANDS else replace(reply, ephemeral=True))

    def _request(
        self,
        interaction: discord.Interaction,
        command: str,
        args: dict[str, ArgValue | None],
        progress: ThrottledProgress,
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
        private = channel_is_private(channel, interaction.guild)
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
            channel_private=private,
            channel_privacy_unknown=private is None,
            history=history_reader(interaction),
            progress=progress,
        )

    # ------------------------------------------------------------------ collection

    async def on_message(self, message: discord.Message) -> None:
        if message.guild is None or message.author.bot or message.webhook_id is not None:
            return
        if message.type not in (discord.MessageType.default, discord.MessageType.reply):
            return
        if self._addressed_to_me(message):
            # Words said to the bot are commands, never training data (Slack's mentions are skipped too).
            await self._answer(message)
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
        private = channel_is_private(message.channel, message.guild)
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
            channel_private=private,
            channel_privacy_unknown=private is None,
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

    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        """A deleted channel stops feeding any model, and what models learned from it is taken back."""
        await self.core.channel_gone("discord", str(channel.guild.id), str(channel.id))

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


class ShardedChatsmithDiscordBot(ChatsmithDiscordBot, discord.AutoShardedClient):
    """chatsmith on Discord with automatic sharding, for bots in many servers."""


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
            shard_count=config.shard_count,
            shard_ids=list(config.shard_ids) or None,
            commands_record=config.commands_record,
        )
    return ChatsmithDiscordBot(
        core, guild_ready_timeout=guild_ready_timeout, commands_record=config.commands_record
    )


class _DiscordServer:
    """The Discord client as the shared runner (`bot.core.runner`) drives it."""

    def __init__(self, config: DiscordConfig, services: Services) -> None:
        self.token = check_discord_config(config)
        self.bot = build_discord_bot(config, services)
        self.in_flight = self.bot.in_flight

    async def serve(self) -> None:
        """`bot.start`, with Discord's refusals turned into one-line configuration errors."""
        try:
            await self.bot.start(self.token)
        except discord.LoginFailure:
            raise ConfigurationError(
                "Discord refused the token in DISCORD_TOKEN; copy it again from the developer portal"
            ) from None
        except discord.PrivilegedIntentsRequired:
            raise ConfigurationError(
                "the Message Content intent is not enabled: switch it on under Bot in the Discord developer "
                "portal"
            ) from None

    async def close(self) -> None:
        await self.bot.close()


ADAPTER = Adapter(config_type=DiscordConfig, check_config=check_discord_config, build_server=_DiscordServer)
