"""Files of lines, read as a stream: one message per line, JSON lines, and a whole file as one text."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from textgen.errors import TextgenError
from textgen.formats.records import ChatRecord, ProgressCallback, parse_timestamp

# How often (in lines) to report progress.
_PROGRESS_EVERY = 20000


def read_lines(path: Path, progress: ProgressCallback | None = None) -> Iterator[tuple[int, str]]:
    """(line number, line without its break) of a UTF-8 file, one at a time.

    Raises:
        TextgenError: The file is not UTF-8; the message names the line and how to convert the file.
    """
    total = path.stat().st_size
    # The text layer decodes in large chunks in C, which reads a big log several times faster than
    # decoding each line in Python; the line of a bad byte is looked for only once there is one.
    with path.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig") as handle:
        try:
            for number, line in enumerate(handle, start=1):
                yield number, line.rstrip("\n")
                if progress is not None and number % _PROGRESS_EVERY == 0:
                    progress(raw.tell(), total)
        except UnicodeDecodeError:
            raise _not_utf8(path) from None
    if progress is not None:
        progress(total, total)


def _not_utf8(path: Path) -> TextgenError:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                return TextgenError(
                    f"corpus {path} is not UTF-8 (bad byte {raw[error.start]:#x} on line {number}); convert "
                    "it, for example with `iconv -f latin1 -t utf-8`"
                )
    return TextgenError(
        f"corpus {path} is not UTF-8; convert it, for example with `iconv -f latin1 -t utf-8`"
    )


def read_whole(path: Path) -> str:
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


def is_json_message(line: str) -> bool:
    """Whether `line` is a JSON object with a "text" string."""
    try:
        value = json.loads(line)
    except ValueError:
        return False
    return isinstance(value, dict) and isinstance(value.get("text"), str)


def line_records(lines: Iterable[tuple[int, str]]) -> Iterator[ChatRecord]:
    """One message per non-empty line, stripped."""
    for _number, line in lines:
        if line.strip():
            yield ChatRecord(line.strip())


def jsonl_records(lines: Iterable[tuple[int, str]], source: str) -> Iterator[ChatRecord]:
    """Messages of JSON lines `{"text": …}`, with "author" (or "user"), "time" and "id" when present.

    Raises:
        TextgenError: A line is not JSON or has no "text" string; the message names the line.
    """
    for number, line in lines:
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
        if not value["text"].strip():
            continue
        author = value.get("author") if value.get("author") is not None else value.get("user")
        message_id = value.get("id")
        yield ChatRecord(
            value["text"],
            author_id=str(author) if author is not None else None,
            author_name=str(author) if author is not None else None,
            time=parse_timestamp(value.get("time") or value.get("timestamp")),
            message_id=str(message_id) if message_id is not None else None,
        )
