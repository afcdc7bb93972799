"""DiscordChatExporter's channel exports: its JSON, read as a stream, and its CSV.

JSON: `{"guild": {"id", "name"}, "channel": {"id", "name", …}, "messages": [{"id", "type", "timestamp",
"timestampEdited", "content", "author": {"id", "name", "nickname", "isBot"}, …}], "messageCount": n}`.
Only people talking is kept: messages of type `Default` or `Reply` with some text, from authors that are
not bots; pins, joins, calls, thread and channel notices are left out.

CSV: a header `AuthorID,Author,Date,Content,Attachments,Reactions`, then one row per message. It names
no channel and no message id and does not mark bots, so the JSON is the better export to import.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from textgen.errors import TextgenError
from textgen.formats.json_stream import JsonObjectStream, JsonStreamError
from textgen.formats.records import ChatRecord, ProgressCallback, ReadReport, object_field, parse_timestamp

# Message types that are people talking; DiscordChatExporter writes names, older versions numbers.
TALK_TYPES = frozenset({"Default", "Reply", 0, 19})
CSV_COLUMNS = ("AuthorID", "Author", "Date", "Content")
# How often (in messages) to report progress.
_PROGRESS_EVERY = 2000


def looks_like_discord_json(head: str) -> bool:
    """Whether the start of a file is a DiscordChatExporter JSON export."""
    return head.lstrip().startswith("{") and '"guild"' in head and '"channel"' in head


def looks_like_discord_csv(first_line: str) -> bool:
    """Whether a file's first line is DiscordChatExporter's CSV header."""
    columns = tuple(column.strip().strip('"') for column in first_line.lstrip("\ufeff").split(","))
    return columns[: len(CSV_COLUMNS)] == CSV_COLUMNS


def read_discord_json(
    path: Path, report: ReadReport, progress: ProgressCallback | None = None
) -> Iterator[ChatRecord]:
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
        try:
            for count, item in enumerate(stream.items(), start=1):
                record = _json_record(item, stream.fields)
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
    """The messages of every channel file in a folder of DiscordChatExporter JSON exports, file by file.

    A file that cannot be read is reported by name in `report.broken` and the others are read.

    Args:
        folder: The folder (DiscordChatExporter writes one file per channel, threads included).
        report: Collects broken files and left-out entries.
        progress: Called with (files read, files in all).
        channel: The one channel to read, by name or id.
    """
    files = discord_json_files(folder)
    wanted = channel.removeprefix("#") if channel is not None else None
    for done, path in enumerate(files, start=1):
        try:
            for record in read_discord_json(path, report):
                if wanted is None or wanted in (record.channel_id, record.channel_name):
                    yield record
        except TextgenError as error:
            report.add_broken(path.relative_to(folder).as_posix(), str(error))
        if progress is not None:
            progress(done, len(files))


def _json_record(item: Any, fields: dict[str, Any]) -> ChatRecord | None:
    if not isinstance(item, dict) or item.get("type", "Default") not in TALK_TYPES:
        return None
    author = object_field(item, "author")
    content = item.get("content")
    if author.get("isBot") or not isinstance(content, str) or not content.strip():
        return None
    channel = object_field(fields, "channel")
    author_id = author.get("id")
    return ChatRecord(
        content,
        author_id=str(author_id) if author_id is not None else None,
        author_name=author.get("nickname") or author.get("name"),
        time=parse_timestamp(item.get("timestamp")),
        channel_id=str(channel["id"]) if channel.get("id") is not None else None,
        channel_name=channel.get("name"),
        message_id=str(item["id"]) if item.get("id") is not None else None,
        edited_at=parse_timestamp(item.get("timestampEdited")),
    )


def read_discord_csv(
    path: Path, report: ReadReport, progress: ProgressCallback | None = None
) -> Iterator[ChatRecord]:
    """The messages of one DiscordChatExporter CSV file, streamed (rows with no text are left out).

    Raises:
        TextgenError: The file is not UTF-8 or lacks the export's header.
    """
    total = path.stat().st_size
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
