"""`my-data`: a member gets, privately, a file of everything collected from them in this workspace."""

from __future__ import annotations

import json

from bot.core.request import Reply, Request
from bot.core.safety import safe_reply
from bot.core.services import Services
from db.member_data import member_data
from db.models import Workspace, utcnow
from db.scopes import find_scope


async def my_data(services: Services, request: Request) -> Reply:
    """A JSON file of the caller's stored messages, their consent, and the models that learned from them.

    Only the caller sees the reply (ephemeral on Discord, a direct message on Slack).
    """

    def gather() -> bytes | None:
        with services.sessions() as session:
            scope = find_scope(session, request.platform, request.workspace)
            if scope is None:
                return None
            workspace = session.get(Workspace, scope.workspace_id)
            name = (workspace.name if workspace else "") or request.workspace_name or request.workspace
            data = member_data(session, scope.workspace_id, name, request.user, utcnow())
        return json.dumps(data.as_json_ready(), ensure_ascii=False, indent=2).encode("utf-8")

    content = await services.run_db(gather)
    if content is None:
        return safe_reply(
            request, "Nothing has been collected in this workspace, from you or anyone.", ephemeral=True
        )
    count = json.loads(content)["message_count"]
    return safe_reply(
        request,
        f"Everything chatsmith keeps about you in this workspace: {count} message(s), your choices, and the "
        "models that learned from you. `forget-me` deletes it all and takes it out of the models.",
        ephemeral=True,
        file=content,
        # Dated, so that a second export does not overwrite the first where files are saved by name.
        filename=f"chatsmith-my-data-{utcnow():%Y%m%d-%H%M%S}.json",
    )
