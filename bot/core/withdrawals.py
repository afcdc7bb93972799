"""Taking back what models learned: the bot's side of `db.forgetting`, shared by every door that withdraws.

`forget-me` takes a member's messages back; `collect unshare`, a channel turned private, and a channel
deleted or left take a channel's messages back from the workspace's models. Each withdraws the versions
in one transaction, then, once that committed, deletes their bundles and queues the retrains, so that no
row can point a reader at a bundle being deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.orm import Session

from bot.core.services import Services
from db import forgetting, jobs
from db.forgetting import RetrainPlan, Withdrawal
from db.member_data import channel_label_for_member
from db.models import Channel
from db.scopes import Scope

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """A withdrawal, the retrains it calls for, and how replies name the scopes involved."""

    withdrawal: Withdrawal
    plan: RetrainPlan
    names: dict[str, str]

    def describe(self) -> str:
        """What changed, in sentences for the reply: versions withdrawn, what answers instead, retrains."""
        text = ""
        if self.withdrawal.versions:
            text += (
                f" {len(self.withdrawal.versions)} model version(s) that learned from them stopped answering "
                "at once and were deleted; they can never be restored."
            )
        for key, version in self.withdrawal.fallbacks.items():
            instead = f"its earlier v{version}" if version is not None else "the workspace or base model"
            text += f" {self.names[key]} now answers with {instead}."
        if self.withdrawal.requeued_jobs:
            text += (
                f" {len(self.withdrawal.requeued_jobs)} training job(s) that had read them were stopped and "
                "queued again."
            )
        if self.plan.retrain:
            text += f" Retraining queued for {_join(self.names[s.scope_key] for s in self.plan.retrain)}."
        if self.plan.too_small:
            text += (
                f" Too few messages are left to retrain {_join(self.names[s.scope_key] for s in self.plan.too_small)}; "
                "no model that learned from them answers there."
            )
        return text


def withdraw(
    session: Session,
    services: Services,
    versions: list,
    *,
    reason: str,
    affected_scopes: Iterable[Scope] = (),
    visible_channels: set[int] | None = None,
) -> Outcome:
    """Withdraw `versions` in the caller's transaction and plan the retrains (see `db.forgetting`).

    `visible_channels`: when the reply goes to a member, the channels they wrote in; a private channel
    outside them is never named (None: an admin's reply, every channel named).
    """
    affected = list(affected_scopes)
    withdrawal = forgetting.withdraw_versions(
        session,
        versions,
        reason=reason,
        affected_scopes=affected,
        bundle_exists=services.store.exists if services.store is not None else None,
    )
    plan = forgetting.plan_retraining(session, withdrawal, affected, services.config.min_training_messages)
    scopes = [*plan.retrain, *plan.too_small, *(Scope.from_key(key) for key in withdrawal.fallbacks)]
    names = {scope.scope_key: scope_name(session, scope, visible_channels) for scope in scopes}
    return Outcome(withdrawal, plan, names)


def withdraw_channel(session: Session, services: Services, channel: Channel, *, why: str) -> Outcome:
    """Take a channel's messages back from every model outside the channel's own, after the commit too.

    Used when a channel stops feeding its workspace's models: unshared, made private, deleted or left.
    The bundles are deleted and the retrains queued once the caller's transaction commits.
    """
    outcome = withdraw(
        session,
        services,
        forgetting.versions_that_saw_channel(session, Scope.of(channel)),
        reason=why,
        affected_scopes=[Scope(channel.workspace_id)],
    )
    if outcome.withdrawal.versions:
        log.info("withdrew %d model version(s): %s", len(outcome.withdrawal.versions), why)
    after_commit(session, lambda: complete(services, outcome, requested_by="channel-withdrawn"))
    return outcome


def channel_gone(services: Services, platform: str, workspace: str, channel: str) -> bool:
    """The platform deleted a channel, or the bot left it: stop collecting there and take the channel's
    messages back from every model outside its own (`withdraw_channel`). Call it on the database threads.

    Returns:
        Whether chatsmith knew the channel.
    """
    from bot.core.places import find_channel  # places imports this module

    with services.write_sessions.begin() as session:
        row = find_channel(session, platform, workspace, channel)
        if row is None:
            return False
        row.collecting = False
        row.workspace_training = False
        session.flush()
        withdraw_channel(session, services, row, why=f"#{row.name or row.external_id} was deleted or left")
    return True


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` once the session's transaction has committed (never if it rolls back)."""

    def run(_session: Session) -> None:
        try:
            action()
        except Exception:
            # The rows are withdrawn already: nothing can load these models again. The log names the failure.
            log.exception("could not finish a withdrawal after its commit")

    event.listen(session, "after_commit", run, once=True)


def complete(services: Services, outcome: Outcome, *, requested_by: str) -> None:
    """After the commit: delete the withdrawn bundles and queue the planned retrains."""
    delete_bundles(services, outcome.withdrawal.bundle_locations)
    for scope in outcome.plan.retrain:
        jobs.request_training(services.engine, scope, "admin", requested_by[:64])


def delete_bundles(services: Services, locations: list[str]) -> None:
    """Delete withdrawn bundles; one that cannot be deleted is logged (its row can never serve again)."""
    for location in locations:
        try:
            if services.store is not None:
                services.store.delete(location)
            else:
                forgetting.delete_bundle_directory(location)
        except Exception:
            log.exception("could not delete a withdrawn bundle")


def scope_name(session: Session, scope: Scope, visible_channels: set[int] | None = None) -> str:
    """How replies name a scope: "the workspace model", "#channel", or "a private channel" for a member
    who never wrote in it (`visible_channels`, see `withdraw`)."""
    if scope.channel_id is None:
        return "the workspace model"
    channel = session.get(Channel, scope.channel_id)
    if channel is None:
        return "a channel"
    if visible_channels is None:
        return f"#{channel.name or channel.external_id}"
    return channel_label_for_member(channel, visible_channels)


def _join(names: Iterable[str]) -> str:
    return ", ".join(names)
