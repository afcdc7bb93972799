"""Which format a chat file is in, and reading it as a stream of messages whatever the format.

`open_source(path, "auto")` looks at a folder or zip (a Slack export), at the start of a file (a
DiscordChatExporter JSON or CSV) or at its first lines (JSON lines, an IRC log, prose or one message per
line), and refuses a file whose lines mostly look like a log in a shape it does not know, rather than
learning timestamps and nicks as if they were what people said, and one whose lines are mostly not words
(hashes, ids, numbers), which no one said at all.
"""

from __future__ import annotations

import codecs
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from textgen.errors import TextgenError
from textgen.formats import irc
from textgen.formats.discord_export import (
    discord_json_files,
    looks_like_discord_csv,
    looks_like_discord_json,
    read_discord_csv,
    read_discord_folder,
    read_discord_json,
)
from textgen.formats.plain import is_json_message, jsonl_records, line_records, read_lines, read_whole
from textgen.formats.records import ChatRecord, ProgressCallback, ReadReport
from textgen.formats.slack_export import is_slack_export, read_slack_export

FORMATS = ("text", "lines", "jsonl", "irc", "slack-export", "discord-json", "discord-csv")
# Formats whose records name their channel; `channel` selects one of them.
CHANNEL_FORMATS = ("slack-export", "discord-json")

_SNIFF_LINES = 200
_HEAD_BYTES = 1 << 16
# A line that starts like a log line: a time or date, maybe bracketed, maybe after a channel name.
_LOG_LIKE = re.compile(r"^(?:\S+\s+)?[\[(]?\d{1,4}[-/.:]\d{1,2}[-/.:T\d]*\S*\s")
# Runs of two letters or more (of any script), and letters or digits.
_LETTER_RUN = re.compile(r"[^\W\d_]{2,}")
_ALPHANUMERIC = re.compile(r"[^\W_]")
# A file of chat or prose has at least this share of lines that read as words.
_MIN_WORDY_SHARE = 0.5


def unknown_format(fmt: str) -> TextgenError:
    """The error for a --format that is not one of FORMATS."""
    return TextgenError(f"unknown corpus format {fmt!r}; use one of: auto, {', '.join(FORMATS)}")


def guess_format(text: str, source: str = "<text>") -> str:
    """The format of a chat file's `text` (its start is enough): jsonl, irc, text or lines.

    Raises:
        TextgenError: Most lines match no shape this reads: they look like log lines (a time or date in
            front) or JSON, but of no known format.
    """
    all_lines = text.splitlines()[: _SNIFF_LINES * 2]
    lines = [line for line in all_lines if line.strip()][:_SNIFF_LINES]
    if not lines:
        return "text"
    json_lines = sum(1 for line in lines if is_json_message(line))
    if json_lines >= 0.8 * len(lines):
        return "jsonl"
    kinds = [irc.parse_irc_line(line).kind for line in lines]
    known = sum(1 for kind in kinds if kind != irc.UNKNOWN)
    # A log may open with a screenful of joins and topic lines before anyone talks.
    if known >= 0.6 * len(lines):
        return "irc"
    unknown = [
        line
        for line, kind in zip(lines, kinds, strict=True)
        if kind == irc.UNKNOWN and (_LOG_LIKE.match(line) or line.lstrip().startswith(("{", "[{")))
    ]
    if known + len(unknown) > 0.5 * len(lines) and unknown:
        example = _shorten(unknown[0])
        raise TextgenError(
            f"corpus {source}: {len(unknown)} of its first {len(lines)} lines look like a chat log in a shape "
            f'chatsmith does not know (like {example!r}); convert it to JSON lines ({{"text": ...}}), or pass '
            "--format lines to learn the raw lines (see the README's table of formats)"
        )
    _refuse_if_not_words(lines, source)
    # Prose separates paragraphs with blank lines and wraps long ones; chat exports put one message
    # per line with no blank lines in between.
    blank_share = sum(1 for line in all_lines if not line.strip()) / max(1, len(all_lines))
    return "text" if blank_share >= 0.05 else "lines"


def is_wordy(line: str) -> bool:
    """Whether a line reads as words: most of its letters and digits are in runs of two letters or more.

    A hash, an id or a number is not (`3f9a0c…` mixes digits into its letters); `ok`, `12:30 is lunch
    time` and `今日は2024年です` are.
    """
    alphanumeric = len(_ALPHANUMERIC.findall(line))
    return alphanumeric > 0 and 2 * sum(len(run) for run in _LETTER_RUN.findall(line)) >= alphanumeric


def _refuse_if_not_words(lines: list[str], source: str) -> None:
    not_words = [line for line in lines if not is_wordy(line)]
    if len(lines) - len(not_words) >= _MIN_WORDY_SHARE * len(lines):
        return
    example = _shorten(not_words[0])
    raise TextgenError(
        f"corpus {source}: {len(not_words)} of its first {len(lines)} lines are not words "
        f"(like {example!r}): hashes, ids or numbers, not what people write; pass --format lines (or text) "
        "to learn them anyway"
    )


def _shorten(line: str) -> str:
    """A line to quote in an error: stripped, and cut at 60 characters."""
    line = line.strip()
    return line if len(line) <= 60 else line[:57] + "..."


def _head(path: Path) -> str:
    """The first 64 KiB of a file as text (a character cut at the end is left out)."""
    with path.open("rb") as handle:
        data = handle.read(_HEAD_BYTES)
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(data, final=len(data) < _HEAD_BYTES)
    except UnicodeDecodeError as error:
        raise TextgenError(
            f"corpus {path} is not UTF-8 (bad byte at offset {error.start}); convert it, "
            f"for example with `iconv -f latin1 -t utf-8`"
        ) from None
    return text.removeprefix("\ufeff")


