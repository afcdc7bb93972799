"""The copy guard: does a generated text repeat a training message?

A reply copies when it repeats `WORD_N` (8) or more consecutive words of one training message, or
`CHAR_N` (60) or more consecutive characters of one. The guard is built from the training messages when
a bundle is saved and travels in it (`copyguard.npz`); it holds 64-bit hashes, never the text.

- Words: the hash of every run of 8 consecutive words (case-folded, punctuation ignored) inside one
  message. Every 8-word copy is found.
- Characters: hashes of the 60-character windows of a message (lower case), winnowed (Schleimer, Wilkerson
  and Aiken, SIGMOD 2003): of every `CHAR_WINDOW` consecutive windows only the smallest hash is kept,
  which stores about a quarter of them. A reply is checked at every position, so any copy of
  `CHAR_N + CHAR_WINDOW - 1` (67) or more characters is found for certain, and shorter ones of 60 or
  more often; text with spaces in it is caught by the word rule well before that.

Hashes are looked up with a binary search in sorted arrays: a few microseconds per reply.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textgen.errors import TextgenError

WORD_N = 8
CHAR_N = 60
CHAR_WINDOW = 8
FILE = "copyguard.npz"
FORMAT_VERSION = 1
# Messages are hashed in chunks of about this many characters, so building the guard for a large corpus
# never holds more than a few tens of MB of temporary arrays.
_CHUNK_CHARS = 1_000_000
# Hashes of chunks gathered before they are merged into the guard's sorted whole (8 MB).
_MERGE_AT_LEAST = 1 << 20
_WORD = re.compile(r"\w+")
# Up to this many windows, hashes are one matrix product (a reply); a corpus chunk goes offset by offset.
_SHORT = 4096
_SEPARATOR = 0  # NUL never occurs in chat text; it splits messages in the joined text
_NONE = np.uint64(np.iinfo(np.uint64).max)
# Fixed random odd multipliers: the hash of a window is a mixed weighted sum of what is in it.
_MULTIPLIERS = (
    np.random.default_rng(20261130).integers(1, 2**63, size=max(WORD_N, CHAR_N), dtype=np.uint64) | 1
)


@functools.lru_cache(maxsize=1 << 16)
def _word_id(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def _mix(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser: spreads the weighted sums over all 64 bits."""
    values = values ^ (values >> np.uint64(30))
    values = values * np.uint64(0xBF58476D1CE4E5B9)
    values = values ^ (values >> np.uint64(27))
    values = values * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


def _window_hashes(symbols: np.ndarray, n: int) -> np.ndarray:
    """The hash of every window of `n` consecutive symbols (uint64); empty when there are fewer."""
    count = len(symbols) - n + 1
    if count <= 0:
        return np.zeros(0, np.uint64)
    if count <= _SHORT:
        # A reply: one product of the window view with the multipliers (integer matmul wraps like the sum).
        windows = np.lib.stride_tricks.sliding_window_view(symbols, n)
        return _mix(windows @ _MULTIPLIERS[:n])
    total = np.zeros(count, np.uint64)
    for offset in range(n):
        total += symbols[offset : offset + count] * _MULTIPLIERS[offset]
    return _mix(total)


def _inside_one_message(is_separator: np.ndarray, n: int) -> np.ndarray:
    """Which windows of `n` symbols hold no separator."""
    seen = np.concatenate([[0], np.cumsum(is_separator, dtype=np.int64)])
    return (seen[n:] - seen[:-n]) == 0


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _chars(text: str) -> np.ndarray:
    return np.frombuffer(text.lower().encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)


