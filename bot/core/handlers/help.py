"""`help`: the list of commands."""

from __future__ import annotations

from bot.core.catalog import help_text
from bot.core.request import Reply, Request
from bot.core.safety import safe_reply
from bot.core.services import Services


async def help_command(services: Services, request: Request) -> Reply:
    """Every command with its usage, to the caller only."""
    return safe_reply(request, help_text(), ephemeral=True)
