"""Discord's side of the platform contract (`bot.core.platform`): its settings, how an interaction is
answered, the privacy lookup, and the history reader; the client itself is `bot.discord_bot`.

An interaction is deferred privately, so a private answer is a private follow-up, a public one a message of
its own, and progress edits the deferred response. Nothing ever pings (`allowed_mentions` none).
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord

from bot.core.errors import CommandError, ConfigurationError
from bot.core.platform import Replies, ThrottledProgress, message_limit
from bot.core.request import HistoryMessage, HistoryReader, Reply

log = logging.getLogger(__name__)

DISCORD_LIMIT = message_limit("discord")


class InteractionReplies(Replies):
    """Answers to one interaction: private follow-ups, public messages, progress by editing the deferral."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction
        self.progress = ThrottledProgress(self._edit, DISCORD_LIMIT)

    async def _edit(self, text: str) -> None:
        await self.interaction.edit_original_response(content=text)

    async def private(self, reply: Reply) -> None:
        await self._follow_up(reply, ephemeral=True)

    async def public(self, reply: Reply) -> None:
        """Post for the whole channel after the private defer, and remove the private placeholder.

        The first follow-up after a defer only edits the deferred response (keeping it private); once that
        response is edited, a follow-up is a new message with its own visibility.
        """
        await self.interaction.edit_original_response(content="Posted.")
        await self._follow_up(reply, ephemeral=False)
        try:
            await self.interaction.delete_original_response()
        except discord.HTTPException:
            log.warning("could not remove the private placeholder", exc_info=True)

    async def _follow_up(self, reply: Reply, *, ephemeral: bool) -> None:
        options: dict[str, Any] = {"ephemeral": ephemeral, "allowed_mentions": discord.AllowedMentions.none()}
        if reply.file is not None:
            options["file"] = discord.File(io.BytesIO(reply.file), reply.filename or "attachment.png")
        await self.interaction.followup.send(reply.text, **options)


@dataclass(frozen=True)
class DiscordConfig:
    """The Discord bot's settings, a plain copy the composition root makes.

    Attributes:
        token: The bot token; "" when none is configured. Never shown in a repr.
        sharded: Run an AutoShardedClient (many servers).
        shard_count: Shards in all; None: Discord's recommendation.
        shard_ids: The shards this process runs; empty: all of them.
        data_dir: chatsmith's data directory, where the last command sync is remembered
            (`commands_record`); None: sync at every start.
    """

    token: str = field(default="", repr=False)
    sharded: bool = False
    shard_count: int | None = None
    shard_ids: tuple[int, ...] = ()
    data_dir: Path | None = None

    @property
    def commands_record(self) -> Path | None:
        """The file that remembers the last command sync, so that an unchanged tree is not synced again."""
        return self.data_dir / "discord-commands.json" if self.data_dir is not None else None


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


def channel_is_private(channel: Any, guild: discord.Guild | None) -> bool | None:
    """Whether @everyone cannot read the channel (a private thread and a direct message always count);
    None when Discord's cache cannot tell (an uncached or partial channel), which counts as private."""
    if isinstance(channel, discord.DMChannel | discord.GroupChannel):
        return True
    if isinstance(channel, discord.Thread):
        if channel.type == discord.ChannelType.private_thread:
            return True
        channel = channel.parent
    if guild is None or not isinstance(channel, discord.abc.GuildChannel):
        return None
    return not channel.permissions_for(guild.default_role).view_channel


async def tell_privately(interaction: discord.Interaction, text: str) -> None:
    """Tell the caller of an interaction one line, whether or not it was answered already."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)


def history_reader(interaction: discord.Interaction) -> HistoryReader:
    """Reads past messages of the interaction's channel, newest first, for `train backfill:N`."""

    async def read(limit: int) -> AsyncIterator[HistoryMessage]:
        channel: Any = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            channel = await interaction.client.fetch_channel(interaction.channel_id or 0)
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
