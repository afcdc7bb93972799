"""`collect` and `forget-me`: an admin opts a channel in or out; anyone deletes their data and opts out."""

from __future__ import annotations

from bot.core.errors import CommandError
from bot.core.places import channel_label, channel_row
from bot.core.request import Reply, Request
from bot.core.safety import safe_reply
from bot.core.services import Services
from db import jobs, messages, registry
from db.scopes import Scope, get_or_create_workspace


async def collect(services: Services, request: Request) -> Reply:
    """`collect on|off` sets collection in the channel; plain `collect` says whether it is on."""
    state = str(request.args.get("state") or "").strip().lower()
    if state not in ("", "on", "off"):
        raise CommandError(f"Received `collect {state}`, expected `collect on` or `collect off`.")

    def apply() -> str:
        with services.write_sessions.begin() as session:
            channel = channel_row(session, request)
            label = channel_label(request)
            if state == "":
                return f"Collection in {label} is {'on' if channel.collecting else 'off'}."
            messages.set_collection(session, channel, state == "on", by=request.user[:64])
        if state == "on":
            return (
                f"Collection is on in {label}: messages posted from now on are kept for training "
                "(anyone can remove theirs with `forget-me`). `train backfill:N` adds past messages."
            )
        return f"Collection is off in {label}; its stored messages stay out of training until it is on again."

    return safe_reply(request, await services.run_db(apply), ephemeral=True)


async def forget_me(services: Services, request: Request) -> Reply:
    """Delete the caller's messages in the workspace, stop collecting theirs, and retrain what saw them."""

    def forget() -> tuple[int, list[Scope]]:
        with services.write_sessions.begin() as session:
            workspace = get_or_create_workspace(
                session, request.platform, request.workspace, request.workspace_name or None
            )
            result = messages.forget_user(session, workspace.id, request.user)
            # Only scopes with a model saw the messages; the rest have nothing to retrain.
            to_retrain = [s for s in result.affected_scopes if registry.list_versions(session, s)]
            return result.deleted_messages, to_retrain

    deleted, scopes = await services.run_db(forget)
    for scope in scopes:
        await services.run_db(
            jobs.request_training, services.engine, scope, "admin", f"forget-me:{request.user}"[:64]
        )
    retrain = f" {len(scopes)} model(s) that saw them will be retrained." if scopes else ""
    return safe_reply(
        request,
        f"Deleted {deleted} of your messages in this workspace; nothing you write here will be "
        f"collected from now on.{retrain}",
        ephemeral=True,
    )
