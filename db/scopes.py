"""Workspaces, channels and model scopes.

A scope is what a model and a training job belong to: a whole workspace, or one channel of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import Channel, Workspace
from db.platforms import platform_entry

RowT = TypeVar("RowT", Workspace, Channel)


@dataclass(frozen=True)
class Scope:
    """A model scope: the workspace (`channel_id` None) or one of its channels.

    Attributes:
        workspace_id: Database id of the workspace.
        channel_id: Database id of the channel, or None for the workspace-wide scope.
    """

    workspace_id: int
    channel_id: int | None = None

    @property
    def scope_key(self) -> str:
        """ "<workspace_id>" or "<workspace_id>/<channel_id>": the value stored in `scope_key` columns."""
        if self.channel_id is None:
            return str(self.workspace_id)
        return f"{self.workspace_id}/{self.channel_id}"

    def workspace_scope(self) -> Scope:
        """The workspace-wide scope this scope belongs to (itself for a workspace scope)."""
        return Scope(self.workspace_id)

    @classmethod
    def from_key(cls, scope_key: str) -> Scope:
        """Parse a `scope_key` back into a scope.

        Raises:
            ValueError: The text is not "<int>" or "<int>/<int>".
        """
        workspace, _, channel = scope_key.partition("/")
        try:
            return cls(int(workspace), int(channel) if channel else None)
        except ValueError:
            raise ValueError(
                f"Received scope key {scope_key!r}, expected '<workspace_id>[/<channel_id>]'"
            ) from None

    @classmethod
    def of(cls, row: Workspace | Channel) -> Scope:
        """The scope of a workspace row or of a channel row."""
        if isinstance(row, Channel):
            return cls(row.workspace_id, row.id)
        return cls(row.id)


def get_or_create_workspace(
    session: Session, platform: str, external_id: str, name: str | None = None
) -> Workspace:
    """The workspace with this platform id, created if new; its name is updated when given and changed.

    Safe when two processes create the same workspace at once: the loser of the race reads the winner's row.

    Raises:
        DatabaseError: `platform` is not a platform of `db.platforms.PLATFORMS`.
    """
    platform_entry(platform)
    query = select(Workspace).where(Workspace.platform == platform, Workspace.external_id == external_id)
    workspace = _get_or_insert(
        session, query, lambda: Workspace(platform=platform, external_id=external_id, name=name or "")
    )
    if name and workspace.name != name:
        workspace.name = name
    return workspace


def get_or_create_channel(
    session: Session, workspace: Workspace, external_id: str, name: str | None = None
) -> Channel:
    """The channel with this platform id in `workspace`, created (collection off) if new."""
    query = select(Channel).where(Channel.workspace_id == workspace.id, Channel.external_id == external_id)
    channel = _get_or_insert(
        session, query, lambda: Channel(workspace_id=workspace.id, external_id=external_id, name=name or "")
    )
    if name and channel.name != name:
        channel.name = name
    return channel


def find_scope(
    session: Session, platform: str, workspace_external_id: str, channel_external_id: str | None = None
) -> Scope | None:
    """The scope named by platform ids, or None when that workspace or channel is not known.

    One query of ids (no rows loaded into the session): every reply looks its channel up.
    """
    workspace_named = (Workspace.platform == platform, Workspace.external_id == workspace_external_id)
    if channel_external_id is None:
        workspace_id = session.scalars(select(Workspace.id).where(*workspace_named)).one_or_none()
        return None if workspace_id is None else Scope(workspace_id)
    ids = session.execute(
        select(Channel.workspace_id, Channel.id)
        .join(Workspace, Channel.workspace_id == Workspace.id)
        .where(*workspace_named, Channel.external_id == channel_external_id)
    ).one_or_none()
    return None if ids is None else Scope(ids[0], ids[1])


def describe_scope(session: Session, scope: Scope) -> str:
    """A human name for a scope, such as "discord:1234 (My server) #general"."""
    workspace = session.get(Workspace, scope.workspace_id)
    if workspace is None:
        return f"scope {scope.scope_key} (deleted)"
    text = f"{workspace.platform}:{workspace.external_id}" + (
        f" ({workspace.name})" if workspace.name else ""
    )
    if scope.channel_id is not None:
        channel = session.get(Channel, scope.channel_id)
        text += f" #{channel.name or channel.external_id}" if channel else f" channel {scope.channel_id}"
    return text


def _get_or_insert(session: Session, query: Select[Any], make: Callable[[], RowT]) -> RowT:
    existing = session.scalars(query).one_or_none()
    if existing is not None:
        return existing
    row = make()
    try:
        # A savepoint, so that losing the race to a concurrent insert keeps the caller's transaction usable.
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return session.scalars(query).one()
    return row
