"""Keeping sampled bytes valid UTF-8, so that a reply never shows U+FFFD for a cut character.

A byte-level model can sample any byte after any other: a continuation byte with no lead, a lead byte
followed by the end of the message, an overlong or surrogate encoding. Decoding such bytes with
replacement shows "�" to the reader. Here each decoding row carries a small state (how many continuation
bytes its current character still needs, and which range the next one must lie in), and sampling is
restricted to the bytes that keep the text valid: the end of a message only between characters.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from textgen.tokenizers import EOS_ID, NUM_SPECIAL

# (continuation bytes still needed, lowest and highest allowed value of the next byte)
Utf8State = tuple[int, int, int]
BOUNDARY: Utf8State = (0, 0, 0)

_ANY_CONTINUATION = (0x80, 0xBF)
# Lead byte -> (continuation bytes, allowed range of the first one), per RFC 3629: no overlong forms
# (E0 A0.., F0 90..), no surrogates (ED ..9F), nothing past U+10FFFF (F4 ..8F).
_LEADS: dict[int, tuple[int, tuple[int, int]]] = {
    **{lead: (1, _ANY_CONTINUATION) for lead in range(0xC2, 0xE0)},
    0xE0: (2, (0xA0, 0xBF)),
    **{lead: (2, _ANY_CONTINUATION) for lead in (*range(0xE1, 0xED), 0xEE, 0xEF)},
    0xED: (2, (0x80, 0x9F)),
    0xF0: (3, (0x90, 0xBF)),
    **{lead: (3, _ANY_CONTINUATION) for lead in range(0xF1, 0xF4)},
    0xF4: (3, (0x80, 0x8F)),
}


def advance(state: Utf8State, token: int) -> Utf8State:
    """The state after sampling byte token `token` (a token id, bytes shifted by the special ids)."""
    value = token - NUM_SPECIAL
    if not 0 <= value <= 0xFF:
        return state
    remaining = state[0]
    if remaining:
        return (remaining - 1, *_ANY_CONTINUATION) if remaining > 1 else BOUNDARY
    if value in _LEADS:
        needed, (low, high) = _LEADS[value]
        return (needed, low, high)
    return BOUNDARY


def complete(state: Utf8State) -> bool:
    """Whether the text so far ends between characters."""
    return state[0] == 0


@cache
def allowed_tokens(state: Utf8State, vocab_size: int) -> np.ndarray:
    """Booleans over the vocabulary: the tokens that keep the text valid UTF-8 after `state`.

    Special tokens other than the end of message are left as they are (sampling rules handle them).
    """
    allowed = np.ones(vocab_size, dtype=bool)
    byte_ids = np.arange(NUM_SPECIAL, NUM_SPECIAL + 256)
    values = byte_ids - NUM_SPECIAL
    if state[0]:
        allowed[byte_ids] = (values >= state[1]) & (values <= state[2])
        allowed[EOS_ID] = False
    else:
        allowed[byte_ids] = (values < 0x80) | np.isin(values, list(_LEADS))
    allowed.setflags(write=False)
    return allowed
