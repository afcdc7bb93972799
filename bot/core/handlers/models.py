"""`models` and `rollback`: the model versions of a channel or workspace, and serving the previous good one."""

from __future__ import annotations

from bot.core.arguments import scope_arg
from bot.core.errors import CommandError
from bot.core.formatting import describe_version
from bot.core.places import channel_label, find_place
from bot.core.request import Reply, Request
from bot.core.safety import safe_reply
from bot.core.services import Services
from db import registry
from db.models import utcnow


async def models(services: Services, request: Request) -> Reply:
    """The ten newest versions of the scope's model, with their state and scores."""
    scope_name = scope_arg(request.args)

    def listing() -> str:
        now = utcnow()
        with services.sessions() as session:
            place = find_place(session, request)
            if place is None:
                return f"No models for {channel_label(request)} yet."
            scope = place.scope(scope_name)
            where = place.channel_label if scope_name == "channel" else "the workspace"
            versions = registry.list_versions(session, scope)[:10]
            if not versions:
                return f"No model versions for {where} yet."
            lines = [f"Model versions for {where}, newest first:"]
            lines += [f"• v{v.version} {v.status}: {describe_version(v, now)}" for v in versions]
            return "\n".join(lines)

    return safe_reply(request, await services.run_db(listing), ephemeral=True)


async def rollback(services: Services, request: Request) -> Reply:
    """Serve the scope's previous good version again."""
    scope_name = scope_arg(request.args)

    def roll_back() -> str:
        with services.write_sessions.begin() as session:
            place = find_place(session, request)
            if place is None:
                raise CommandError(f"No models for {channel_label(request)} yet; nothing to roll back.")
            scope = place.scope(scope_name)
            where = place.channel_label if scope_name == "channel" else "the workspace"
            previous = registry.active_version(session, scope)
            now_active = registry.rollback(session, scope)
            was = f" (v{previous.version} set aside)" if previous is not None else ""
            return f"Rolled {where} back to model v{now_active.version}{was}."

    return safe_reply(request, await services.run_db(roll_back), ephemeral=True)
