"""`imitate-me`: a member lets `/generate as:@member` write like them, or stops it."""

from __future__ import annotations

from bot.core.errors import CommandError
from bot.core.platform import member_id as member_id  # `generate as:@member` reads it here
from bot.core.request import Reply, Request
from bot.core.safety import safe_reply
from bot.core.services import Services
from db.imitation import may_imitate, set_imitation
from db.messages import is_opted_out
from db.scopes import find_scope

USAGE = "Use `imitate-me on` to let `generate as:@you` write like you here, or `imitate-me off` to stop it."


async def imitate_me(services: Services, request: Request) -> Reply:
    """Turn imitation of the caller on or off in this workspace (no argument: say which it is)."""
    state = str(request.args.get("state") or "").strip().lower()
    if state not in ("", "on", "off"):
        raise CommandError(f"Received `{state}`. {USAGE}")

    def apply() -> str:
        with services.sessions.begin() as session:
            if state == "":
                allowed = may_imitate(session, request.platform, request.workspace, request.user)
                return (
                    "Imitation of you is on here. " if allowed else "Imitation of you is off here. "
                ) + USAGE
            scope = find_scope(session, request.platform, request.workspace)
            if (
                state == "on"
                and scope is not None
                and is_opted_out(session, scope.workspace_id, request.user)
            ):
                return "You opted out here, so nothing of yours is kept and there is nothing to imitate."
            set_imitation(session, request.platform, request.workspace, request.user, state == "on")
            if state == "on":
                return (
                    "Imitation is on: `generate as:@you` now writes after your latest messages here. "
                    "`imitate-me off`, opting out or `forget-me` ends it at once."
                )
            return "Imitation is off: nobody can generate as you here."

    return safe_reply(request, await services.run_db(apply), ephemeral=True)
