"""Held-out parts of a corpus: validation (to pick the best weights) and test (for the reported figure).

Both are taken from the end of the corpus, the test part last: for chat, the newest messages are what a
model will be asked to continue. Nothing is tuned on the test part.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def split_validation(messages: list[str], fraction: float) -> tuple[list[str], list[str]]:
    """Hold out the last `fraction` of the characters: whole messages, or the tail of a single document."""
    if fraction <= 0:
        return messages, []
    total = sum(len(message) for message in messages)
    target = total * (1 - fraction)
    if len(messages) == 1:
        cut = int(target)
        return [messages[0][:cut]], [messages[0][cut:]]
    cumulative = np.cumsum([len(message) for message in messages])
    index = int(np.searchsorted(cumulative, target, side="right"))
    index = min(max(index, 1), len(messages) - 1)
    return messages[:index], messages[index:]


def split_holdout(
    messages: list[str], val_fraction: float, test_fraction: float
) -> tuple[list[str], list[str], list[str]]:
    """`(train, validation, test)`: the test part is the last `test_fraction` of the characters, the
    validation part the `val_fraction` before it (both fractions of the whole corpus)."""
    rest, test = split_validation(messages, test_fraction)
    kept = 1.0 - test_fraction
    train, validation = split_validation(rest, val_fraction / kept if kept > 0 else 0.0)
    return train, validation, test


def head_of(messages: Sequence[str], max_chars: int) -> list[str]:
    """The first messages of `messages` up to `max_chars` characters (at least one; a single document is
    cut at `max_chars`). Bounds the cost of a final evaluation."""
    if len(messages) == 1:
        return [messages[0][:max_chars]]
    kept: list[str] = []
    chars = 0
    for message in messages:
        if kept and chars + len(message) > max_chars:
            break
        kept.append(message)
        chars += len(message)
    return kept
