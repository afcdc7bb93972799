"""What chatsmith holds about one member of a workspace, gathered for `/my-data`.

Everything collected from them (their stored messages, with channel and times), whether they opted out
or agreed to be imitated, and which model versions learned from their messages and still exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, not_, or_, select
from sqlalchemy.orm import Session

from db.models import (
    Channel,
    ImitationConsent,
    Message,
    ModelVersion,
    ModelVersionAuthor,
    UserOptOut,
)


@dataclass
class MemberData:
    """A member's data in one workspace, ready to be written out (`as_json_ready`)."""

    workspace: str
    user_id: str
    generated_at: datetime
    opted_out_at: datetime | None = None
    imitation_agreed_at: datetime | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)

    def as_json_ready(self) -> dict[str, Any]:
        """Plain JSON types: times in ISO 8601 UTC."""

        def when(moment: datetime | None) -> str | None:
            return moment.isoformat() if moment is not None else None

        return {
            "workspace": self.workspace,
            "user_id": self.user_id,
            "generated_at": when(self.generated_at),
            "opted_out_at": when(self.opted_out_at),
            "imitation_agreed_at": when(self.imitation_agreed_at),
            "message_count": len(self.messages),
            "messages": self.messages,
            "models_trained_on_your_messages": self.models,
        }


def iter_member_messages(session: Session, workspace_id: int, user_id: str) -> Iterator[dict[str, Any]]:
    """The member's stored messages in the workspace, oldest first (deleted ones have no text left)."""
    query = (
        select(Message, Channel)
        .join(Channel, Message.channel_id == Channel.id)
        .where(Channel.workspace_id == workspace_id, Message.author_id == user_id, not_(Message.deleted))
        .order_by(Message.created_at, Message.id)
        .execution_options(yield_per=1000)
    )
    for message, channel in session.execute(query).tuples():
        yield {
            "channel": channel.name or channel.external_id,
            "channel_id": channel.external_id,
            "message_id": message.platform_message_id,
            "written_at": message.created_at.isoformat(),
            "edited_at": message.edited_at.isoformat() if message.edited_at else None,
            "text": message.text,
        }


def channels_written_in(session: Session, workspace_id: int, user_id: str) -> set[int]:
    """Database ids of the workspace's channels where `user_id` has stored messages."""
    return set(
        session.scalars(
            select(Channel.id)
            .join(Message, Message.channel_id == Channel.id)
            .where(Channel.workspace_id == workspace_id, Message.author_id == user_id)
            .distinct()
        )
    )


def channel_label_for_member(channel: Channel, written_in: set[int]) -> str:
    """How a reply to a member names a channel: a private one they never wrote in stays unnamed."""
    if channel.private and channel.id not in written_in:
        return "a private channel"
    return f"#{channel.name or channel.external_id}"


def member_data(
    session: Session, workspace_id: int, workspace_name: str, user_id: str, now: datetime
) -> MemberData:
    """Gather what the workspace holds about `user_id`."""
    data = MemberData(workspace=workspace_name, user_id=user_id, generated_at=now)
    data.opted_out_at = session.scalar(
        select(UserOptOut.opted_out_at).where(
            UserOptOut.workspace_id == workspace_id, UserOptOut.user_id == user_id
        )
    )
    data.imitation_agreed_at = session.scalar(
        select(ImitationConsent.granted_at).where(
            ImitationConsent.workspace_id == workspace_id, ImitationConsent.user_id == user_id
        )
    )
    data.messages = list(iter_member_messages(session, workspace_id, user_id))
    learned = exists().where(
        ModelVersionAuthor.model_version_id == ModelVersion.id, ModelVersionAuthor.author_id == user_id
    )
    versions = session.scalars(
        select(ModelVersion)
        .where(
            ModelVersion.workspace_id == workspace_id,
            ModelVersion.bundle_path.is_not(None),
            or_(learned, not_(ModelVersion.exposure_recorded)),
        )
        .order_by(ModelVersion.scope_key, ModelVersion.version)
    )
    written_in = channels_written_in(session, workspace_id, user_id)
    for version in versions:
        channel = session.get(Channel, version.channel_id) if version.channel_id else None
        data.models.append(
            {
                "scope": channel_label_for_member(channel, written_in) if channel else "workspace",
                "version": version.version,
                "status": version.status,
                "trained_at": version.created_at.isoformat(),
                "learned_from_you": "yes"
                if version.exposure_recorded
                else "unknown (trained before chatsmith recorded whose messages a model learned from)",
            }
        )
    return data
