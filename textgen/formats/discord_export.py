"""DiscordChatExporter's channel exports: its JSON, read as a stream, and its CSV.

JSON: `{"guild": {"id", "name"}, "channel": {"id", "type", "categoryId", "name", …}, "messages": [{"id",
"type", "timestamp", "timestampEdited", "content", "author": {"id", "name", "nickname", "isBot"}, …}],
"messageCount": n}`. Only people talking is kept: messages of type `Default` or `Reply` with some text, from
authors that are not bots; pins, joins, calls, thread and channel notices are left out.

The channel's `type` and the guild's id say who can read it: direct and group direct messages (exported
under guild id 0) and private threads are private; a public thread belongs to the channel `categoryId`
names; other guild channels are public (the export does not say which roles may view them); a type this
does not know is taken as private. In a folder of exports, the private ones are read only when named.

CSV: a header `AuthorID,Author,Date,Content,Attachments,Reactions`, then one row per message. It names
no channel and no message id and does not mark bots, so the JSON is the better export to import; its file
name says whether it is a direct conversation (DiscordChatExporter names those `Direct Messages - …`).
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textgen.errors import TextgenError
from textgen.formats.json_stream import JsonObjectStream, JsonStreamError
from textgen.formats.records import (
    ChatRecord,
    Conversation,
    ProgressCallback,
    ReadReport,
    left_out_note,
    object_field,
    parse_timestamp,
)

# Message types that are people talking; DiscordChatExporter writes names, older versions numbers.
TALK_TYPES = frozenset({"Default", "Reply", 0, 19})
CSV_COLUMNS = ("AuthorID", "Author", "Date", "Content")
# How often (in messages) to report progress.
_PROGRESS_EVERY = 2000
# Channel types (DiscordChatExporter writes their names; Discord's API numbers them).
_DIRECT_TYPES = {
    "DirectTextChat": Conversation.DIRECT_MESSAGE,
    1: Conversation.DIRECT_MESSAGE,
    "DirectGroupTextChat": Conversation.GROUP_DIRECT_MESSAGE,
    3: Conversation.GROUP_DIRECT_MESSAGE,
}
_THREAD_TYPES = {
    "GuildNewsThread": Conversation.PUBLIC_THREAD,
    10: Conversation.PUBLIC_THREAD,
    "GuildPublicThread": Conversation.PUBLIC_THREAD,
    11: Conversation.PUBLIC_THREAD,
    "GuildPrivateThread": Conversation.PRIVATE_THREAD,
    12: Conversation.PRIVATE_THREAD,
}
_GUILD_TYPE_NUMBERS = frozenset({0, 2, 4, 5, 13, 14, 15, 16})
# The guild id DiscordChatExporter gives direct messages.
_DIRECT_GUILD = "0"
_DIRECT_CSV_PREFIX = "Direct Messages - "


@dataclass(frozen=True)
class DiscordChannel:
    """The channel an export holds: its id, name, kind and, for a thread, the channel it belongs to."""

    id: str | None
    name: str | None
    conversation: Conversation
    thread_of: str | None = None


def channel_of(fields: dict[str, Any]) -> DiscordChannel:
    """The channel of an export from its `guild` and `channel` fields (see the module's docstring)."""
    channel = object_field(fields, "channel")
    guild_id = object_field(fields, "guild").get("id")
    kind = channel.get("type")
    parent = channel.get("categoryId")
    thread_of = None
    if isinstance(kind, str | int) and kind in _DIRECT_TYPES:
        conversation = _DIRECT_TYPES[kind]
    elif guild_id is None or str(guild_id) == _DIRECT_GUILD:
        conversation = Conversation.DIRECT_MESSAGE
    elif isinstance(kind, str | int) and kind in _THREAD_TYPES:
        conversation = _THREAD_TYPES[kind]
        thread_of = str(parent) if parent else None
    elif (isinstance(kind, str) and kind.startswith("Guild")) or kind in _GUILD_TYPE_NUMBERS:
        conversation = Conversation.PUBLIC_CHANNEL
    else:
        # Nothing says everyone in the server can read it.
        conversation = Conversation.PRIVATE_CHANNEL
    channel_id = channel.get("id")
    name = channel.get("name")
    return DiscordChannel(
        str(channel_id) if channel_id is not None else None,
        name if isinstance(name, str) else None,
        conversation,
        thread_of,
    )


def looks_like_discord_json(head: str) -> bool:
    """Whether the start of a file is a DiscordChatExporter JSON export."""
    return head.lstrip().startswith("{") and '"guild"' in head and '"channel"' in head


def looks_like_discord_csv(first_line: str) -> bool:
    """Whether a file's first line is DiscordChatExporter's CSV header."""
    columns = tuple(column.strip().strip('"') for column in first_line.lstrip("\ufeff").split(","))
    return columns[: len(CSV_COLUMNS)] == CSV_COLUMNS


def read_discord_json(
    path: Path, report: ReadReport, progress: ProgressCallback | None = None
) -> Generator[ChatRecord, None, None]:
    """The messages of one DiscordChatExporter JSON file, oldest first, streamed.

    A file cut short (an export stopped half-way) gives the messages before the cut, and is reported in
    `report.broken`.

    Raises:
        TextgenError: The file is not UTF-8, or not the JSON DiscordChatExporter writes up to its first
            message.
    """
    total = path.stat().st_size
    count = 0
    with path.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig") as handle:
        stream = JsonObjectStream(handle, "messages")
        channel: DiscordChannel | None = None
        try:
            for count, item in enumerate(stream.items(), start=1):
                # The fields before the messages are all read once the first message is.
                channel = channel or channel_of(stream.fields)
                record = _json_record(item, channel)
                if record is None:
                    report.skipped += 1
                else:
                    yield record
                if progress is not None and count % _PROGRESS_EVERY == 0:
                    progress(raw.tell(), total)
        except JsonStreamError as error:
            if count == 0:
                raise TextgenError(
                    f"{path} is not a whole DiscordChatExporter JSON export ({error}); export the channel again"
                ) from None
            report.add_broken(
                path.name, f"cut off after {count} messages ({error}); export the channel again"
            )
        except UnicodeDecodeError as error:
            raise _not_utf8(path, error) from None
    if progress is not None:
        progress(total, total)


def discord_json_files(folder: Path) -> list[Path]:
    """The DiscordChatExporter JSON files in a folder (an export of a whole server), by path."""
    found = []
    for path in sorted(folder.rglob("*.json")):
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                head = handle.read(4096)
        except OSError:
            continue
        if looks_like_discord_json(head):
            found.append(path)
    return found


def read_discord_folder(
    folder: Path, report: ReadReport, progress: ProgressCallback | None = None, channel: str | None = None
) -> Iterator[ChatRecord]:
    """The messages of every public channel file in a folder of DiscordChatExporter JSON exports (or of
    `channel` only), file by file.

    A file that cannot be read is reported by name in `report.broken` and the others are read; private
    conversations left out are named in one note of `report.notes`.

    Args:
        folder: The folder (DiscordChatExporter writes one file per channel, threads included).
        report: Collects broken files and left-out entries.
        progress: Called with (files read, files in all).
        channel: The one channel to read, by name or id (a private one too).
    """
    files = discord_json_files(folder)
    wanted = channel.removeprefix("#") if channel is not None else None
    left_out: list[tuple[str, str]] = []
    for done, path in enumerate(files, start=1):
        try:
            records = read_discord_json(path, report)
            first = next(records, None)
            if first is not None and wanted is None and first.private:
                records.close()
                left_out.append(
                    (first.channel_name or first.channel_id or path.name, str(first.conversation))
                )
                continue
            for record in itertools.chain([first] if first is not None else [], records):
                if wanted is None or wanted in (record.channel_id, record.channel_name):
                    yield record
        except TextgenError as error:
            report.add_broken(path.relative_to(folder).as_posix(), str(error))
        finally:
            if progress is not None:
                progress(done, len(files))
    if left_out:
        report.notes.append(left_out_note(left_out))


def _json_record(item: Any, channel: DiscordChannel) -> ChatRecord | None:
    if not isinstance(item, dict) or item.get("type", "Default") not in TALK_TYPES:
        return None
    author = object_field(item, "author")
    content = item.get("content")
    if author.get("isBot") or not isinstance(content, str) or not content.strip():
        return None
    author_id = author.get("id")
    return ChatRecord(
        content,
        author_id=str(author_id) if author_id is not None else None,
        author_name=author.get("nickname") or author.get("name"),
        time=parse_timestamp(item.get("timestamp")),
        channel_id=channel.id,
        channel_name=channel.name,
        message_id=str(item["id"]) if item.get("id") is not None else None,
        edited_at=parse_timestamp(item.get("timestampEdited")),
        conversation=channel.conversation,
        thread_of=channel.thread_of,
    )


def read_discord_csv(
    path: Path, report: ReadReport, progress: ProgressCallback | None = None
) -> Iterator[ChatRecord]:
    """The messages of one DiscordChatExporter CSV file, streamed (rows with no text are left out); a file
    named as DiscordChatExporter names direct conversations gives private records, others say nothing.

    Raises:
        TextgenError: The file is not UTF-8 or lacks the export's header.
    """
    total = path.stat().st_size
    conversation = Conversation.DIRECT_MESSAGE if path.name.startswith(_DIRECT_CSV_PREFIX) else None
    with path.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as handle:
        try:
            rows = csv.DictReader(handle)
            if not rows.fieldnames or tuple(rows.fieldnames[: len(CSV_COLUMNS)]) != CSV_COLUMNS:
                raise TextgenError(
                    f"{path} has no DiscordChatExporter CSV header ({','.join(CSV_COLUMNS)},…); "
                    "export the channel as CSV again, or pass the right --format"
                )
            for count, row in enumerate(rows, start=1):
                content = row.get("Content") or ""
                if not content.strip():
                    report.skipped += 1
                    continue
                yield ChatRecord(
                    content,
                    author_id=(row.get("AuthorID") or "").strip() or None,
                    author_name=row.get("Author") or None,
                    time=parse_timestamp(row.get("Date")),
                    conversation=conversation,
                )
                if progress is not None and count % _PROGRESS_EVERY == 0:
                    progress(raw.tell(), total)
        except UnicodeDecodeError as error:
            raise _not_utf8(path, error) from None
        except csv.Error as error:
            raise TextgenError(
                f"{path} is not a readable CSV file ({error}); export the channel again"
            ) from None
    if progress is not None:
        progress(total, total)


def _not_utf8(path: Path, error: UnicodeDecodeError) -> TextgenError:
    return TextgenError(f"{path} is not UTF-8 (bad byte {error.object[error.start]:#x}); export it again")
