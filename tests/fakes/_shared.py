"""Pieces shared by the Discord and Slack fakes: an awaitable event record and an uploaded file."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiohttp import BodyPartReader, web

T = TypeVar("T")


@dataclass
class UploadedFile:
    """One file part of a multipart request (`files[N]` on Discord, `file` on Slack) or a raw upload."""

    field: str
    filename: str | None
    content_type: str | None
    data: bytes


class EventLog(Generic[T]):
    """A list the fake appends to as things happen on the wire; a test reads it or waits on it.

    It behaves like a read-only list (`len`, indexing, iteration). `wait_for` returns the first item,
    old or new, that matches a predicate, so a test never misses an event that arrived before it began
    to wait.
    """

    def __init__(self, describe: Callable[[T], str] = repr) -> None:
        self._items: list[T] = []
        self._describe = describe
        # Replaced on every append: waiters hold the old one, which is set, so they wake and look again.
        self._changed: asyncio.Event | None = None

    def append(self, item: T) -> None:
        self._items.append(item)
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._items))

    def __getitem__(self, index: int) -> T:
        return self._items[index]

    def __repr__(self) -> str:
        return f"EventLog({self._items!r})"

    def clear(self) -> None:
        self._items.clear()

    async def wait_for(
        self, predicate: Callable[[T], bool] | None = None, timeout: float = 2.0, *, what: str = "item"
    ) -> T:
        """Return the first item that satisfies `predicate` (any item when None).

        Raises:
            TimeoutError: none matched within `timeout` seconds; the message lists what was seen, so a
                failing test says what the client did instead.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        checked = 0
        while True:
            for item in self._items[checked:]:
                if predicate is None or predicate(item):
                    return item
            checked = len(self._items)
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = "; ".join(self._describe(item) for item in self._items[-10:]) or "nothing"
                raise TimeoutError(f"no matching {what} within {timeout:.2f}s; last seen: {seen}")
            if self._changed is None:
                self._changed = asyncio.Event()
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)


async def read_multipart(request: web.Request) -> tuple[dict[str, bytes], list[UploadedFile]]:
    """Split a multipart body into plain fields (name -> bytes) and file parts (those with a filename)."""
    fields: dict[str, bytes] = {}
    files: list[UploadedFile] = []
    reader = await request.multipart()
    async for part in reader:
        # Nested multipart bodies do not occur on these APIs; skip rather than guess.
        if not isinstance(part, BodyPartReader):
            continue
        data = await part.read(decode=True)
        if part.filename is not None:
            files.append(
                UploadedFile(part.name or "", part.filename, part.headers.get("Content-Type"), bytes(data))
            )
        else:
            fields[part.name or ""] = bytes(data)
    return fields, files
