"""Where a request comes from, in database terms: its workspace and channel rows, and how to name them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.core.request import Request
from bot.core.services import Services
from bot.core.withdrawals import withdraw_channel
from db.models import Channel, Workspace
from db.scopes import Scope, get_or_create_channel, get_or_create_workspace


@dataclass(frozen=True)
class Place:
    """Database ids of the request's workspace and channel."""

    workspace_id: int
    channel_id: int
    channel_label: str
    collecting: bool

    @property
    def channel_scope(self) -> Scope:
        return Scope(self.workspace_id, self.channel_id)

    @property
    def workspace_scope(self) -> Scope:
        return Scope(self.workspace_id)

    def scope(self, scope_name: str) -> Scope:
        """The channel's scope for "channel", the workspace's for "workspace"."""
        return self.channel_scope if scope_name == "channel" else self.workspace_scope


def channel_label(request: Request) -> str:
    """How replies name the request's channel: "#general"."""
    return f"#{request.channel_name or request.channel}"


def find_channel(session: Session, platform: str, workspace: str, channel: str) -> Channel | None:
    """The channel row named by platform ids, or None when the database does not know it."""
    return session.scalars(
        select(Channel)
        .join(Workspace, Channel.workspace_id == Workspace.id)
        .where(
            Workspace.platform == platform,
            Workspace.external_id == workspace,
            Channel.external_id == channel,
        )
    ).one_or_none()


def find_place(session: Session, request: Request) -> Place | None:
    """The request's place, or None when its channel is not in the database yet."""
    channel = find_channel(session, request.platform, request.workspace, request.channel)
    if channel is None:
        return None
    return Place(channel.workspace_id, channel.id, channel_label(request), channel.collecting)


def channel_row(session: Session, request: Request, services: Services) -> Channel:
    """The request's channel row, created with its workspace when missing (names and privacy kept up to date).

    A channel the platform now reports private, and that no admin shared with the workspace, is taken
    back from the workspace's models at once (`bot.core.withdrawals`), as `collect unshare` would. A new
    channel whose privacy the platform could not tell is stored private (fail closed).
    """
    workspace = get_or_create_workspace(
        session, request.platform, request.workspace, request.workspace_name or None
    )
    known = find_channel(session, request.platform, request.workspace, request.channel) is not None
    channel = get_or_create_channel(session, workspace, request.channel, request.channel_name or None)
    if not known and request.channel_privacy_unknown:
        channel.private = True
    if request.channel_private is not None and channel.private != request.channel_private:
        channel.private = request.channel_private
        if channel.private and not channel.workspace_training:
            session.flush()
            withdraw_channel(session, services, channel, why=f"{channel_label(request)} became private")
    return channel


def ensure_place(services: Services, request: Request) -> Place:
    """The request's place, creating its rows when missing; runs its own transaction."""
    with services.write_sessions.begin() as session:
        channel = channel_row(session, request, services)
        session.flush()
        return Place(channel.workspace_id, channel.id, channel_label(request), channel.collecting)
