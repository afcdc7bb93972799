"""Corpus loading: plain text, one message per line, JSONL messages, and IRC logs.

A corpus is a list of messages (a plain-text file is one message). `--format auto` looks at the first
lines and says what it guessed, so a wrong guess is visible and can be overridden.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from textgen.errors import TextgenError

FORMATS = ("text", "lines", "jsonl", "irc")

# `[09:14] <nick> message`; seconds and the usual nick prefixes (@, +) are optional.
IRC_MESSAGE = re.compile(r"^\[(\d{1,2}:\d{2}(?::\d{2})?)\]\s+<[@+%&~]?([^>\s]+)>\s?(.*)$")
# Anything else timestamped or starting with `===` / `*` / `-!-` is an event (joins, nick changes, actions).
IRC_EVENT = re.compile(r"^(\[\d{1,2}:\d{2}(?::\d{2})?\]\s+)?(===|\*|-!-|--)\s")

_SNIFF_LINES = 200


@dataclass
class Corpus:
    """Messages read from one file, with their authors where the format has them."""

    messages: list[str]
    format: str
    guessed: bool = False
    authors: list[str | None] = field(default_factory=list)
    source: str = ""

    @property
    def chars(self) -> int:
        return sum(len(message) for message in self.messages)


def read_utf8(path: Path) -> str:
    """The text of `path`, with one-line errors for a missing, empty or non-UTF-8 file."""
    path = Path(path)
    if not path.exists():
        raise TextgenError(f"corpus {path} does not exist; check the path")
    if path.is_dir():
        raise TextgenError(f"corpus {path} is a directory; pass a text file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TextgenError(
            f"corpus {path} is not UTF-8 (bad byte at offset {error.start}); convert it, "
            f"for example with `iconv -f latin1 -t utf-8`"
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise TextgenError(f"corpus {path} is empty; give a file with some text in it")
    return text


def guess_format(text: str) -> str:
    """The most likely format of `text`, from its first non-empty lines."""
    lines = [line for line in text.splitlines()[: _SNIFF_LINES * 2] if line.strip()][:_SNIFF_LINES]
    if not lines:
        return "text"
    json_lines = sum(1 for line in lines if _is_json_message(line))
    if json_lines >= 0.8 * len(lines):
        return "jsonl"
    irc_lines = sum(1 for line in lines if IRC_MESSAGE.match(line) or IRC_EVENT.match(line))
    if irc_lines >= 0.6 * len(lines):
        return "irc"
    # Prose separates paragraphs with blank lines and wraps long ones; chat exports put one message
    # per line with no blank lines in between.
    all_lines = text.splitlines()[: _SNIFF_LINES * 2]
    blank_share = sum(1 for line in all_lines if not line.strip()) / max(1, len(all_lines))
    return "text" if blank_share >= 0.05 else "lines"


def _is_json_message(line: str) -> bool:
    try:
        value = json.loads(line)
    except ValueError:
        return False
    return isinstance(value, dict) and isinstance(value.get("text"), str)


def parse_corpus(text: str, fmt: str, source: str = "<text>") -> Corpus:
    """Messages of `text` in format `fmt` (one of FORMATS)."""
    if fmt == "text":
        return Corpus([text], "text", source=source, authors=[None])
    if fmt == "lines":
        messages = [line.strip() for line in text.splitlines() if line.strip()]
        return Corpus(messages, "lines", source=source, authors=[None] * len(messages))
    if fmt == "jsonl":
        return _parse_jsonl(text, source)
    if fmt == "irc":
        return _parse_irc(text, source)
    raise TextgenError(f"unknown corpus format {fmt!r}; use one of: auto, {', '.join(FORMATS)}")


def _parse_jsonl(text: str, source: str) -> Corpus:
    messages: list[str] = []
    authors: list[str | None] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            raise TextgenError(
                f'{source} line {number} is not JSON; each line must be an object like {{"text": ...}}'
            ) from None
        if not isinstance(value, dict) or not isinstance(value.get("text"), str):
            raise TextgenError(
                f'{source} line {number} has no "text" string; each line needs {{"text": ...}}'
            )
        if value["text"].strip():
            messages.append(value["text"])
            author = value.get("author") or value.get("user")
            authors.append(str(author) if author is not None else None)
    return Corpus(messages, "jsonl", source=source, authors=authors)


def _parse_irc(text: str, source: str) -> Corpus:
    messages: list[str] = []
    authors: list[str | None] = []
    for line in text.splitlines():
        match = IRC_MESSAGE.match(line)
        if match and match.group(3).strip():
            authors.append(match.group(2))
            messages.append(match.group(3).strip())
    return Corpus(messages, "irc", source=source, authors=authors)


def load_corpus(path: Path | str, fmt: str = "auto") -> Corpus:
    """Read a corpus file; `fmt="auto"` guesses the format (see `Corpus.guessed`)."""
    if fmt != "auto" and fmt not in FORMATS:
        raise TextgenError(f"unknown corpus format {fmt!r}; use one of: auto, {', '.join(FORMATS)}")
    path = Path(path)
    text = read_utf8(path)
    guessed = fmt == "auto"
    if guessed:
        fmt = guess_format(text)
    corpus = parse_corpus(text, fmt, source=str(path))
    corpus.guessed = guessed
    if not corpus.messages:
        raise TextgenError(f"corpus {path} has no messages in format {fmt!r}; check --format")
    return corpus
