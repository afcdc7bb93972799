"""Reading one big JSON object whose bulk is an array, an item at a time, in bounded memory.

DiscordChatExporter writes a channel as `{"guild": …, "channel": …, "messages": [ … ], "messageCount": n}`;
a busy channel is hundreds of megabytes. `JsonObjectStream` reads the fields before the array whole and
hands out the array's items one by one, with only a chunk of the file in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

_CHUNK = 1 << 20
_WHITESPACE = " \t\r\n"


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
        decoder = json.JSONDecoder()
        while True:
            try:
                value, end = decoder.raw_decode(self._buffer, self._position)
            except json.JSONDecodeError as error:
                # A value cut by the end of the chunk parses once more of the file is read; a number at
                # the very end might parse short, which the next token check then reports.
                if self._eof:
                    raise JsonStreamError(f"{error.msg} at character {self._offset(error.pos)}") from None
                self._fill()
                continue
            if end == len(self._buffer) and not self._eof:
                self._fill()
                continue
            self._position = end
            return value

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

    def _fill(self) -> None:
        # Drop what was consumed, so memory holds about one chunk plus the value being read.
        self._consumed += self._position
        self._buffer = self._buffer[self._position :]
        self._position = 0
        chunk = self._handle.read(_CHUNK)
        if not chunk:
            self._eof = True
        self._buffer += chunk

    def _offset(self, position: int | None = None) -> int:
        return self._consumed + (self._position if position is None else position)
