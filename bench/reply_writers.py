"""Replies written the way `/generate` writes them, under one decoding or another.

A reply without a prompt follows the conversation: here, the held-out messages before a random point of
the held-out part play the channel's latest messages. Each reply goes through what the command core does
after reading them (`bot.core.handlers.generate`): the sampling settings of `reply_params`, the
conversation as context, the output filter with the bundle's, the base's and the conversation's copy
guards, and resampling of blocked samples up to `MAX_ATTEMPTS` before the fallback line.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.services import BotConfig

# Seeds of one writer's replies are `seed * SEED_STRIDE + i`: the runs of different seeds never share one.
SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class Decoding:
    """One way of writing replies: the bot's settings, and whether a reply reads the conversation.

    Attributes:
        name: How the table names it.
        config: The bot's settings (sampling, length, best-of).
        context: Whether the reply follows the conversation's last messages (else it starts afresh,
            like `chatsmith generate`).
    """

    name: str
    config: BotConfig
    context: bool = True


@dataclass(frozen=True)
class Conversation:
    """What the bot has read when it replies: the channel's recent messages, and the newest of them;
    `point` is the index of the held-out message the reply stands in for (`recent` ends just before it)."""

    recent: tuple[str, ...]
    context: tuple[str, ...]
    point: int = 0
    authors: tuple[str, ...] = ()  # who wrote `recent`, where known


@dataclass(frozen=True)
class Written:
    replies: list[str]
    cpu_seconds_per_reply: float


def conversations(
    held_out: list[str],
    count: int,
    seed: int,
    context_messages: int | None = None,
    authors: Sequence[str] = (),
) -> list[Conversation]:
    """`count` random points of the held-out conversation, each with the messages before it (its context:
    the last `context_messages`, the bot's number when None), and who wrote them when `authors` (one per
    held-out message) is given."""
    from bot.core.generation import LENGTH_MESSAGES
    from bot.core.handlers.generate import CONTEXT_MESSAGES

    context = CONTEXT_MESSAGES if context_messages is None else context_messages
    rng = np.random.default_rng(seed)
    points = rng.integers(1, len(held_out), size=count)
    return [
        Conversation(
            tuple(held_out[max(0, point - LENGTH_MESSAGES) : point]),
            tuple(held_out[max(0, point - context) : point]),
            point,
            tuple(authors[max(0, point - LENGTH_MESSAGES) : point]),
        )
        for point in points.tolist()
    ]


def bot_replies(
    bundle: Path,
    guards: list[Any],
    decoding: Decoding,
    points: list[Conversation],
    seed: int,
    members: frozenset[str] = frozenset(),
) -> Written:
    """One reply per conversation in `points`, as `/generate` under `decoding` would post it, and the CPU
    it cost (decoding, names, filter and resampling; the model is loaded before the clock starts).
    `members`: the channel's authors, lowercase, whom a reply names only if its conversation has them."""
    from bot.core.generation import reply_params
    from bot.core.models import load_for_replies
    from bot.core.names import readdress
    from bot.core.output_filter import FALLBACK, MAX_ATTEMPTS, OutputFilter
    from db.filters import FilterSettings
    from textgen.copyguard import build_copy_guard

    generator = load_for_replies(bundle)
    started = time.process_time()
    shared = OutputFilter(FilterSettings(), guards)
    filters = [
        OutputFilter(FilterSettings(), [*guards, build_copy_guard(point.context)])
        if decoding.context and point.context
        else shared
        for point in points
    ]
    # A length drawn from the channel (`length_from_channel`) is drawn the same way for a seed.
    base = [
        reply_params(decoding.config, point.recent, rng=np.random.default_rng([seed, index]))
        for index, point in enumerate(points)
    ]
    contexts = [point.context if decoding.context else () for point in points]
    names = [
        (members, frozenset(a.lower() for a in point.authors), point.authors[-1])
        if decoding.context and decoding.config.names_from_conversation and point.authors
        else None
        for point in points
    ]
    final: list[str] = [FALLBACK] * len(points)
    waiting = list(range(len(points)))
    for attempt in range(MAX_ATTEMPTS):
        params = [replace(base[i], seed=(seed * SEED_STRIDE + i) * MAX_ATTEMPTS + attempt) for i in waiting]
        texts = generator.generate_many([""] * len(waiting), params, [contexts[i] for i in waiting])
        still = []
        for index, text in zip(waiting, texts, strict=True):
            named = names[index]
            checked = filters[index].check(text if named is None else readdress(text, *named))
            if checked.blocked is None:
                final[index] = checked.text
            else:
                still.append(index)
        waiting = still
        if not waiting:
            break
    cpu = time.process_time() - started
    return Written(final, cpu / max(1, len(points)))


