"""Counts in the command line's sentences: "1 message", "2 messages"."""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """`count` and `noun`, with an s unless the count is one (nouns here all take an s)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
