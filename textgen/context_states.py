"""The model's state after reading a conversation, kept so that the next reply to it does not read it again.

A reply after a conversation first feeds the conversation's tokens to the model (`textgen.context`): one
recurrent step per token, as many steps as the reply itself has. Replies in a channel follow the same
conversation until someone writes again, so a generator keeps the state after each recent prompt (all
of it but its last token, which is stepped for the first logits) and starts a request whose prompt it
has read before from that state. The state is what reading would compute again, so the text is the same.

When someone writes, the next conversation is the last one less its oldest message, plus the new one
(the bots read the last two messages). So while a single request reads its conversation, the last
complete message is also read from the zero state, in the same steps as a second batch row (a row costs
little next to the weights every step reads), and that state is kept too: the next conversation starts
with that message, resumes from it and reads only what is new. A prompt resumes from the longest
remembered part that ends at a message's end.

Only steppers whose state carries everything read so far (`Stepper.carries_state`) are served; a window
model re-reads its window at every step anyway.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from textgen.architectures import Stepper
from textgen.tokenizers import BOS_ID, EOS_ID

# Prompts shorter than this are read again: a few steps cost less than keeping their state.
MIN_REMEMBERED_TOKENS = 32
# A last message shorter than this is not read twice: reading it again after it costs little.
MIN_MESSAGE_TOKENS = 16
# States kept per generator (about 1.5 KB each for a GRU of 384 units): the conversations of the
# channels one model serves at a time.
DEFAULT_LIMIT = 64


class Reading(Protocol):
    """What `ContextStates` needs of a decoding row: its tokens still to feed, the key of what it reads
    (None once it is remembered, or when it is not to be), and whether it resumed from a kept state."""

    pending: list[int]
    context_key: tuple[int, ...] | None
    resumed: bool


class ContextStates:
    """The states after the most recently read prompts of one stepper, and after their last messages
    read alone. Thread-safe.

    Args:
        stepper: The stepper whose states these are.
        limit: Most states kept (the least recently used go first).
    """

    def __init__(self, stepper: Stepper, limit: int = DEFAULT_LIMIT) -> None:
        self.stepper = stepper
        self.limit = limit if stepper.carries_state else 0
        self._lock = threading.Lock()
        self._states: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._nbytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes of the states kept."""
        return self._nbytes

    def start(self, rows: Sequence[Reading]) -> Any:
        """The batch's first state: each row's remembered state where its prompt, or the longest part of
        it that ends at a message's end, was read before (its `pending` then keeps what follows, or only
        the last token), else the zero state. Sets each row's key and `resumed`."""
        found = []
        for row in rows:
            key = tuple(row.pending[:-1])
            row.context_key = key if self.limit and len(key) >= MIN_REMEMBERED_TOKENS else None
            row.resumed = False
            found.append(self._resume(row, key) if self.limit else None)
        if all(state is None for state in found):
            return self.stepper.initial_state(len(rows))
        joined: Any = None
        for state in found:
            state = state if state is not None else self.stepper.initial_state(1)
            joined = state if joined is None else self.stepper.concat(joined, state)
        return joined

    def read_alone(self, row: Reading, state: Any) -> Any:
        """Feed a single row all its pending tokens but the last, and remember its state (when keyed) and
        that of its last complete message read from the zero state; returns the row's state."""
        tokens = row.pending[:-1]
        ends = [position + 1 for position, token in enumerate(tokens) if token == EOS_ID]
        start = ends[-2] if len(ends) > 1 else 0
        message = tuple(tokens[start : ends[-1]]) if ends else ()
        read_with = 0  # tokens already read, with that message
        if (
            self.limit
            and len(message) >= MIN_MESSAGE_TOKENS
            and message[0] == BOS_ID
            and self._get(message) is None
        ):
            state = self._read(tokens[:start], state)
            if start == 0 and not row.resumed:
                # The row reads that message from the zero state itself.
                state = self._read(message, state)
                self._put(message, _read_only(self._row(state, 0)))
            else:
                both = self.stepper.concat(state, self.stepper.initial_state(1))
                both = self._read(message, both, rows=2)
                self._put(message, _read_only(self._row(both, 1)))
                state = self._row(both, 0)
            read_with = start + len(message)
        state = self._read(tokens[read_with:], state)
        del row.pending[:-1]
        self.remember([row], state)
        return state

    def remember(self, rows: Sequence[Reading], state: Any) -> bool:
        """Keep the state of each row that has just read all its prompt but the last token; whether
        some row is still reading a prompt to keep."""
        waiting = False
        for position, row in enumerate(rows):
            if row.context_key is not None and len(row.pending) == 1:
                kept = _read_only(self._row(state, position))
                self._put(row.context_key, kept)
                row.context_key = None
            waiting = waiting or row.context_key is not None
        return waiting

    def _resume(self, row: Reading, key: tuple[int, ...]) -> Any:
        """The state remembered for `key`, else for its longest part that ends at a message's end (the
        row's `pending` then keeps what follows); None when there is neither."""
        state = self._get(key)
        if state is not None:
            row.pending = row.pending[-1:]
            row.context_key = None
            row.resumed = True
            return state
        for end in range(len(key) - 1, MIN_MESSAGE_TOKENS - 1, -1):
            if key[end - 1] == EOS_ID and (state := self._get(key[:end])) is not None:
                row.pending = row.pending[end:]
                row.resumed = True
                return state
        return None

    def _read(self, tokens: Sequence[int], state: Any, rows: int = 1) -> Any:
        for token in tokens:
            state = self.stepper.read(np.full(rows, token, dtype=np.int64), state)
        return state

    def _row(self, state: Any, row: int) -> Any:
        return self.stepper.select(state, np.array([row], dtype=np.int64))

    def _get(self, key: tuple[int, ...]) -> Any:
        with self._lock:
            state = self._states.get(key)
            if state is not None:
                self._states.move_to_end(key)
            return state

    def _put(self, key: tuple[int, ...], state: Any) -> None:
        with self._lock:
            if key in self._states:
                return
            self._states[key] = state
            self._nbytes += _state_bytes(state)
            while len(self._states) > self.limit:
                _, dropped = self._states.popitem(last=False)
                self._nbytes -= _state_bytes(dropped)


def _arrays(state: Any) -> list[np.ndarray]:
    if isinstance(state, np.ndarray):
        return [state]
    return [array for part in state for array in _arrays(part)]


def _read_only(state: Any) -> Any:
    """`state` with its arrays made read-only: a remembered state starts many batches."""
    for array in _arrays(state):
        array.setflags(write=False)
    return state


def _state_bytes(state: Any) -> int:
    return sum(int(array.nbytes) for array in _arrays(state))
