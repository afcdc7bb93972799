"""The slur list: words chatsmith never writes and the base model never learns.

It is always on (nothing switches it off) and lives in a data file, `textgen/data/slurs.txt`, matched
with `textgen.wordlist`. Matched words are never logged or shown: callers only learn that, and where,
a slur is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from importlib import resources
from typing import TypeVar

from textgen.wordlist import WordList

Item = TypeVar("Item")


@functools.cache
def slur_list() -> WordList:
    """The packaged slur list (read once)."""
    text = resources.files("textgen").joinpath("data/slurs.txt").read_text(encoding="utf-8")
    return WordList.from_lines(text.splitlines())


def contains_slur(text: str) -> bool:
    """Whether `text` holds a slur."""
    return slur_list().contains(text)


def without_slurs(messages: Iterable[Item], text_of: Callable[[Item], str] = str) -> tuple[list[Item], int]:
    """The messages that hold no slur, and how many were dropped: the one corpus policy of every model,
    the base model's (`chatsmith train --drop-slurs`) and the trainer's jobs alike.

    Args:
        messages: Texts, or records whose text `text_of` gives.
        text_of: The text of a record (default: `messages` are the texts themselves).
    """
    words = slur_list()
    kept: list[Item] = []
    dropped = 0
    for message in messages:
        if words.contains(text_of(message)):
            dropped += 1
        else:
            kept.append(message)
    return kept, dropped
