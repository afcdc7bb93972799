"""The output filter: what every generated reply (and every prompt echoed back) passes before it is sent.

In order:
1. Slurs (`textgen.slurs`) block the reply, always: no setting switches this off.
2. Profanity (`bot.core.profanity`) follows the workspace's policy: `off`, `mask` (default: the word is
   shown as its first letter and stars) or `block`. Words the workspace's admins added are masked under
   `off` and `mask` (they asked for it) and block under `block`.
3. The copy guard (`textgen.copyguard`) blocks a reply that repeats 8 words or 60 characters of one
   training message.
4. Personal data (`bot.core.personal_data`) is masked.

A blocked reply is sampled again, up to `MAX_ATTEMPTS` times in all, then a friendly line is sent
instead. Nothing here logs the text or says which word matched.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.core.personal_data import mask_personal_data
from bot.core.profanity import profanity_list
from db.filters import FilterSettings
from textgen.copyguard import CopyGuard, find_copy
from textgen.slurs import slur_list
from textgen.wordlist import WordList

# Samples tried per reply before the fallback line; each is one more decoding of the reply.
MAX_ATTEMPTS = 4
FALLBACK = "I could not write anything fit to post this time. Try again, or give me another prompt."
PROMPT_REFUSED = "That prompt has words this bot does not write. Try another prompt."
MASK = "*"


@dataclass(frozen=True)
class Checked:
    """A text after the filter.

    Attributes:
        text: What may be posted (masks applied); meaningless when `blocked`.
        blocked: Why it may not be posted ("slur", "profanity", "own words", "copy"), or None.
        masked: How many words and pieces of personal data were masked.
    """

    text: str
    blocked: str | None = None
    masked: int = 0


def _mask_spans(text: str, spans: Sequence[tuple[int, int]]) -> str:
    out: list[str] = []
    last = 0
    for start, end in spans:
        out.append(text[last:start])
        # The first letter stays, so readers see a word was there and which.
        out.append(text[start] + MASK * (end - start - 1))
        last = end
    out.append(text[last:])
    return "".join(out)


class OutputFilter:
    """The filter for one workspace's replies.

    Args:
        settings: The workspace's policy and own words.
        guards: Copy guards of the serving model and of the models it was fine-tuned from.
    """

    def __init__(self, settings: FilterSettings, guards: Sequence[CopyGuard] = ()) -> None:
        self.policy = settings.policy
        self.own_words = WordList.from_lines(settings.words)
        self.guards = tuple(guards)

    def check(self, text: str, after: int = 0) -> Checked:
        """Run `text` through the filter.

        Args:
            text: A whole reply (an echoed prompt included).
            after: Where the model's text starts in `text`; copies must reach past it (a user may echo
                their own words).
        """
        return self._check(text, after, self.guards)

    def check_prompt(self, prompt: str) -> Checked:
        """A prompt as it may be echoed: blocked by a slur (or, under `block`, by profanity), else masked.

        A prompt is the user's own text, so the copy guard does not apply to it.
        """
        return self._check(prompt, 0, ())

    def _check(self, text: str, after: int, guards: Sequence[CopyGuard]) -> Checked:
        if slur_list().contains(text):
            return Checked(text, "slur")
        spans: list[tuple[int, int]] = []
        if self.policy != "off":
            found = profanity_list().spans(text)
            if found and self.policy == "block":
                return Checked(text, "profanity")
            spans += found
        if self.own_words:
            found = self.own_words.spans(text)
            if found and self.policy == "block":
                return Checked(text, "own words")
            spans += found
        if guards and find_copy(guards, text, after):
            return Checked(text, "copy")
        masked = len(spans)
        if spans:
            text = _mask_spans(text, _merge(spans))
        text, personal = mask_personal_data(text)
        return Checked(text, None, masked + personal)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


@dataclass
class WorkspaceCounts:
    """What the filter did to one workspace's replies since the bot started."""

    replies: int = 0
    resampled: int = 0
    masked: int = 0
    fallbacks: int = 0


@dataclass
class FilterStats:
    """Counts per (platform, workspace), kept in memory by the process that answers (thread-safe)."""

    _counts: dict[tuple[str, str], WorkspaceCounts] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, platform: str, workspace: str, *, resampled: bool, masked: bool, fallback: bool) -> None:
        """Count one reply."""
        with self._lock:
            counts = self._counts.setdefault((platform, workspace), WorkspaceCounts())
            counts.replies += 1
            counts.resampled += resampled
            counts.masked += masked
            counts.fallbacks += fallback

    def get(self, platform: str, workspace: str) -> WorkspaceCounts:
        """A copy of the counts of one workspace."""
        with self._lock:
            counts = self._counts.get((platform, workspace), WorkspaceCounts())
            return WorkspaceCounts(counts.replies, counts.resampled, counts.masked, counts.fallbacks)

    def describe(self, platform: str, workspace: str, policy: str) -> str:
        """One line for `status` and `stats`."""
        counts = self.get(platform, workspace)
        return (
            f"Output filter: profanity {policy}, slurs always blocked; since the bot started "
            f"{counts.replies} replies, {counts.resampled} resampled, {counts.masked} masked, "
            f"{counts.fallbacks} replaced by the fallback line."
        )
