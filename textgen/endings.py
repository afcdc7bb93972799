"""How long a reply may be, and where one that ran out of length ends: at its last sentence, else its
last whole word.

A sampled message often runs past the length a reply may have (the model gives the end of a message
less weight than the channel's real messages had). Cut at the limit, half of all replies stop
mid-sentence; cut back to a boundary, they read as messages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

# A sentence ends with . ! or ? (possibly repeated, or closed by a quote or bracket) before a space.
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)")
# A sentence end this far into the text is worth cutting back to; nearer the start, the word is.
MIN_KEPT_SHARE = 0.4


def end_at_boundary(text: str) -> str:
    """`text` cut after its last sentence end, when that keeps at least `MIN_KEPT_SHARE` of it; else
    before its last (possibly partial) word; else unchanged."""
    stripped = text.rstrip()
    ends = [match.end() for match in _SENTENCE_END.finditer(stripped)]
    if ends and ends[-1] >= MIN_KEPT_SHARE * len(stripped):
        return stripped[: ends[-1]]
    space = max(stripped.rfind(" "), stripped.rfind("\n"))
    if space > 0:
        return stripped[:space].rstrip(" ,;:-")
    return stripped


# With fewer recent messages than this, their lengths say too little: the fixed length applies.
MIN_RECENT_MESSAGES = 8
# No cap below this many tokens: a reply is never cut before its first word.
MIN_LENGTH = 8


def length_from_channel(
    recent: Sequence[str], default: int, ceiling: int, rng: np.random.Generator | None = None
) -> int:
    """The length cap, in tokens, of a reply in a channel whose latest messages are `recent`: the length
    of one of them, drawn at random, so that replies are as long as the channel's messages are, short
    and long alike (`SamplingParams.overrun` still lets a reply run on to end its message).

    Lengths are counted in UTF-8 bytes, which is at least the tokens of a byte- or character-level
    model. `default` when fewer than `MIN_RECENT_MESSAGES` messages are known; never above `ceiling`
    nor below `MIN_LENGTH` (unless `ceiling` is lower). `rng` draws (a fresh generator when None).
    """
    if len(recent) < MIN_RECENT_MESSAGES:
        return min(default, ceiling)
    rng = rng if rng is not None else np.random.default_rng()
    drawn = len(recent[int(rng.integers(len(recent)))].encode("utf-8"))
    return min(ceiling, max(MIN_LENGTH, drawn))
