"""The model's state after reading a conversation, kept so that the next reply to it does not read it again.

A reply after a conversation first feeds the conversation's tokens to the model (`textgen.context`): one
recurrent step per token, as many steps as the reply itself has. Replies in a channel follow the same
conversation until someone writes again, so a generator keeps the state after each recent prompt (all
of it but its last token, which is stepped for the first logits) and starts a request whose prompt it
has read before from that state. The state is what reading would compute again, so the text is the same.

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

# Prompts shorter than this are read again: a few steps cost less than keeping their state.
MIN_REMEMBERED_TOKENS = 32
# States kept per generator (about 1.5 KB each for a GRU of 384 units): the conversations of the
# channels one model serves at a time.
DEFAULT_LIMIT = 64


class Reading(Protocol):
    """What `ContextStates` needs of a decoding row: its tokens still to feed, and the key of what it
    reads (None once it is remembered, or when it is not to be)."""

    pending: list[int]
    context_key: tuple[int, ...] | None


class ContextStates:
    """The states after the most recently read prompts of one stepper. Thread-safe.

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
        """The batch's first state: each row's remembered state where its prompt was read before (its
        `pending` then keeps only the last token), else the zero state. Sets each row's key."""
        found = []
        for row in rows:
            key = tuple(row.pending[:-1])
            row.context_key = key if self.limit and len(key) >= MIN_REMEMBERED_TOKENS else None
            found.append(self._get(row.context_key) if row.context_key is not None else None)
        if all(state is None for state in found):
            return self.stepper.initial_state(len(rows))
        joined: Any = None
        for row, state in zip(rows, found, strict=True):
            if state is not None:
                row.pending = row.pending[-1:]
                row.context_key = None
            else:
                state = self.stepper.initial_state(1)
            joined = state if joined is None else self.stepper.concat(joined, state)
        return joined

    def remember(self, rows: Sequence[Reading], state: Any) -> bool:
        """Keep the state of each row that has just read all its prompt but the last token; whether
        some row is still reading a prompt to keep."""
        waiting = False
        for position, row in enumerate(rows):
            if row.context_key is not None and len(row.pending) == 1:
                kept = _read_only(self.stepper.select(state, np.array([position], dtype=np.int64)))
                self._put(row.context_key, kept)
                row.context_key = None
            waiting = waiting or row.context_key is not None
        return waiting

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
