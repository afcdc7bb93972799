"""Where a reply that ran out of length ends: at its last sentence, else its last whole word.

A sampled message often runs past the length a reply may have (the model gives the end of a message
less weight than the channel's real messages had). Cut at the limit, half of all replies stop
mid-sentence; cut back to a boundary, they read as messages.
"""

from __future__ import annotations

import re

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
