"""`collect` and `forget-me`: an admin opts a channel in or out; anyone deletes their data and opts out."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy.orm import Session

from bot.core.errors import CommandError
from bot.core.places import channel_label, channel_row
from bot.core.request import Reply, Request
from bot.core.safety import safe_reply
from bot.core.services import Services
from db import forgetting, jobs, messages
from db.forgetting import RetrainPlan, Withdrawal
from db.models import Channel
from db.scopes import Scope, get_or_create_workspace

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

    def apply() -> str:
        with services.write_sessions.begin() as session:
            channel = channel_row(session, request)
            label = channel_label(request)
            if state in ("share", "unshare"):
                channel.workspace_training = state == "share"
                if state == "unshare":
                    return (
                        f"{label} no longer trains the workspace model (from its next training on)."
                        + _private_rule(channel.private, label)
                    )
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
                "(anyone can remove theirs with `forget-me`). `train backfill:N` adds past messages."
                + _private_rule(private, label)
            )
        return f"Collection is off in {label}; its stored messages stay out of training until it is on again."

    return safe_reply(request, await services.run_db(apply), ephemeral=True)


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

    def forget() -> tuple[int, Withdrawal, RetrainPlan, dict[str, str]]:
        with services.write_sessions.begin() as session:
            workspace = get_or_create_workspace(
                session, request.platform, request.workspace, request.workspace_name or None
            )
            result = messages.forget_user(session, workspace.id, request.user)
            tainted = forgetting.versions_that_saw_author(session, workspace.id, request.user)
            withdrawal = forgetting.withdraw_versions(
                session,
                tainted,
                reason="its corpus held messages a member deleted with forget-me",
                affected_scopes=result.affected_scopes,
                bundle_exists=services.store.exists if services.store is not None else None,
            )
            plan = forgetting.plan_retraining(
                session, withdrawal, result.affected_scopes, services.config.min_training_messages
            )
            names = {s.scope_key: _scope_name(session, s) for s in plan.retrain + plan.too_small}
            names |= {key: _scope_name(session, Scope.from_key(key)) for key in withdrawal.fallbacks}
            return result.deleted_messages, withdrawal, plan, names

    deleted, withdrawal, plan, names = await services.run_db(forget)
    # Only after the commit: a bundle goes once no row can point a reader at it.
    await services.run_work(_delete_bundles, services, withdrawal.bundle_locations)
    for scope in plan.retrain:
        await services.run_db(
            jobs.request_training, services.engine, scope, "admin", f"forget-me:{request.user}"[:64]
        )
    text = (
        f"Deleted {deleted} of your messages in this workspace; nothing you write here will be "
        "collected from now on."
    )
    if withdrawal.versions:
        text += (
            f" {len(withdrawal.versions)} model version(s) that learned from them stopped answering at once "
            "and were deleted; they can never be restored."
        )
    for key, version in withdrawal.fallbacks.items():
        instead = f"its earlier v{version}" if version is not None else "the workspace or base model"
        text += f" {names[key]} now answers with {instead}."
    if withdrawal.requeued_jobs:
        text += f" {len(withdrawal.requeued_jobs)} training job(s) that had read them were stopped and queued again."
    if plan.retrain:
        text += f" Retraining queued for {_join(names[s.scope_key] for s in plan.retrain)}."
    if plan.too_small:
        text += (
            f" Too few messages are left to retrain {_join(names[s.scope_key] for s in plan.too_small)}; "
            "no model that saw yours answers there."
        )
    return safe_reply(request, text, ephemeral=True)


def _scope_name(session: Session, scope: Scope) -> str:
    if scope.channel_id is None:
        return "the workspace model"
    channel = session.get(Channel, scope.channel_id)
    return f"#{channel.name or channel.external_id}" if channel is not None else "a channel"


def _join(names: Iterable[str]) -> str:
    return ", ".join(names)


def _delete_bundles(services: Services, locations: list[str]) -> None:
    for location in locations:
        try:
            if services.store is not None:
                services.store.delete(location)
            else:
                forgetting.delete_bundle_directory(location)
        except Exception:
            # The row is withdrawn already, so nothing can load it again; the log names the failure.
            log.exception("could not delete a withdrawn bundle")
