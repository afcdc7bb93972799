"""Reading one big JSON object whose bulk is an array, an item at a time, in bounded memory.

DiscordChatExporter writes a channel as `{"guild": …, "channel": …, "messages": [ … ], "messageCount": n}`;
a busy channel is hundreds of megabytes. `JsonObjectStream` reads the fields before the array whole and
hands out the array's items one by one, with only a chunk of the file in memory.

A value cut by the end of the chunk in memory is parsed again once more of the file is read, and each such
read doubles what is in memory, so that a long value is parsed a few times, not once per chunk; a value that
is broken rather than cut is reported where it breaks, and no value may be longer than `MAX_VALUE_CHARS`.
Reading a file, whole or broken, is linear in its size.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

_CHUNK = 1 << 20
_WHITESPACE = " \t\r\n"
# A DiscordChatExporter message is a few kilobytes; a value still open after this many characters is a
# broken file, not a big message.
MAX_VALUE_CHARS = 64 << 20
# A value cut by the end of the buffer fails to parse at the cut, or a few characters before it (a cut
# literal like `tru`, a cut `\\u00e9` escape), or at its start for a cut string; an error further from the
# end than this, other than an unterminated string, is in the file itself.
_CUT_MARGIN = 16


class JsonStreamError(ValueError):
    """The file is not the JSON object expected; the message says where."""


class JsonObjectStream:
    """The top-level fields of a JSON object, and the items of one array field as a stream.

    Args:
        handle: The file, opened as text.
        array_key: The field whose items `items()` yields.

    Attributes:
        fields: The fields read so far (those before the array once `items()` yields its first item).
    """

    def __init__(self, handle: IO[str], array_key: str) -> None:
        self._handle = handle
        self._array_key = array_key
        self._buffer = ""
        self._position = 0
        self._eof = False
        # Characters dropped from the front of the buffer, so that errors name a place in the file.
        self._consumed = 0
        self._decoder = json.JSONDecoder()
        self.fields: dict[str, Any] = {}

    def items(self) -> Iterator[Any]:
        """The array's items in order; fields after the array are read into `fields` at the end."""
        self._skip_whitespace()
        self._expect("{")
        first = True
        while True:
            self._skip_whitespace()
            if self._peek() == "}":
                return
            if not first:
                self._expect(",")
                self._skip_whitespace()
            first = False
            key = self._value()
            if not isinstance(key, str):
                raise JsonStreamError(f"expected a field name at character {self._offset()}")
            self._skip_whitespace()
            self._expect(":")
            self._skip_whitespace()
            if key == self._array_key and self._peek() == "[":
                yield from self._array()
            else:
                self.fields[key] = self._value()

    def _array(self) -> Iterator[Any]:
        self._expect("[")
        first = True
        while True:
            self._skip_whitespace()
            if self._peek() == "]":
                self._position += 1
                return
            if not first:
                self._expect(",")
                self._skip_whitespace()
            first = False
            yield self._value()

    def _value(self) -> Any:
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._position)
            except json.JSONDecodeError as error:
                if self._eof or not self._may_be_cut(error):
                    # Some messages end with "at" ("Unterminated string starting at").
                    where = error.msg.removesuffix(" at")
                    raise JsonStreamError(f"{where} at character {self._offset(error.pos)}") from None
                self._read_more(error.msg)
                continue
            if end == len(self._buffer) and not self._eof:
                # A number at the very end might go on in the next chunk.
                self._read_more("a value that does not end")
                continue
            self._position = end
            return value

    def _may_be_cut(self, error: json.JSONDecodeError) -> bool:
        return error.msg.startswith("Unterminated string") or error.pos >= len(self._buffer) - _CUT_MARGIN

    def _read_more(self, problem: str) -> None:
        """Read as much again as the value being parsed holds, so that parsing it again is worth it."""
        pending = len(self._buffer) - self._position
        if pending > MAX_VALUE_CHARS:
            raise JsonStreamError(
                f"{problem} at character {self._offset()}: "
                f"a value over {MAX_VALUE_CHARS >> 20} MiB characters"
            )
        self._fill(max(_CHUNK, pending))

    def _skip_whitespace(self) -> None:
        while True:
            while self._position < len(self._buffer) and self._buffer[self._position] in _WHITESPACE:
                self._position += 1
            if self._position < len(self._buffer) or self._eof:
                return
            self._fill()

    def _peek(self) -> str:
        if self._position >= len(self._buffer) and not self._eof:
            self._fill()
        if self._position >= len(self._buffer):
            raise JsonStreamError(f"the file ends early, at character {self._offset()}")
        return self._buffer[self._position]

    def _expect(self, character: str) -> None:
        found = self._peek()
        if found != character:
            raise JsonStreamError(f"expected {character!r} at character {self._offset()}, found {found!r}")
        self._position += 1

    def _fill(self, size: int = 0) -> None:
        # Drop what was consumed, so memory holds about one chunk plus the value being read.
        self._consumed += self._position
        self._buffer = self._buffer[self._position :]
        self._position = 0
        chunk = self._handle.read(size or _CHUNK)
        if not chunk:
            self._eof = True
        self._buffer += chunk

    def _offset(self, position: int | None = None) -> int:
        return self._consumed + (self._position if position is None else position)
