"""`collect` and `forget-me`: an admin opts a channel in or out; anyone deletes their data and opts out."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from bot.core.errors import CommandError
from bot.core.places import channel_label, channel_row
from bot.core.request import Reply, Request
from bot.core.safety import safe_reply
from bot.core.services import Services
from bot.core.withdrawals import Outcome, delete_bundles, withdraw, withdraw_channel
from db import forgetting, jobs, messages
from db.imitation import forget_imitation
from db.member_data import channels_written_in
from db.models import Channel
from db.scopes import get_or_create_workspace

log = logging.getLogger(__name__)


async def collect(services: Services, request: Request) -> Reply:
    """`collect on|off` sets collection in the channel; plain `collect` says whether it is on.

    `collect share` lets a private channel's messages train the workspace model, which answers in every
    channel; `collect unshare` takes that back. Without it a private channel trains only its own model.
    """
    state = str(request.args.get("state") or "").strip().lower()
    if state not in ("", "on", "off", "share", "unshare"):
        raise CommandError(
            f"Received `collect {state}`, expected `collect on`, `collect off`, `collect share` or "
            "`collect unshare`."
        )
    if state == "on" and request.channel_privacy_unknown:
        raise CommandError(
            f"Collection stays off in {channel_label(request)}: I cannot tell whether it is private. Invite "
            "the bot to the channel (or let it see the channel), or try again in a minute."
        )

    def apply() -> str:
        with services.write_sessions.begin() as session:
            channel = channel_row(session, request, services)
            label = channel_label(request)
            if state == "unshare":
                return _unshare(session, services, channel, label)
            if state == "share":
                channel.workspace_training = True
                return (
                    f"{label} now trains the workspace model too, which answers in every channel of this "
                    "workspace: what is said here can show up in replies anywhere. `collect unshare` "
                    "takes that back."
                )
            if state == "":
                return f"Collection in {label} is {'on' if channel.collecting else 'off'}." + _private_rule(
                    channel.private and not channel.workspace_training, label
                )
            messages.set_collection(session, channel, state == "on", by=request.user[:64])
            private = channel.private and not channel.workspace_training
        if state == "on":
            return (
                f"Collection is on in {label}: messages posted from now on are kept for training "
                "(anyone can remove theirs with `forget-me`)."
                + (" `train backfill:N` adds past messages." if request.history is not None else "")
                + _private_rule(private, label)
            )
        return f"Collection is off in {label}; its stored messages stay out of training until it is on again."

    return safe_reply(request, await services.run_db(apply), ephemeral=True)


def _unshare(session: Session, services: Services, channel: Channel, label: str) -> str:
    """Stop a private channel feeding the workspace's models, and take back what they learned from it."""
    if not channel.private:
        return (
            f"{label} is public: its messages train the workspace model while collection is on here. "
            "`collect off` stops that; `collect unshare` applies to private channels."
        )
    if not channel.workspace_training:
        return f"{label} is not shared with the workspace model." + _private_rule(True, label)
    channel.workspace_training = False
    session.flush()
    outcome = withdraw_channel(session, services, channel, why=f"{label} was unshared")
    return (
        f"{label} no longer trains the workspace model."
        + outcome.describe().replace("learned from them", f"learned from {label}")
        + _private_rule(True, label)
    )


def _private_rule(private: bool, label: str) -> str:
    if not private:
        return ""
    return (
        f" {label} is private: its messages train only its own model, which answers only here, never the "
        "workspace model (`collect share` would change that)."
    )


async def forget_me(services: Services, request: Request) -> Reply:
    """Delete the caller's messages in the workspace, stop collecting theirs, and take them out of the models.

    Every model version that learned from them (directly or through the model it was fine-tuned from) stops
    serving at once and its bundle is deleted; each scope falls back to its newest clean version, the
    workspace model or the base model; running training jobs that may have read them start again; and the
    scopes that can be retrained are queued (`db.forgetting`).
    """

    def forget() -> tuple[int, Outcome]:
        with services.write_sessions.begin() as session:
            workspace = get_or_create_workspace(
                session, request.platform, request.workspace, request.workspace_name or None
            )
            # Where they wrote, before their messages go: the reply names no other private channel.
            written_in = channels_written_in(session, workspace.id, request.user)
            result = messages.forget_user(session, workspace.id, request.user)
            # Nothing of theirs stays, their consent to be imitated included.
            forget_imitation(session, workspace.id, request.user)
            outcome = withdraw(
                session,
                services,
                forgetting.versions_that_saw_author(session, workspace.id, request.user),
                reason="its corpus held messages a member deleted with forget-me",
                affected_scopes=result.affected_scopes,
                visible_channels=written_in,
            )
            return result.deleted_messages, outcome

    deleted, outcome = await services.run_db(forget)
    # Only after the commit: a bundle goes once no row can point a reader at it.
    await services.run_work(delete_bundles, services, outcome.withdrawal.bundle_locations)
    for scope in outcome.plan.retrain:
        await services.run_db(
            jobs.request_training, services.engine, scope, "admin", f"forget-me:{request.user}"[:64]
        )
    text = (
        f"Deleted {deleted} of your messages in this workspace (this cannot be undone); nothing you write "
        "here will be collected from now on." + outcome.describe()
    )
    return safe_reply(request, text, ephemeral=True)