def _chunks(messages: Iterable[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    size = 0
    for message in messages:
        chunk.append(message.replace("\0", " "))
        size += len(message) + 1
        if size >= _CHUNK_CHARS:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


@dataclass(frozen=True)
class CopyGuard:
    """Hashes of the training messages' word and character runs (see the module docstring).

    Attributes:
        word_hashes: Sorted hashes of every `word_n`-word run inside one message.
        char_hashes: Sorted winnowed hashes of `char_n`-character windows inside one message.
        word_n: Words in a run that counts as a copy.
        char_n: Characters in a run that counts as a copy.
    """

    word_hashes: np.ndarray
    char_hashes: np.ndarray
    word_n: int = WORD_N
    char_n: int = CHAR_N

    @property
    def nbytes(self) -> int:
        """Bytes the hashes take (in memory and, nearly, on disk)."""
        return int(self.word_hashes.nbytes + self.char_hashes.nbytes)

    def copied(self, text: str, after: int = 0) -> str | None:
        """Which rule finds a copy in `text`: "words", "chars", or None for none.

        Args:
            text: The text to check (a whole reply).
            after: Only runs that end past this many characters count: the prompt a user typed is
                theirs to echo, a copy must reach into what the model wrote.
        """
        return find_copy([self], text, after)

    def merged(self, other: CopyGuard | None) -> CopyGuard:
        """This guard and `other` in one (a fine-tuned model also knows its parent's messages)."""
        if other is None:
            return self
        if (other.word_n, other.char_n) != (self.word_n, self.char_n):
            raise TextgenError(
                f"Received a copy guard of {other.word_n} words / {other.char_n} characters, expected "
                f"{self.word_n} / {self.char_n}; retrain the parent model"
            )
        return CopyGuard(
            np.union1d(self.word_hashes, other.word_hashes),
            np.union1d(self.char_hashes, other.char_hashes),
            self.word_n,
            self.char_n,
        )

    def save(self, bundle_dir: Path) -> Path:
        """Write the guard into a bundle directory."""
        path = Path(bundle_dir) / FILE
        with open(path, "wb") as handle:
            np.savez(
                handle,
                word_hashes=self.word_hashes,
                char_hashes=self.char_hashes,
                params=np.array([FORMAT_VERSION, self.word_n, self.char_n], dtype=np.int64),
            )
        return path


def find_copy(guards: Sequence[CopyGuard], text: str, after: int = 0) -> str | None:
    """Which rule finds a copy of any guard's messages in `text` ("words", "chars" or None); the text is
    hashed once for all guards (see `CopyGuard.copied`)."""
    word_guards = [guard for guard in guards if len(guard.word_hashes)]
    for word_n in sorted({guard.word_n for guard in word_guards}):
        matches = list(_WORD.finditer(text.casefold()))
        if len(matches) < word_n:
            continue
        ids = np.array([_word_id(match.group()) for match in matches], dtype=np.uint64)
        ends = np.array([match.end() for match in matches[word_n - 1 :]])
        hashes = _window_hashes(ids, word_n)[ends > after]
        if any(_any_in(hashes, guard.word_hashes) for guard in word_guards if guard.word_n == word_n):
            return "words"
    char_guards = [guard for guard in guards if len(guard.char_hashes)]
    for char_n in sorted({guard.char_n for guard in char_guards}):
        if len(text) < char_n:
            continue
        # Window i covers characters i .. i + char_n - 1 (lower() keeps lengths for chat text).
        hashes = _window_hashes(_chars(text), char_n)
        hashes = hashes[np.arange(len(hashes)) + char_n > after]
        if any(_any_in(hashes, guard.char_hashes) for guard in char_guards if guard.char_n == char_n):
            return "chars"
    return None


def _any_in(hashes: np.ndarray, table: np.ndarray) -> bool:
    if not len(hashes):
        return False
    at = np.searchsorted(table, hashes)
    at[at == len(table)] = 0
    return bool(np.any(table[at] == hashes))


class _HashUnion:
    """The sorted distinct hashes of many chunks. Each chunk's are deduplicated at once and merged into
    the whole when they add up to its size, so memory stays a small multiple of the distinct hashes
    (a chat log repeats itself a lot) rather than growing with every hash of the corpus."""

    def __init__(self) -> None:
        self._merged = np.zeros(0, np.uint64)
        self._pending: list[np.ndarray] = []
        self._pending_size = 0

    def add(self, hashes: np.ndarray) -> None:
        part = np.unique(hashes)
        self._pending.append(part)
        self._pending_size += len(part)
        if self._pending_size >= max(len(self._merged), _MERGE_AT_LEAST):
            self._merge()

    def sorted(self) -> np.ndarray:
        self._merge()
        return self._merged

    def _merge(self) -> None:
        if not self._pending:
            return
        joined = np.concatenate([self._merged, *self._pending])
        self._merged, self._pending, self._pending_size = np.zeros(0, np.uint64), [], 0
        joined.sort()  # in place: no second copy
        distinct = np.empty(len(joined), bool)
        distinct[:1] = True
        np.not_equal(joined[1:], joined[:-1], out=distinct[1:])
        self._merged = joined[distinct]


def build_copy_guard(messages: Iterable[str]) -> CopyGuard:
    """The guard for a training corpus (any iterable of messages; read once, in chunks)."""
    word_union, char_union = _HashUnion(), _HashUnion()
    for chunk in _chunks(messages):
        # Words: ids of all words of the chunk, with a separator id between messages.
        ids: list[int] = []
        for message in chunk:
            words = _words(message)
            if len(words) >= WORD_N:
                ids.extend(_word_id(word) for word in words)
                ids.append(_SEPARATOR)
        if ids:
            symbols = np.array(ids, dtype=np.uint64)
            hashes = _window_hashes(symbols, WORD_N)
            word_union.add(hashes[_inside_one_message(symbols == _SEPARATOR, WORD_N)])
        # Characters: the joined chunk, NUL between messages; only messages long enough take part.
        long = [message for message in chunk if len(message) >= CHAR_N]
        if long:
            codes = _chars("\0".join(long))
            hashes = _window_hashes(codes, CHAR_N)
            hashes[~_inside_one_message(codes == _SEPARATOR, CHAR_N)] = _NONE
            if len(hashes) >= CHAR_WINDOW:
                hashes = np.lib.stride_tricks.sliding_window_view(hashes, CHAR_WINDOW).min(axis=1)
            char_union.add(hashes[hashes != _NONE])
    return CopyGuard(word_union.sorted(), char_union.sorted())


def load_copy_guard(bundle_dir: Path | str) -> CopyGuard | None:
    """The guard saved in a bundle, or None when the bundle has none (made before guards existed).

    Raises:
        TextgenError: The guard file is damaged or from another format version.
    """
    path = Path(bundle_dir) / FILE
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            version, word_n, char_n = (int(value) for value in data["params"])
            word_hashes, char_hashes = data["word_hashes"], data["char_hashes"]
    except (OSError, ValueError, KeyError) as error:
        raise TextgenError(f"copy guard {path} does not load ({error}); retrain the model") from None
    if version != FORMAT_VERSION:
        raise TextgenError(
            f"copy guard {path} has format version {version}, this chatsmith reads {FORMAT_VERSION}; "
            f"retrain the model"
        )
    return CopyGuard(word_hashes.astype(np.uint64), char_hashes.astype(np.uint64), word_n, char_n)
