"""Workspaces, channels and scopes."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.errors import DatabaseError
from db.models import Channel, Workspace
from db.scopes import Scope, describe_scope, find_scope, get_or_create_channel, get_or_create_workspace


def test_get_or_create_returns_the_same_rows_and_updates_names(session: Session) -> None:
    workspace = get_or_create_workspace(session, "discord", "1234", name="Old name")
    channel = get_or_create_channel(session, workspace, "555", name="general")
    session.commit()

    assert get_or_create_workspace(session, "discord", "1234", name="New name") is workspace
    assert get_or_create_channel(session, workspace, "555") is channel
    assert workspace.name == "New name" and channel.name == "general"
    # The same external id on another platform is another workspace.
    assert get_or_create_workspace(session, "slack", "1234") is not workspace
    assert session.scalar(select(func.count(Workspace.id))) == 2
    assert session.scalar(select(func.count(Channel.id))) == 1
    assert not channel.collecting


def test_unknown_platform_is_refused(session: Session) -> None:
    with pytest.raises(DatabaseError, match="use one of discord, slack, console"):
        get_or_create_workspace(session, "irc", "x")


def test_scope_keys_round_trip() -> None:
    assert Scope(3).scope_key == "3"
    assert Scope(3, 14).scope_key == "3/14"
    assert Scope.from_key("3/14") == Scope(3, 14)
    assert Scope.from_key("3") == Scope(3)
    assert Scope(3, 14).workspace_scope() == Scope(3)
    with pytest.raises(ValueError, match="expected '<workspace_id>"):
        Scope.from_key("three")


def test_find_and_describe_scopes(session: Session) -> None:
    workspace = get_or_create_workspace(session, "console", "W", name="Team")
    channel = get_or_create_channel(session, workspace, "C", name="chat")
    session.commit()

    assert find_scope(session, "console", "W") == Scope(workspace.id)
    assert find_scope(session, "console", "W", "C") == Scope(workspace.id, channel.id)
    assert find_scope(session, "console", "W", "nope") is None
    assert find_scope(session, "slack", "W") is None
    assert describe_scope(session, Scope.of(channel)) == "console:W (Team) #chat"
