"""Matching words from a list in free text, the way people write round word lists.

Text is folded before matching: case, accents, zero-width characters, look-alike digits and symbols
(`1` for `i`, `@` for `a`, `$` for `s`) and letters spelled out one by one (`n i c e`, `n.i.c.e`). A
listed word matches as a whole word, or with a plural ending; a word listed with a trailing `*` also
matches as the start of a longer word. Whole-word matching keeps innocent words that merely contain a
listed one (the Scunthorpe problem) out. Spans point into the original text so callers can mask them.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# Characters people use in place of letters.
_LOOK_ALIKES = str.maketrans(
    {"0": "o", "1": "i", "!": "i", "|": "i", "3": "e", "4": "a", "@": "a", "5": "s", "$": "s", "7": "t"}
)
_INVISIBLE = frozenset("\u00ad\u200b\u200c\u200d\u2060\ufeff")
_WORD = re.compile(r"[a-z]+")
# A word as written: letters with look-alike characters among them ("sh1t", "$hit").
_TOKEN = re.compile(r"[a-z0-9@$!|]*[a-z][a-z0-9@$!|]*")
_NOT_LETTER = re.compile(r"[^a-z]")
# Three or more single letters with one separator between them: a word spelled out.
_SPELLED = re.compile(r"(?<![a-z])[a-z](?:[ ._*-][a-z]){2,}(?![a-z])")
_SEPARATORS = re.compile(r"[ ._*-]")
_PLURALS = ("s", "es", "z")


def fold(text: str) -> tuple[str, list[int] | None]:
    """`text` folded for matching (case, accents, invisible characters), and where each folded character
    came from (None: the same positions)."""
    if text.isascii():
        # The common case stays fast: one character in, one out.
        return text.lower(), None
    folded: list[str] = []
    origin: list[int] = []
    for position, char in enumerate(text):
        if char in _INVISIBLE:
            continue
        for part in unicodedata.normalize("NFKD", char):
            if unicodedata.combining(part):
                continue
            for out in part.casefold():
                folded.append(out)
                origin.append(position)
    return "".join(folded), origin


def _letters(token: str) -> str:
    """A written word as plain letters: look-alikes read as letters; "!" and "|" at its ends are
    punctuation ("word!"), not an "i"."""
    return _NOT_LETTER.sub("", token.strip("!|").translate(_LOOK_ALIKES))


@dataclass(frozen=True)
class WordList:
    """A set of words to find in text.

    Attributes:
        words: Whole words (lower case, letters only).
        prefixes: Words that also match as the start of a longer word.
    """

    words: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> WordList:
        """A list from text lines: one word a line, `#` starts a comment, `word*` matches as a prefix too."""
        words: set[str] = set()
        prefixes: list[str] = []
        for line in lines:
            entry = line.split("#", 1)[0].strip()
            if not entry:
                continue
            prefix = entry.endswith("*")
            word = "".join(_WORD.findall(fold(entry.rstrip("*"))[0]))
            if not word:
                continue
            words.add(word)
            if prefix:
                prefixes.append(word)
        return cls(frozenset(words), tuple(sorted(prefixes)))

    def __bool__(self) -> bool:
        return bool(self.words)

    def union(self, other: WordList) -> WordList:
        """Both lists in one."""
        return WordList(self.words | other.words, tuple(sorted({*self.prefixes, *other.prefixes})))

    @functools.cached_property
    def _prefix_pattern(self) -> re.Pattern[str] | None:
        # One compiled alternation: a reply has a hundred words and a list a dozen prefixes.
        return re.compile("|".join(map(re.escape, self.prefixes))) if self.prefixes else None

    def _listed(self, word: str) -> bool:
        if word in self.words:
            return True
        for ending in _PLURALS:
            if word.endswith(ending) and word[: -len(ending)] in self.words:
                return True
        pattern = self._prefix_pattern
        return pattern is not None and pattern.match(word) is not None

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where listed words are in `text`: (start, end) character offsets, in order, not overlapping."""
        if not self.words:
            return []
        folded, origin = fold(text)
        found: list[tuple[int, int]] = []
        for match in _TOKEN.finditer(folded):
            token = match.group()
            if self._listed(token if token.isalpha() else _letters(token)):
                # The span leaves out "!" and "|" at the ends: punctuation, not part of the word.
                start = match.start() + len(token) - len(token.lstrip("!|"))
                found.append((start, max(start + 1, match.start() + len(token.rstrip("!|")))))
        for match in _SPELLED.finditer(folded):
            if self._listed(_SEPARATORS.sub("", match.group())):
                found.append(match.span())
        if not found:
            return []
        if origin is not None:
            found = [(origin[start], origin[end - 1] + 1) for start, end in found]
        merged: list[tuple[int, int]] = []
        for start, end in sorted(found):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged

    def contains(self, text: str) -> bool:
        """Whether any listed word is in `text`."""
        return bool(self.spans(text))