# The defaults the decoding rows change one thing of: one fixed length, temperature 0.8, the end where the
# tempered, truncated sampling ends it.
PREVIOUS_DEFAULTS = BotConfig(
    default_length=160,
    temperature=0.8,
    top_p=0.95,
    overrun=0.5,
    end_untempered=False,
    length_from_channel=False,
    names_from_conversation=False,
)


def decodings(adopted: BotConfig) -> list[Decoding]:
    """The fine-tuned model's rows: the bot's defaults, the temperature curve with nothing else, and each
    change to decoding on its own against the previous defaults."""
    previous = PREVIOUS_DEFAULTS
    rows = [Decoding("/generate at the bot's defaults", adopted)]
    if adopted.length_from_channel:
        rows.append(
            Decoding("the bot's defaults, one fixed length", replace(adopted, length_from_channel=False))
        )
    if adopted.names_from_conversation:
        rows.append(
            Decoding(
                "the bot's defaults, names as the model wrote them",
                replace(adopted, names_from_conversation=False),
            )
        )
    # The defaults' own temperature curve (the row at the default's temperature is the defaults' row).
    rows += [
        Decoding(f"the bot's defaults, temperature {temperature}", replace(adopted, temperature=temperature))
        for temperature in (1.0, 1.1)
    ]
    if adopted != previous:
        rows.append(Decoding("/generate at the previous defaults", previous))
    rows += [
        Decoding(
            f"temperature {temperature}, top-p 0.95, no context",
            replace(previous, temperature=temperature),
            False,
        )
        for temperature in (0.8, 1.0, 1.1, 1.3)
    ]
    channel_lengths = replace(previous, length_from_channel=True)
    rows += [
        Decoding("previous defaults, no context", previous, False),
        Decoding("lengths drawn from the channel's last 50", channel_lengths),
        Decoding("lengths from the channel, no overrun", replace(channel_lengths, overrun=0.0)),
        Decoding("best of 4", replace(previous, best_of=4)),
        Decoding(
            "typical 0.9, temperature 1.0", replace(previous, temperature=1.0, top_p=None, typical_p=0.9)
        ),
        Decoding("min-p 0.1, temperature 1.0", replace(previous, temperature=1.0, top_p=None, min_p=0.1)),
        Decoding("min-p 0.05, temperature 1.1", replace(previous, temperature=1.1, top_p=None, min_p=0.05)),
        Decoding(
            "channel lengths + best of 4 + min-p 0.1, temperature 1.0",
            replace(channel_lengths, best_of=4, temperature=1.0, top_p=None, min_p=0.1),
        ),
    ]
    # The bot's defaults end at the model's own rate; these rows change the temperature and truncation.
    untempered_end = replace(previous, end_untempered=True)
    rows += [
        Decoding("ends at the model's own rate, temperature 0.8", untempered_end),
        Decoding("ends at the model's own rate, temperature 1.0", replace(untempered_end, temperature=1.0)),
        Decoding(
            "ends at the model's own rate, min-p 0.05, temperature 1.1",
            replace(untempered_end, temperature=1.1, top_p=None, min_p=0.05),
        ),
    ]
    # A row that decodes as an earlier one does (the defaults' row, say) is measured once, as that row.
    distinct: list[Decoding] = []
    for row in rows:
        if all((row.config, row.context) != (kept.config, kept.context) for kept in distinct):
            distinct.append(row)
    return distinct
