"""How the Discord adapter answers an interaction (`bot.core.platform.Replies`): it was deferred privately,
so a private answer is a private follow-up, a public one a message of its own, and progress edits the
deferred response. Nothing ever pings (`allowed_mentions` none)."""

from __future__ import annotations

import io
import logging
from typing import Any

import discord

from bot.core.platform import Replies, ThrottledProgress, message_limit
from bot.core.request import Reply

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
