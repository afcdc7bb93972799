"""A chat file read straight into one compact token array, for training on histories of any size.

`load_corpus` keeps every message as a Python string, about three times the file in memory. Here the
file is read twice and never held: the first pass learns the speakers (an address is dropped only when
it names one of them, see `textgen.corpus.without_addressee`) and how much text there is; the second
encodes each message as it is read into one preallocated array of `token_dtype` (uint16 for bytes), with
each message's end, in tokens and in characters, beside it. Memory then grows with the token array only.

The held-out parts are ranges of messages of that array (`MessageRange`), cut by the rule of
`textgen.holdout.split_validation`, so that training on them reads the same tokens and reports the same
figures as training on the messages themselves. Whoever needs the texts again (the copy guard, the
lexicon, the final evaluation) decodes them a slice at a time: byte tokens decode exactly.

With `max_chars`, only the newest messages that fit in that many characters (as training reads them,
without their addresses) are kept: memory stops growing with the file there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

import numpy as np

from textgen.corpus import address_of, without_addressee
from textgen.data import token_dtype
from textgen.errors import TextgenError
from textgen.formats.records import ReadReport
from textgen.formats.sources import ChatSource, open_source
from textgen.slurs import contains_slur
from textgen.tokenizers import EOS_ID, NUM_SPECIAL, ByteTokenizer, Tokenizer

__all__ = ["MessageRange", "TokenCorpus", "read_token_corpus"]

# Messages encoded (or decoded) at once: their temporary arrays are a few megabytes.
SLICE_MESSAGES = 10_000


@dataclass(frozen=True, eq=False)
class TokenCorpus:
    """Messages encoded with the byte tokenizer, `BOS m1 EOS BOS m2 EOS ...`, in one array.

    Attributes:
        tokens: The token stream, as `token_dtype(vocab_size)`.
        token_ends: Where each message's `BOS ... EOS` ends in `tokens` (int64, cumulative).
        char_ends: The characters of the messages up to and including each one (int64, cumulative).
        format: The format the file was read in.
        guessed: Whether the format was guessed.
        broken: Parts of an export that could not be read, as `name: reason`.
        notes: Parts of an export left out on purpose, a sentence each.
        dropped: Messages left out because they hold a slur (with `drop_slurs`).
        older: Messages left out because newer ones filled `max_chars`.
    """

    tokens: np.ndarray
    token_ends: np.ndarray
    char_ends: np.ndarray
    format: str
    guessed: bool = False
    broken: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dropped: int = 0
    older: int = 0
    tokenizer: ByteTokenizer = field(default_factory=ByteTokenizer)

    @property
    def messages(self) -> MessageRange:
        """Every message, decoded only when read."""
        return MessageRange(self, 0, len(self.token_ends))


@dataclass(frozen=True, eq=False)
class MessageRange(Sequence[str]):
    """Messages `start:stop` of a `TokenCorpus`: a sequence of texts that are decoded when read."""

    corpus: TokenCorpus
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> MessageRange: ...

    def __getitem__(self, index: int | slice) -> str | MessageRange:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                raise TextgenError(f"Received a slice with step {step}, expected 1")
            return MessageRange(self.corpus, self.start + start, self.start + max(start, stop))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return next(iter(self[index : index + 1]))

    def __iter__(self) -> Iterator[str]:
        # A slice of messages at a time: one conversion to bytes, then each message is cut from it.
        for first in range(self.start, self.stop, SLICE_MESSAGES):
            last = min(first + SLICE_MESSAGES, self.stop)
            base = self._token_start(first)
            data = (self.corpus.tokens[base : self.corpus.token_ends[last - 1]] - NUM_SPECIAL).astype(
                np.uint8
            )
            raw = data.tobytes()
            ends = self.corpus.token_ends[first:last] - base
            starts = np.concatenate([[0], ends[:-1]])
            for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
                yield raw[start + 1 : end - 1].decode("utf-8")  # without BOS and EOS

    @property
    def chars(self) -> int:
        """Characters of these messages."""
        return int(self._char_start(self.stop) - self._char_start(self.start))

    @property
    def tokens(self) -> np.ndarray:
        """These messages' tokens: a view of the corpus's array, as `encode_compact` would give them."""
        return self.corpus.tokens[self._token_start(self.start) : self._token_start(self.stop)]

    def encoded_with(self, tokenizer: Tokenizer) -> np.ndarray:
        """These messages encoded by `tokenizer` (a run's BPE vocabulary, say), `BOS m1 EOS ...` as
        `encode_compact` gives them, a slice of messages at a time into one array: no tokenizer writes
        more than one token per byte, so the byte tokens' length bounds it, and the pages past the end
        are never written (no final copy, no list of the texts)."""
        out = np.empty(len(self.tokens), token_dtype(tokenizer.vocab_size))
        written = 0
        for first in range(0, len(self), SLICE_MESSAGES):
            encoded = tokenizer.encode_messages(self[first : first + SLICE_MESSAGES])
            out[written : written + len(encoded)] = encoded
            written += len(encoded)
        return out[:written]

    def split(self, fraction: float) -> tuple[MessageRange, MessageRange]:
        """The last `fraction` of the characters held out, as `textgen.holdout.split_validation` does
        for several messages (a single document is cut inside; read it with `list` first)."""
        if fraction <= 0:
            return self, self[len(self) :]
        if len(self) < 2:
            raise TextgenError(f"Received {len(self)} message(s) to split, expected at least 2")
        target = self.chars * (1 - fraction)
        cumulative = self.corpus.char_ends[self.start : self.stop] - self._char_start(self.start)
        index = int(np.searchsorted(cumulative, target, side="right"))
        index = min(max(index, 1), len(self) - 1)
        return self[:index], self[index:]

    def _token_start(self, message: int) -> int:
        return int(self.corpus.token_ends[message - 1]) if message > 0 else 0

    def _char_start(self, message: int) -> int:
        return int(self.corpus.char_ends[message - 1]) if message > 0 else 0


def read_token_corpus(
    path: Path | str,
    fmt: str = "auto",
    *,
    max_chars: int | None = None,
    drop_slurs: bool = False,
) -> TokenCorpus:
    """Read a chat file or export into a `TokenCorpus` (byte tokens), holding no message list.

    Args:
        path: The file, or an export's zip or folder.
        fmt: "auto" or one of `textgen.formats.FORMATS`.
        max_chars: Keep only the newest messages that fit in this many characters; None keeps all.
        drop_slurs: Leave out every message that holds a slur (see `TokenCorpus.dropped`).

    Returns:
        The corpus; it has no messages when every message held a slur or `max_chars` is shorter than
        the newest message.

    Raises:
        TextgenError: The file is missing, unreadable, or has no messages.
    """
    source = open_source(path, fmt)
    survey = _survey(source)
    if survey.messages == 0:
        raise TextgenError(
            f"corpus {source.path} has no messages in format {source.format!r}; check --format"
        )
    skip_chars = max(0, survey.chars - max_chars) if max_chars is not None else 0
    tokenizer = ByteTokenizer()
    # An upper bound of the tokens (every byte, BOS and EOS): pages never written cost no memory.
    capacity = min(survey.utf8_bytes, 4 * (survey.chars - skip_chars)) + 2 * survey.messages
    buffer = _GrowingArray(token_dtype(tokenizer.vocab_size), capacity)
    token_ends = _GrowingArray(np.dtype(np.int64), survey.messages)
    char_ends = _GrowingArray(np.dtype(np.int64), survey.messages)
    texts = _texts(dataclasses.replace(source, report=ReadReport()), survey.speakers)
    kept = _Newest(texts, skip_chars)
    dropped = 0
    chars = 0
    for batch in _batches(kept):
        if drop_slurs:
            clean = [text for text in batch if not contains_slur(text)]
            dropped += len(batch) - len(clean)
            batch = clean
        if not batch:
            continue
        lengths = np.fromiter((len(text) for text in batch), np.int64, len(batch))
        encoded = tokenizer.encode_messages(batch)
        # EOS ends each message; no byte token has its id.
        token_ends.extend(len(buffer) + np.flatnonzero(encoded == EOS_ID) + 1)
        char_ends.extend(chars + np.cumsum(lengths))
        chars += int(lengths.sum())
        buffer.extend(encoded)
    return TokenCorpus(
        buffer.view(),
        token_ends.view(),
        char_ends.view(),
        source.format,
        source.guessed,
        list(source.report.broken),
        list(source.report.notes),
        dropped,
        kept.older,
        tokenizer,
    )


@dataclass
class _Survey:
    """What the first pass learns. `chars` counts the messages as training reads them, without the
    addresses to speakers; `utf8_bytes` as written."""

    speakers: set[str] = field(default_factory=set)
    messages: int = 0
    chars: int = 0
    utf8_bytes: int = 0


def _survey(source: ChatSource) -> _Survey:
    """The first pass: who speaks, and how much there is."""
    survey = _Survey()
    # Characters of the addresses to each name: they go once the name is known to speak.
    addressed: dict[str, int] = {}
    for record in source.records():
        if record.author_id:
            survey.speakers.add(record.author_id.casefold())
        survey.messages += 1
        survey.chars += len(record.text)
        survey.utf8_bytes += len(record.text.encode("utf-8"))
        address = address_of(record.text)
        if address is not None:
            addressed[address[0]] = addressed.get(address[0], 0) + address[1]
    survey.chars -= sum(length for name, length in addressed.items() if name in survey.speakers)
    return survey


def _texts(source: ChatSource, speakers: set[str]) -> Iterator[str]:
    """The second pass: each message as `load_corpus` gives it, without its address to a speaker."""
    records: Iterable = source.records()
    if source.format == "slack-export":
        # An export's channels come one after another and are merged by time, which needs them all.
        records = list(records)
        if all(record.time is not None for record in records):
            records.sort(key=lambda record: record.time)
    for record in records:
        yield without_addressee(record.text, speakers)


class _Newest:
    """The texts after the first `skip_chars` characters' worth of whole messages (`older` counts those
    left out): what remains are the newest messages that fit in the cap."""

    def __init__(self, texts: Iterator[str], skip_chars: int) -> None:
        self.texts, self.skip_chars, self.older = texts, skip_chars, 0

    def __iter__(self) -> Iterator[str]:
        skipped = 0
        for text in self.texts:
            if skipped < self.skip_chars:
                skipped += len(text)
                self.older += 1
                continue
            yield text


def _batches(texts: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == SLICE_MESSAGES:
            yield batch
            batch = []
    if batch:
        yield batch


class _GrowingArray:
    """A 1-D array filled from the front; it doubles its capacity when full, and `view` is what was
    written (no final copy)."""

    def __init__(self, dtype: np.dtype, capacity: int = 1 << 16) -> None:
        self._data = np.empty(max(capacity, 1), dtype)
        self._length = 0

    def __len__(self) -> int:
        return self._length

    def extend(self, values: np.ndarray) -> None:
        end = self._length + len(values)
        if end > len(self._data):
            grown = np.empty(max(end, 2 * len(self._data)), self._data.dtype)
            grown[: self._length] = self._data[: self._length]
            self._data = grown
        self._data[self._length : end] = values
        self._length = end

    def view(self) -> np.ndarray:
        return self._data[: self._length]
