"""Importing a chat log file into a channel's messages, for training without a live bot.

The channel (and workspace) is created when new and its collection is turned on, recorded as done by
the importer. Each message gets a platform message id derived from the file's name, the message's
position in it and its text, so importing the same file again adds nothing, and importing a log that grew
adds only its new messages. Users who opted out of the workspace are skipped, as a bot would skip them.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from db.engine import immediate
from db.messages import set_collection
from db.models import Message, UserOptOut, utcnow
from db.retry import retry_on_lock
from db.scopes import get_or_create_channel, get_or_create_workspace
from textgen.corpus import Corpus

# Messages per transaction: short enough that a bot writing to the same SQLite file is not kept waiting.
BATCH_SIZE = 5000
# Author id of messages whose format does not name one (plain text, one message per line).
UNKNOWN_AUTHOR = "imported"
# Column widths of the messages table.
_ID_CHARS = 64


@dataclass(frozen=True)
class ImportResult:
    """What an import did.

    Attributes:
        messages: Messages read from the file.
        added: Messages stored now.
        already_stored: Messages stored by an earlier import of the same file.
        opted_out: Messages left out because their author opted out of the workspace.
    """

    messages: int
    added: int
    already_stored: int
    opted_out: int


def message_id(source_name: str, position: int, text: str) -> str:
    """The platform message id of an imported message: stable across imports of the same file."""
    digest = hashlib.sha256(f"{source_name}\n{position}\n{text}".encode()).hexdigest()
    return f"import-{digest[:40]}"


def import_corpus(
    engine: Engine,
    corpus: Corpus,
    *,
    platform: str,
    workspace: str,
    channel: str,
    source_name: str,
    imported_by: str = "chatsmith import",
) -> ImportResult:
    """Store the messages of `corpus` in a channel and turn collection on there.

    Args:
        engine: The database.
        corpus: Parsed messages (and authors, where the format has them), oldest first.
        platform: "console", "discord" or "slack".
        workspace: The workspace's platform id (created when new).
        channel: The channel's platform id (created when new).
        source_name: Names the file in message ids (its base name, so moving the file changes nothing).
        imported_by: Recorded as who turned collection on.

    Returns:
        Counts of what was added and skipped.
    """

    def open_channel() -> tuple[int, set[str], set[str]]:
        with Session(immediate(engine), expire_on_commit=False) as session, session.begin():
            workspace_row = get_or_create_workspace(session, platform, workspace)
            channel_row = get_or_create_channel(session, workspace_row, channel)
            set_collection(session, channel_row, True, by=imported_by)
            stored = set(
                session.scalars(
                    select(Message.platform_message_id).where(Message.channel_id == channel_row.id)
                )
            )
            opted_out = set(
                session.scalars(select(UserOptOut.user_id).where(UserOptOut.workspace_id == workspace_row.id))
            )
            return channel_row.id, stored, opted_out

    channel_id, stored, opted_out = retry_on_lock(open_channel)
    authors = corpus.authors if len(corpus.authors) == len(corpus.messages) else [None] * len(corpus.messages)
    # Import order is time order: the corpus split holds out the newest messages, here the file's last ones.
    first_time = utcnow() - timedelta(milliseconds=len(corpus.messages))
    rows: list[dict[str, object]] = []
    already = skipped = 0
    for position, (text, author) in enumerate(zip(corpus.messages, authors, strict=True)):
        platform_id = message_id(source_name, position, text)
        author_id = (author or UNKNOWN_AUTHOR)[:_ID_CHARS]
        if platform_id in stored:
            already += 1
            continue
        if author_id in opted_out:
            skipped += 1
            continue
        stored.add(platform_id)  # the same line twice in one file would otherwise collide
        rows.append(
            {
                "channel_id": channel_id,
                "platform_message_id": platform_id,
                "author_id": author_id,
                "author_is_bot": False,
                "text": text,
                "created_at": first_time + timedelta(milliseconds=position),
            }
        )
    for start in range(0, len(rows), BATCH_SIZE):
        batch = rows[start : start + BATCH_SIZE]
        retry_on_lock(functools.partial(_insert, engine, batch))
    return ImportResult(len(corpus.messages), len(rows), already, skipped)


def _insert(engine: Engine, batch: list[dict[str, object]]) -> None:
    with Session(immediate(engine)) as session, session.begin():
        session.execute(insert(Message), batch)
