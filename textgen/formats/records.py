"""One chat message as a reader found it, and how readers report progress and broken parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

# Dates as exporters write them besides ISO 8601; older DiscordChatExporter CSVs used the machine's locale.
_DATE_FORMATS = ("%d-%b-%y %I:%M %p", "%m/%d/%Y %I:%M %p", "%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M:%S")
# `progress(done, total)`: bytes or files read so far, of `total` (0 when unknown).
ProgressCallback = Callable[[int, int], None]


class Conversation(StrEnum):
    """The kind of conversation a message was posted in, as an export says it."""

    PUBLIC_CHANNEL = "public channel"
    PRIVATE_CHANNEL = "private channel"
    DIRECT_MESSAGE = "direct message"
    GROUP_DIRECT_MESSAGE = "group direct message"
    PUBLIC_THREAD = "public thread"
    PRIVATE_THREAD = "private thread"

    @property
    def private(self) -> bool:
        """Whether only some members of the workspace can read it."""
        return self not in (Conversation.PUBLIC_CHANNEL, Conversation.PUBLIC_THREAD)


# Slots: a big log is hundreds of thousands of these, and a per-instance dict would triple their memory.
@dataclass(frozen=True, slots=True)
class ChatRecord:
    """A message with what the format says about it.

    Attributes:
        text: The message as written (its final text where the export records edits).
        author_id: The platform's id of the author (Slack `U…`, Discord snowflake), else the nick or name;
            None when the format names nobody.
        author_name: The author's display name, where the format has one.
        time: When it was posted (aware, UTC); None when the format carries no date.
        channel_id: The platform's id of the channel, for exports that hold channels.
        channel_name: The channel's name, for exports that hold channels.
        message_id: The platform's id of the message (Slack `ts`, Discord snowflake), so that importing an
            export twice, or over messages a bot collected, stores each message once.
        edited_at: When it was last edited, where the export says.
        conversation: What kind of conversation it was posted in; None when the format does not say (logs).
        thread_of: For a message of a thread: the platform's id of the channel the thread belongs to.
    """

    text: str
    author_id: str | None = None
    author_name: str | None = None
    time: datetime | None = None
    channel_id: str | None = None
    channel_name: str | None = None
    message_id: str | None = None
    edited_at: datetime | None = None
    conversation: Conversation | None = None
    thread_of: str | None = None

    @property
    def private(self) -> bool:
        """Whether the export says only some members could read it (a log says nothing: False)."""
        return self.conversation is not None and self.conversation.private


@dataclass
class ReadReport:
    """What a reader left out.

    Attributes:
        broken: Parts of an export it could not read, each as `name: reason`.
        skipped: Entries that are not people talking (joins, bots, notices) or have no text.
        notes: Whole parts left out on purpose, each a sentence for the user.
    """

    broken: list[str] = field(default_factory=list)
    skipped: int = 0
    notes: list[str] = field(default_factory=list)

    def add_broken(self, name: str, reason: str) -> None:
        self.broken.append(f"{name}: {reason}")


def parse_timestamp(text: object) -> datetime | None:
    """An export's timestamp as an aware UTC datetime (naive ones are taken as UTC), or None."""
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
        for pattern in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
    if parsed is None:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def object_field(value: dict[str, Any], key: str) -> dict[str, Any]:
    """`value[key]` when it is a JSON object, else an empty one: exports leave fields out or null."""
    found = value.get(key)
    return found if isinstance(found, dict) else {}


def left_out_note(conversations: list[tuple[str, str]], shown: int = 10) -> str:
    """The note for private conversations an export reader left out: one line naming them.

    Args:
        conversations: (name, what it is) of each, such as ("design", "private channel").
        shown: How many to name; the rest are counted.
    """
    named = ", ".join(f"{name} ({kind})" for name, kind in conversations[:shown])
    more = f" and {len(conversations) - shown} more" if len(conversations) > shown else ""
    count = f"{len(conversations)} private conversation" + ("s" if len(conversations) > 1 else "")
    return (
        f"left out {count}: {named}{more}; import one by naming it with --channel (it is stored as private)"
    )
