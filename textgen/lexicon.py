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
`lexicon.txt.gz`; a bundle without one decodes unconstrained.
"""

from __future__ import annotations

import gzip
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from textgen.errors import TextgenError
from textgen.tokenizers import Tokenizer

LEXICON_FILE = "lexicon.txt.gz"
WORD = re.compile(r"[a-z][a-z']+")
# A word seen once is as likely a typo as a word; twice is the lexicon's bar (as the reply-quality
# benchmark's judge counts known words).
DEFAULT_MIN_COUNT = 2
_LETTERS = frozenset(string.ascii_lowercase)
_CONTINUATIONS = string.ascii_lowercase + "'"
# Masks kept per prefix: the prefixes of common words come back at every reply. Bounded, because a bot
# keeps a constraint per cached model (2,048 masks of 260 bytes: about 0.5 MB).
_CACHE_LIMIT = 2048


class Lexicon:
    """A sorted set of lowercase words, answering "which letters may follow this prefix".

    Held compactly, because a bot keeps one per cached model: the words as one sorted blob of ASCII bytes
    and their offsets (about 12 bytes a word; Python strings would take over 100).
    """

    def __init__(self, words: Iterable[str]) -> None:
        unique = sorted({word for word in words if WORD.fullmatch(word)})
        self._blob = "".join(unique).encode("ascii")
        self._starts = np.zeros(len(unique) + 1, dtype=np.int32)
        np.cumsum([len(word) for word in unique], out=self._starts[1:])

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

    def _word(self, index: int) -> str:
        return self._blob[self._starts[index] : self._starts[index + 1]].decode("ascii")

    @property
    def words(self) -> list[str]:
        return [self._word(index) for index in range(len(self))]

    @property
    def nbytes(self) -> int:
        return len(self._blob) + self._starts.nbytes

    def _first_not_below(self, text: str) -> int:
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
        if not isinstance(word, str):
            return False
        index = self._first_not_below(word)
        return index < len(self) and self._word(index) == word

    def union(self, other: Lexicon) -> Lexicon:
        return Lexicon([*self.words, *other.words])

    def begins_a_word(self, prefix: str) -> bool:
        """Whether some lexicon word starts with `prefix`."""
        index = self._first_not_below(prefix)
        return index < len(self) and self._word(index).startswith(prefix)

    def save(self, directory: Path) -> Path:
        path = Path(directory) / LEXICON_FILE
        # mtime=0: the same words give the same bytes.
        with gzip.GzipFile(path, "wb", mtime=0) as file:
            file.write("\n".join(self.words).encode("utf-8"))
        return path


def load_lexicon(directory: Path | str) -> Lexicon | None:
    """The lexicon saved in the bundle at `directory`; None for a bundle saved without one."""
    path = Path(directory) / LEXICON_FILE
    if not path.exists():
        return None
    try:
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise TextgenError(
            f"{path} is damaged ({error}); delete it to decode without a lexicon, or retrain"
        ) from error
    return Lexicon(text.split("\n") if text else [])


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
        mask = self._other.copy() if self.may_end(word) else np.zeros_like(self._other)
        for char in _CONTINUATIONS:
            if not word and char == "'":
                continue  # an apostrophe between words is punctuation, already allowed
            if not word or self.lexicon.begins_a_word(word + char):
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
