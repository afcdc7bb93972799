"""Corpus loading: a chat file or export as the list of messages a model trains on.

The formats and their detection are in `textgen.formats`; this module gathers a file's messages into a
`Corpus`, whose `messages` are the texts `chatsmith train` learns and whose `records` keep each message's
author, time and channel for importers. `--format auto` says what it guessed, so a wrong guess is visible
and can be overridden.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from textgen.errors import TextgenError
from textgen.formats import irc
from textgen.formats.plain import jsonl_records, line_records, read_whole
from textgen.formats.records import ChatRecord, ProgressCallback
from textgen.formats.sources import FORMATS, guess_format, open_source, unknown_format

__all__ = [
    "FORMATS",
    "Corpus",
    "address_of",
    "guess_format",
    "load_corpus",
    "parse_corpus",
    "read_utf8",
    "without_addressee",
]

# IRC's way to speak to someone: their nick, a colon or comma, then the message ("alice: try this").
_ADDRESS = re.compile(r"\s*([^\s:,]{1,32})[:,]\s+(?=\S)")

# The old name of `read_whole`, kept for callers outside textgen.
read_utf8 = read_whole


@dataclass
class Corpus:
    """Messages read from one file or export, with their authors where the format has them.

    Attributes:
        messages: The texts, in time order where the format has times, else in the file's order.
        format: The format they were read in.
        guessed: Whether the format was guessed.
        authors: Each message's author id (or nick), None where the format names nobody.
        source: The file it was read from.
        records: Each message with its author, time and channel (see `textgen.formats.ChatRecord`).
        broken: Parts of an export that could not be read, as `name: reason`.
        notes: Parts of an export left out on purpose (private conversations), a sentence each.
    """

    messages: list[str]
    format: str
    guessed: bool = False
    authors: list[str | None] = field(default_factory=list)
    source: str = ""
    records: list[ChatRecord] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def chars(self) -> int:
        return sum(len(message) for message in self.messages)

    @classmethod
    def from_records(
        cls, records: list[ChatRecord], fmt: str, *, source: str = "", guessed: bool = False
    ) -> Corpus:
        """A corpus of `records`; a Slack export's channels, read one after another, are merged by time."""
        if fmt == "slack-export" and all(record.time is not None for record in records):
            records = sorted(records, key=lambda record: record.time)  # type: ignore[arg-type, return-value]
        speakers = {record.author_id.casefold() for record in records if record.author_id}
        return cls(
            [without_addressee(record.text, speakers) for record in records],
            fmt,
            guessed,
            [record.author_id for record in records],
            source,
            records,
        )


def without_addressee(text: str, speakers: Collection[str]) -> str:
    """`text` without the address at its start when it names one of `speakers` ("alice: try this" ->
    "try this"), so a model does not learn to open its replies with the names of its corpus's people.

    Only the corpus's own speakers count, so "Note: ..." or "Also, ..." stay whole.

    Args:
        text: A message.
        speakers: The corpus's author names, casefolded.
    """
    address = address_of(text)
    if address is None:
        return text
    name, length = address
    return text[length:] if name in speakers else text


def address_of(text: str) -> tuple[str, int] | None:
    """The name `text` opens with as an address, casefolded, and the characters the address takes
    ("alice: try this" -> ("alice", 7)); None when it opens with none."""
    match = _ADDRESS.match(text)
    return (match.group(1).casefold(), match.end()) if match is not None else None


def parse_corpus(text: str, fmt: str, source: str = "<text>") -> Corpus:
    """Messages of `text` in one of the text formats (text, lines, jsonl, irc)."""
    lines = list(enumerate(text.splitlines(), start=1))
    if fmt == "text":
        records = [ChatRecord(text)]
    elif fmt == "lines":
        records = list(line_records(lines))
    elif fmt == "jsonl":
        records = list(jsonl_records(lines, source))
    elif fmt == "irc":
        reader = irc.IrcReader(file_date=irc.date_from_file_name(Path(source).name))
        records = [record for _number, line in lines if (record := reader.feed(line)) is not None]
    elif fmt in FORMATS:
        raise TextgenError(f"format {fmt!r} is read from a file or folder; use load_corpus")
    else:
        raise unknown_format(fmt)
    return Corpus.from_records(records, fmt, source=source)


def load_corpus(
    path: Path | str,
    fmt: str = "auto",
    *,
    channel: str | None = None,
    include_actions: bool = False,
    progress: ProgressCallback | None = None,
    keep_records: bool = True,
) -> Corpus:
    """Read a chat file or export; `fmt="auto"` guesses the format (see `Corpus.guessed`).

    Args:
        path: The file, or a Slack export's zip or folder.
        fmt: "auto" or one of FORMATS.
        channel: In a Slack export, the one channel to read (by name or id).
        include_actions: Keep IRC actions (`* nick waves`) as messages.
        progress: Called now and then with (done, total) while reading.
        keep_records: Fill `Corpus.records`; training needs only the texts, and a big log's records
            cost memory that the model could use.

    Raises:
        TextgenError: The file is missing, unreadable, refused by the guess, or has no messages.
    """
    source = open_source(path, fmt, channel=channel, include_actions=include_actions)
    if source.format == "slack-export" or keep_records:
        corpus = Corpus.from_records(
            list(source.records(progress)), source.format, source=str(source.path), guessed=source.guessed
        )
        if not keep_records:
            corpus.records = []
    else:
        corpus = Corpus([], source.format, source.guessed, [], str(source.path))
        for record in source.records(progress):
            corpus.messages.append(record.text)
            corpus.authors.append(record.author_id)
        # Speakers are known only once the whole log is read; the messages are rewritten in place.
        speakers = {author.casefold() for author in set(corpus.authors) if author}
        for index, message in enumerate(corpus.messages):
            corpus.messages[index] = without_addressee(message, speakers)
    corpus.broken = list(source.report.broken)
    corpus.notes = list(source.report.notes)
    if not corpus.messages:
        raise TextgenError(
            f"corpus {source.path} has no messages in format {source.format!r}; check --format"
        )
    return corpus
