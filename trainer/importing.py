"""Importing a chat log or export into the messages of its channels, for training without a live bot.

Channels (and the workspace) are created when new and their collection is turned on, recorded as done by
the importer. A channel is stored private when the export says only some members could read it (a
private channel, a direct or group direct message, a private thread, a thread of a channel stored private)
or when the caller says so for a whole log: like a collected private channel, it then trains only its own
channel model, never the workspace model. An import never makes a private channel public.

Messages keep their author ids and times where the format has them, so that the promotion gate's
held-out "newest messages" really are the newest, and forget-me and opt-outs reach imported members by the
same platform user id as collected ones. A message keeps the platform's id where the export has one (Slack
`ts`, Discord snowflake), so importing an export twice, or over messages a bot already collected, stores
it once; otherwise its id is derived from the file's name, the message's position and its text, so
importing a log that grew adds only its new messages. Users who opted out of the workspace are skipped, as
a bot would skip them. Records are written in batches as they are read, so a big export needs no more
memory than a batch.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from db.engine import immediate
from db.messages import set_collection
from db.models import Channel, Message, UserOptOut, utcnow
from db.retry import retry_on_lock
from db.scopes import get_or_create_channel, get_or_create_workspace
from textgen.corpus import Corpus
from textgen.formats.records import ChatRecord
from trainer.errors import TrainerError

# Messages per transaction: short enough that a bot writing to the same SQLite file is not kept waiting.
BATCH_SIZE = 5000
# Author id of messages whose format does not name one (plain text, one message per line).
UNKNOWN_AUTHOR = "imported"
# Column widths of the messages and channels tables.
_ID_CHARS = 64
_NAME_CHARS = 200
# Ids looked up per query: below every database's limit on bound parameters.
_LOOKUP_CHUNK = 500
# Messages without a time are placed in file order just before the import started, a microsecond apart,
# so that what a bot collects afterwards is newer.
_UNDATED_WINDOW = timedelta(seconds=1000)


@dataclass(frozen=True)
class ImportResult:
    """What an import did.

    Attributes:
        messages: Messages read from the file.
        added: Messages stored now.
        already_stored: Messages stored by an earlier import of the same file (or collected by a bot).
        opted_out: Messages left out because their author opted out of the workspace.
        channels: Platform ids of the channels that messages were read for, in the order first seen.
        private_channels: Those of `channels` that are stored private.
    """

    messages: int
    added: int
    already_stored: int
    opted_out: int
    channels: tuple[str, ...] = ()
    private_channels: tuple[str, ...] = ()


def message_id(source_name: str, position: int, text: str) -> str:
    """The platform message id of an imported message that has none: stable across imports of the file."""
    digest = hashlib.sha256(f"{source_name}\n{position}\n{text}".encode()).hexdigest()
    return f"import-{digest[:40]}"


class _Importer:
    """Writes records batch by batch, opening each channel on first sight."""

    def __init__(
        self, engine: Engine, platform: str, workspace: str, imported_by: str, private: bool
    ) -> None:
        self.engine = engine
        self.platform = platform
        self.workspace = workspace
        self.imported_by = imported_by
        self.private = private
        self.channel_ids: dict[str, int] = {}
        self.private_channels: list[str] = []
        self.opted_out: set[str] = set()
        self.messages = self.added = self.already = self.skipped = 0

    def open_channel(self, external_id: str, record: ChatRecord) -> int:
        """The database id of the channel `record` was posted in, created and marked on first sight."""
        if external_id in self.channel_ids:
            return self.channel_ids[external_id]
        name = record.channel_name

        def open_it() -> tuple[int, bool, set[str]]:
            with Session(immediate(self.engine), expire_on_commit=False) as session, session.begin():
                workspace_row = get_or_create_workspace(session, self.platform, self.workspace)
                channel_row = get_or_create_channel(
                    session, workspace_row, external_id, name[:_NAME_CHARS] if name else None
                )
                if self.private or record.private or _parent_is_private(session, workspace_row.id, record):
                    channel_row.private = True
                set_collection(session, channel_row, True, by=self.imported_by)
                opted_out = set(
                    session.scalars(
                        select(UserOptOut.user_id).where(UserOptOut.workspace_id == workspace_row.id)
                    )
                )
                return channel_row.id, channel_row.private, opted_out

        channel_id, private, self.opted_out = retry_on_lock(open_it)
        self.channel_ids[external_id] = channel_id
        if private:
            self.private_channels.append(external_id)
        return channel_id

    def write(self, batch: dict[tuple[int, str], dict[str, object]]) -> None:
        """Store the rows of `batch` (keyed by channel and message id) that are not stored yet."""
        if not batch:
            return
        stored: set[tuple[int, str]] = set()
        with Session(self.engine) as session:
            by_channel: dict[int, list[str]] = {}
            for channel_id, platform_id in batch:
                by_channel.setdefault(channel_id, []).append(platform_id)
            for channel_id, ids in by_channel.items():
                for start in range(0, len(ids), _LOOKUP_CHUNK):
                    query = select(Message.platform_message_id).where(
                        Message.channel_id == channel_id,
                        Message.platform_message_id.in_(ids[start : start + _LOOKUP_CHUNK]),
                    )
                    stored.update((channel_id, found) for found in session.scalars(query))
        rows = [row for key, row in batch.items() if key not in stored]
        self.already += len(batch) - len(rows)
        self.added += len(rows)
        if rows:
            retry_on_lock(functools.partial(_insert, self.engine, rows))


def _parent_is_private(session: Session, workspace_id: int, record: ChatRecord) -> bool:
    """Whether `record` is in a thread of a channel stored private (a thread is read by its channel's
    members)."""
    if record.thread_of is None:
        return False
    parent = session.scalar(
        select(Channel.private).where(
            Channel.workspace_id == workspace_id, Channel.external_id == record.thread_of[:_ID_CHARS]
        )
    )
    return bool(parent)


def import_records(
    engine: Engine,
    records: Iterable[ChatRecord],
    *,
    platform: str,
    workspace: str,
    channel: str | None,
    source_name: str,
    imported_by: str = "chatsmith import",
    private: bool = False,
    now: datetime | None = None,
) -> ImportResult:
    """Store messages in their channels and turn collection on there, reading `records` as a stream.

    Args:
        engine: The database.
        records: Messages in the file's order (see `textgen.formats.ChatSource.records`).
        platform: "console", "discord" or "slack".
        workspace: The workspace's platform id (created when new).
        channel: The channel's platform id for every message (created when new); None: each record's own
            channel (`channel_id`, else `channel_name`), as exports of several channels have them.
        source_name: Names the file in derived message ids (its base name, so moving the file changes
            nothing).
        imported_by: Recorded as who turned collection on.
        private: Store every channel private, whatever the records say (a log of a private channel).
        now: The import's start (a clock for tests).

    Returns:
        Counts of what was added and skipped.

    Raises:
        TrainerError: `channel` is None and a record names no channel.
    """
    importer = _Importer(engine, platform, workspace, imported_by, private)
    undated_start = (now or utcnow()) - _UNDATED_WINDOW
    batch: dict[tuple[int, str], dict[str, object]] = {}
    for position, record in enumerate(records):
        importer.messages += 1
        external_channel = channel or record.channel_id or record.channel_name
        if not external_channel:
            raise TrainerError(
                f"{source_name} does not say which channel its messages are from; pass --channel CHANNEL"
            )
        channel_id = importer.open_channel(external_channel[:_ID_CHARS], record)
        author_id = (record.author_id or UNKNOWN_AUTHOR)[:_ID_CHARS]
        if author_id in importer.opted_out:
            importer.skipped += 1
            continue
        platform_id = (record.message_id or message_id(source_name, position, record.text))[:_ID_CHARS]
        key = (channel_id, platform_id)
        if key in batch:
            importer.already += 1  # a message the export holds twice (Slack repeats some thread replies)
            continue
        batch[key] = {
            "channel_id": channel_id,
            "platform_message_id": platform_id,
            "author_id": author_id,
            "author_is_bot": False,
            "text": record.text,
            "created_at": record.time or undated_start + timedelta(microseconds=position),
            "edited_at": record.edited_at,
        }
        if len(batch) >= BATCH_SIZE:
            importer.write(batch)
            batch = {}
    importer.write(batch)
    return ImportResult(
        importer.messages,
        importer.added,
        importer.already,
        importer.skipped,
        tuple(importer.channel_ids),
        tuple(importer.private_channels),
    )


def import_corpus(
    engine: Engine,
    corpus: Corpus,
    *,
    platform: str,
    workspace: str,
    channel: str,
    source_name: str,
    imported_by: str = "chatsmith import",
    private: bool = False,
) -> ImportResult:
    """Store the messages of an already read `corpus` in one channel; see `import_records`."""
    records = corpus.records or [
        ChatRecord(text, author_id=author)
        for text, author in zip(corpus.messages, corpus.authors or [None] * len(corpus.messages), strict=True)
    ]
    return import_records(
        engine,
        records,
        platform=platform,
        workspace=workspace,
        channel=channel,
        source_name=source_name,
        imported_by=imported_by,
        private=private,
    )


def _insert(engine: Engine, batch: list[dict[str, object]]) -> None:
    with Session(immediate(engine)) as session, session.begin():
        session.execute(insert(Message), batch)
