"""The words a model may write: no invented words ("dpdg", "lamgut") in replies.

A character- or byte-level model spells words one character at a time, and at a sampling temperature
it sometimes spells words nobody wrote. A `Lexicon` holds the words of a model's training messages
(lowercased runs `[a-z][a-z']+`, seen at least twice, slurs never) and `LexiconConstraint` masks, at each
decoding step, the tokens that would make the word being spelled leave the lexicon:

- inside a word, a letter (or an apostrophe) is allowed only if the word so far plus it begins some
  lexicon word;
- a character that ends a word (a space, punctuation, a digit, end of message) is allowed only if the
  word so far is a lexicon word, or a single letter.

Everything outside words (numbers, punctuation, code, URLs' separators) is left to the model. A fine-tuned
model's lexicon is its channel's words joined with its base model's, saved in the bundle as
`lexicon.npy`; a bundle without one decodes unconstrained.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from textgen.errors import TextgenError
from textgen.tokenizers import Tokenizer

LEXICON_FILE = "lexicon.npy"
WORD = re.compile(r"[a-z][a-z']+")
# A word seen once is as likely a typo as a word; twice is the lexicon's bar (as the reply-quality
# benchmark's judge counts known words).
DEFAULT_MIN_COUNT = 2
_LETTERS = frozenset(string.ascii_lowercase)
_CONTINUATIONS = string.ascii_lowercase + "'"
# Masks kept per prefix: the prefixes of common words come back at every reply. Bounded, because a bot
# keeps a constraint per cached model (2,048 masks of 260 bytes: about 0.5 MB).
_CACHE_LIMIT = 2048
# Words that begin with a prefix, up to which `next_letters` reads them one by one.
_SHORT_RUN = 12


class Lexicon:
    """A sorted set of lowercase words, answering "which letters may follow this prefix".

    Held compactly, because a bot keeps one per cached model: the sorted words as one ASCII blob, each
    followed by a newline, and where each starts (about 13 bytes a word; Python strings would take over
    100). The same blob is the bundle's file, so loading one is reading an array.
    """

    def __init__(self, words: Iterable[str]) -> None:
        unique = sorted({word for word in words if WORD.fullmatch(word)})
        blob = "".join(f"{word}\n" for word in unique).encode("ascii")
        self._set_blob(np.frombuffer(blob, dtype=np.uint8))

    @classmethod
    def from_blob(cls, blob: np.ndarray) -> Lexicon:
        """The lexicon whose newline-terminated sorted words are `blob` (as `save` writes them)."""
        lexicon = cls.__new__(cls)
        lexicon._set_blob(blob)
        return lexicon

    def _set_blob(self, blob: np.ndarray) -> None:
        self._blob = blob.tobytes()
        self._bytes = np.frombuffer(self._blob, dtype=np.uint8)  # the same bytes, as an array (no copy)
        ends = np.flatnonzero(blob == ord("\n")).astype(np.int32)
        self._starts = np.concatenate([[0], ends + 1]).astype(np.int32)

    @classmethod
    def build(
        cls,
        messages: Iterable[str],
        min_count: int = DEFAULT_MIN_COUNT,
        exclude: Callable[[str], bool] | None = None,
    ) -> Lexicon:
        """The words of `messages` seen at least `min_count` times, less those `exclude` rejects."""
        counts: Counter[str] = Counter()
        for message in messages:
            counts.update(WORD.findall(message.lower()))
        return cls(
            word for word, count in counts.items() if count >= min_count and not (exclude and exclude(word))
        )

    def __len__(self) -> int:
        return len(self._starts) - 1

    def _word(self, index: int) -> bytes:
        return self._blob[self._starts[index] : self._starts[index + 1] - 1]

    @property
    def words(self) -> list[str]:
        return [self._word(index).decode("ascii") for index in range(len(self))]

    @property
    def nbytes(self) -> int:
        return len(self._blob) + self._starts.nbytes

    def _first_not_below(self, text: bytes) -> int:
        """Index of the first word >= `text` (binary search over the blob)."""
        low, high = 0, len(self)
        while low < high:
            middle = (low + high) // 2
            if self._word(middle) < text:
                low = middle + 1
            else:
                high = middle
        return low

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str) or not word.isascii():
            return False
        key = word.encode("ascii")
        index = self._first_not_below(key)
        return index < len(self) and self._word(index) == key

    def union(self, other: Lexicon) -> Lexicon:
        return Lexicon([*self.words, *other.words])

    def next_letters(self, prefix: str) -> tuple[bool, str]:
        """(whether `prefix` is a word, the characters that continue it towards some word, in order).

        The words that begin with `prefix` are one run of the sorted words: a short run is read word by
        word; a long one (a short prefix) is bounded by a second binary search and its next characters
        read all at once.
        """
        key = prefix.encode("ascii")
        size = len(key)
        low = self._first_not_below(key)
        run = []
        for index in range(low, min(low + _SHORT_RUN, len(self))):
            word = self._word(index)
            if not word.startswith(key):
                break
            run.append(word)
        else:
            if low + _SHORT_RUN < len(self):
                return self._next_letters_of_long_run(key, low)
        following = sorted({word[size] for word in run if len(word) > size})
        return bool(run) and len(run[0]) == size, bytes(following).decode("ascii")

    def _next_letters_of_long_run(self, key: bytes, low: int) -> tuple[bool, str]:
        # Words hold only [a-z'], all below 0x7f: every word that begins with `key` sorts below this.
        high = self._first_not_below(key + b"\x7f")
        starts = self._starts[low : high + 1]
        lengths = starts[1:] - starts[:-1] - 1
        following = np.unique(self._bytes[starts[:-1][lengths > len(key)] + len(key)])
        return bool(lengths[0] == len(key)), following.tobytes().decode("ascii")

    def save(self, directory: Path) -> Path:
        path = Path(directory) / LEXICON_FILE
        np.save(path, np.frombuffer(self._blob, dtype=np.uint8), allow_pickle=False)
        return path


def load_lexicon(directory: Path | str) -> Lexicon | None:
    """The lexicon saved in the bundle at `directory`; None for a bundle saved without one."""
    path = Path(directory) / LEXICON_FILE
    if not path.exists():
        return None
    try:
        blob = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise TextgenError(
            f"{path} is damaged ({error}); delete it to decode without a lexicon, or retrain"
        ) from error
    if blob.dtype != np.uint8 or blob.ndim != 1 or (len(blob) and blob[-1] != ord("\n")):
        raise TextgenError(f"{path} is not a lexicon; delete it to decode without a lexicon, or retrain")
    return Lexicon.from_blob(blob)


class LexiconConstraint:
    """Per-step token masks that keep each word a model spells inside `lexicon`.

    A row's state is the lowercase word spelled so far ("" between words). Works for any tokenizer whose
    tokens are single characters or bytes (byte and char tokenizers); others are not constrained.
    """

    def __init__(self, lexicon: Lexicon, tokenizer: Tokenizer) -> None:
        self.lexicon = lexicon
        vocab = tokenizer.vocab_size
        # What each token is: a letter (its lowercase), an apostrophe, or anything else ("").
        self._chars: list[str] = []
        for token in range(vocab):
            text = tokenizer.decode([token]) if token >= 4 else ""
            self._chars.append(text.lower() if len(text) == 1 and text.lower() in _LETTERS | {"'"} else "")
        self._other = np.array([char == "" for char in self._chars])
        self._by_char: dict[str, np.ndarray] = {
            char: np.array([c == char for c in self._chars]) for char in _CONTINUATIONS
        }
        self._masks: dict[str, np.ndarray] = {}

    @property
    def nbytes(self) -> int:
        """Bytes held: the lexicon and the cached masks."""
        return self.lexicon.nbytes + sum(mask.nbytes for mask in self._masks.values())

    def may_end(self, word: str) -> bool:
        """Whether the text may stop (or go on with a space, a digit, ...) after the word spelled so far."""
        return len(word) <= 1 or word in self.lexicon

    def allowed(self, word: str) -> np.ndarray:
        """(vocab,) booleans: the tokens that may follow the word spelled so far."""
        mask = self._masks.get(word)
        if mask is not None:
            return mask
        if not word:
            # Between words: anything, and any letter may start one (a lone letter is always a word).
            mask = self._other | np.logical_or.reduce([self._by_char[c] for c in string.ascii_lowercase])
        else:
            is_word, following = self.lexicon.next_letters(word)
            mask = self._other.copy() if is_word or len(word) == 1 else np.zeros_like(self._other)
            for char in following:
                mask |= self._by_char[char]
        if not mask.any():
            mask = self._other  # a word the lexicon lacks (typed in a prompt): it may only end
        if len(self._masks) >= _CACHE_LIMIT:
            self._masks.clear()
        self._masks[word] = mask
        return mask

    def advance(self, word: str, token: int) -> str:
        """The word spelled after `token` follows `word`."""
        char = self._chars[token] if token < len(self._chars) else ""
        if char == "" or (char == "'" and not word):
            return ""
        return word + char
