"""The words a model may write: no invented words ("dpdg", "lamgut") in replies.

A character-, byte- or subword-level model spells words a character (or a few) at a time, and at a
sampling temperature it sometimes spells words nobody wrote. A `Lexicon` holds the words of a model's
training messages (lowercased runs `[a-z][a-z']+`, seen at least twice, slurs never) and
`LexiconConstraint` masks, at each decoding step, the tokens that would make the word being spelled leave the lexicon:

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
# What continues a word: a letter, or an apostrophe inside one ("it's").
_CONTINUATIONS = frozenset(string.ascii_lowercase + "'")
# Masks kept per prefix: the prefixes of common words come back at every reply. Bounded, because a bot
# keeps a constraint per cached model (2,048 masks of 260 bytes: about 0.5 MB).
_CACHE_LIMIT = 2048
# Tokenizers whose tokens spell text a character, a byte or a few bytes at a time: the lexicon holds their
# words. Word tokenizers write only whole words of their vocabulary, so they need none.
SPELLING_TOKENIZERS = ("byte", "char", "bpe")
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


class _Node:
    """A node of the trie of tokens' leading letters: the tokens whose text is exactly these letters
    (`whole`), those whose letters end at a word break (`broken`), and the letters that go on."""

    __slots__ = ("broken", "children", "whole")

    def __init__(self) -> None:
        self.whole: list[int] = []
        self.broken: list[int] = []
        self.children: dict[str, _Node] = {}


class LexiconConstraint:
    """Per-step token masks that keep each word a model spells inside `lexicon`.

    A row's state is the lowercase word spelled so far ("" between words). A token is read character by
    character with the rules of the module docstring, so tokens of several characters (byte-level BPE:
    " the", "ing.") are held to the same rules as single bytes: a token is allowed when every character
    of it is. Tokens are grouped in a trie by their leading letters, which walks beside the lexicon: the
    mask of a word costs one lexicon lookup per trie node that still begins some word.
    """

    def __init__(self, lexicon: Lexicon, tokenizer: Tokenizer) -> None:
        self.lexicon = lexicon
        self.vocab = tokenizer.vocab_size
        # What each token spells, one entry per character: a letter (lowercase), an apostrophe, or ""
        # for anything else (a word break). Framing tokens are one break (the end of message is one).
        self._spelled: list[tuple[str, ...]] = []
        self._root = _Node()
        for token in range(self.vocab):
            text = tokenizer.decode([token]) if token >= 4 else ""
            spelled = tuple(_spelled(char) for char in text) or ("",)
            self._spelled.append(spelled)
            lead = 0
            while lead < len(spelled) and spelled[lead]:
                lead += 1
            node = self._root
            for char in spelled[:lead]:
                node = node.children.setdefault(char, _Node())
            (node.whole if lead == len(spelled) else node.broken).append(token)
        # Whether a token's characters from its first break on keep to the lexicon: the same whatever
        # word the token continues, so worked out once per token, when first needed.
        self._after_break: dict[int, bool] = {}
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
        mask = np.zeros(self.vocab, dtype=bool)
        self._walk(self._root, word, mask)
        if not mask.any():
            # A word the lexicon lacks (typed in a prompt): it may only end.
            self._allow_broken(self._root.broken, mask)
        if len(self._masks) >= _CACHE_LIMIT:
            self._masks.clear()
        self._masks[word] = mask
        return mask

    def advance(self, word: str, token: int) -> str:
        """The word spelled after `token` follows `word`."""
        spelled = self._spelled[token] if token < len(self._spelled) else ("",)
        for char in spelled:
            word = "" if char == "" or (char == "'" and not word) else word + char
        return word

    def _walk(self, node: _Node, word: str, mask: np.ndarray) -> None:
        """Allow the tokens under `node`, whose leading letters so far make `word`."""
        if word:
            is_word, following = self.lexicon.next_letters(word)
        else:
            is_word, following = True, string.ascii_lowercase  # any letter may start a word
        if is_word or len(word) <= 1:  # `may_end`
            self._allow_broken(node.broken, mask)
        for char in following:
            child = node.children.get(char)
            if child is None:
                continue
            # `word + char` begins some word (or is one letter): tokens that end inside it are allowed.
            mask[child.whole] = True
            if child.children or child.broken:
                self._walk(child, word + char, mask)

    def _allow_broken(self, tokens: list[int], mask: np.ndarray) -> None:
        for token in tokens:
            valid = self._after_break.get(token)
            if valid is None:
                valid = self._after_break[token] = self._keeps_to_lexicon(self._spelled[token])
            if valid:
                mask[token] = True

    def _keeps_to_lexicon(self, spelled: tuple[str, ...]) -> bool:
        """Whether `spelled`, from its first break on, spells only lexicon words and word beginnings."""
        word = ""
        for char in spelled[spelled.index("") :]:
            if char == "":
                if not self.may_end(word):
                    return False
                word = ""
            elif not word:
                if char == "'":
                    return False  # no word begins with an apostrophe
                word = char
            else:
                word += char
                if char not in self.lexicon.next_letters(word[:-1])[1]:
                    return False
        return True


def _spelled(char: str) -> str:
    """A character as the lexicon reads it: a letter (lowercase), an apostrophe, or "" (a break)."""
    lower = char.lower()
    return lower if len(lower) == 1 and lower in _CONTINUATIONS else ""