def detect_format(path: Path) -> str:
    """The format of the file or folder at `path` (see the module's docstring).

    Raises:
        TextgenError: A folder or zip that is not a Slack export, an empty file, or one refused by
            `guess_format`.
    """
    if path.is_dir():
        if is_slack_export(path):
            return "slack-export"
        if discord_json_files(path):
            return "discord-json"
        raise TextgenError(
            f"corpus {path} is a directory but not a Slack export (no channels.json or users.json) nor a "
            "folder of DiscordChatExporter JSON files; pass a file"
        )
    if zipfile.is_zipfile(path):
        if is_slack_export(path):
            return "slack-export"
        raise TextgenError(
            f"corpus {path} is a zip file but not a Slack export (no channels.json or users.json at its top)"
        )
    head = _head(path)
    if not head.strip():
        raise TextgenError(f"corpus {path} is empty; give a file with some text in it")
    if looks_like_discord_json(head):
        return "discord-json"
    if looks_like_discord_csv(head.split("\n", 1)[0]):
        return "discord-csv"
    if len(head) >= _HEAD_BYTES - 4 and "\n" in head:
        head = head[: head.rindex("\n")]  # a cut last line would be judged on half of itself
    if head.lstrip().startswith(("{", "[")) and not is_json_message(head.split("\n", 1)[0]):
        try:
            document = json.loads(head)
        except ValueError:
            pass
        else:
            if (
                isinstance(document, list)
                and document
                and all(isinstance(item, dict) and "ts" in item for item in document)
            ):
                raise TextgenError(
                    f"corpus {path} is one day of a Slack export; pass the whole export (its zip or folder, "
                    "with channels.json and users.json)"
                )
            raise TextgenError(
                f"corpus {path} is a JSON document of no format chatsmith reads; convert it to JSON lines "
                '({"text": ...} per line) or export it with DiscordChatExporter or Slack\'s export tool'
            )
    return guess_format(head, str(path))


@dataclass
class ChatSource:
    """A chat file (or export) in a known format, read as a stream of messages.

    Attributes:
        path: The file, or the Slack export's zip or folder.
        format: One of FORMATS.
        guessed: Whether `format` was guessed.
        channel: The one channel to read, in formats that hold channels.
        include_actions: Keep IRC actions (`* nick waves`) as messages.
        report: Broken parts of an export (by name) and entries left out, filled while reading.
    """

    path: Path
    format: str
    guessed: bool = False
    channel: str | None = None
    include_actions: bool = False
    report: ReadReport = field(default_factory=ReadReport)

    @property
    def counts_files(self) -> bool:
        """Whether progress counts files (an export of many files) rather than bytes."""
        return self.format == "slack-export" or self.path.is_dir()

    def records(self, progress: ProgressCallback | None = None) -> Iterator[ChatRecord]:
        """The messages, in the file's order (a Slack export: channel by channel, each oldest first).

        Args:
            progress: Called now and then with (done, total): bytes, or files of a Slack export or of a
                folder of Discord exports (see `counts_files`).

        Raises:
            TextgenError: The file is not what its format says, in a way that stops reading it.
        """
        if self.format == "slack-export":
            yield from read_slack_export(self.path, self.report, progress, self.channel)
        elif self.format == "discord-json" and self.path.is_dir():
            yield from read_discord_folder(self.path, self.report, progress, self.channel)
        elif self.format == "discord-json":
            for record in read_discord_json(self.path, self.report, progress):
                if self.channel is None or self.channel.removeprefix("#") in (
                    record.channel_id,
                    record.channel_name,
                ):
                    yield record
                else:
                    raise TextgenError(
                        f"{self.path} holds channel #{record.channel_name} ({record.channel_id}), not "
                        f"{self.channel!r}; leave out --channel to import it"
                    )
        elif self.format == "discord-csv":
            yield from read_discord_csv(self.path, self.report, progress)
        elif self.format == "text":
            # A text is one document: read whole, line breaks and all.
            yield ChatRecord(read_whole(self.path))
        elif self.format == "lines":
            yield from line_records(read_lines(self.path, progress))
        elif self.format == "jsonl":
            yield from jsonl_records(read_lines(self.path, progress), str(self.path))
        elif self.format == "irc":
            reader = irc.IrcReader(
                include_actions=self.include_actions, file_date=irc.date_from_file_name(self.path.name)
            )
            for _number, line in read_lines(self.path, progress):
                message = reader.feed(line)
                if message is not None:
                    yield message
        else:
            raise unknown_format(self.format)


def open_source(
    path: Path | str, fmt: str = "auto", *, channel: str | None = None, include_actions: bool = False
) -> ChatSource:
    """A chat file or export ready to read; `fmt="auto"` detects the format (see `ChatSource.guessed`).

    Raises:
        TextgenError: A missing path, an unknown format, or a file `detect_format` refuses.
    """
    if fmt != "auto" and fmt not in FORMATS:
        raise unknown_format(fmt)
    path = Path(path)
    if not path.exists():
        raise TextgenError(f"corpus {path} does not exist; check the path")
    guessed = fmt == "auto"
    if guessed:
        fmt = detect_format(path)
    elif path.is_dir() and fmt not in ("slack-export", "discord-json"):
        raise TextgenError(
            f"corpus {path} is a directory; pass a file (or a Slack export or a folder of Discord exports)"
        )
    elif path.stat().st_size == 0:
        raise TextgenError(f"corpus {path} is empty; give a file with some text in it")
    if channel is not None and fmt not in CHANNEL_FORMATS:
        channel = None
    return ChatSource(path, fmt, guessed, channel, include_actions)
