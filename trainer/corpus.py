"""The corpus of a scope: its trainable messages from the database, split into training and held-out text.

The held-out messages are the newest ones. The promotion gate compares models on them, so a model is
judged on how well it predicts what the channel says now, on text neither model trained on.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from db.messages import CorpusMessage, iter_corpus_messages
from db.scopes import Scope
from textgen.corpus import without_addressee
from textgen.slurs import without_slurs
from trainer.config import MAX_HOLDOUT_MESSAGES
from trainer.errors import CorpusTooSmall

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScopeCorpus:
    """A scope's training text and held-out text, each one string per message, oldest first.

    `authors`, `channels` and `oldest_message_at` say whose messages, from which channels (database ids)
    and from when, the corpus holds: the version trained on it records them, so that forget-me, a channel
    taken back from the workspace and the retention limit can find it.
    """

    train: list[str]
    holdout: list[str]
    authors: frozenset[str] = field(default_factory=frozenset)
    oldest_message_at: datetime | None = None
    channels: frozenset[int] = field(default_factory=frozenset)

    @property
    def stats(self) -> dict[str, Any]:
        """Message and character counts, stored with the model version."""
        return {
            "messages": len(self.train) + len(self.holdout),
            "train_messages": len(self.train),
            "holdout_messages": len(self.holdout),
            "train_chars": sum(len(text) for text in self.train),
            "holdout_chars": sum(len(text) for text in self.holdout),
        }


def split_recent(
    messages: list[str], holdout_fraction: float, max_holdout: int = MAX_HOLDOUT_MESSAGES
) -> ScopeCorpus:
    """Hold out the newest `holdout_fraction` of the messages (at least one, at most `max_holdout`).

    Args:
        messages: Oldest first, at least two.
        holdout_fraction: Share of the messages to hold out, in (0, 0.5).
        max_holdout: The most messages held out.
    """
    count = min(max_holdout, max(1, round(len(messages) * holdout_fraction)), len(messages) - 1)
    return ScopeCorpus(train=messages[:-count], holdout=messages[-count:])


def load_scope_corpus(
    session: Session,
    scope: Scope,
    *,
    min_messages: int,
    holdout_fraction: float,
    scope_name: str = "",
    max_chars: int | None = None,
    cutoff: datetime | None = None,
) -> ScopeCorpus:
    """The scope's scrubbed trainable messages, split into training and newest held-out messages.

    `db.messages.iter_corpus_messages` leaves out bot messages, commands, deleted messages, opted-out users,
    channels with collection off and messages written before `cutoff`, and replaces mentions, emails and
    URLs with placeholders. Messages that hold a word of the slur list are left out as well, as they are
    from the base model's corpus (`textgen.slurs.without_slurs`, `chatsmith train --drop-slurs`).

    Args:
        session: Any session.
        scope: The workspace or channel.
        min_messages: Fewest trainable messages to train on.
        holdout_fraction: Share of the newest messages held out.
        scope_name: How to name the scope in the error message.
        max_chars: Keep only the newest messages that fit in this many characters (None: all), read as
            a stream, so that a scope's memory is bounded by the cap and not by its whole history.
        cutoff: The retention limit (`db.messages.retention_cutoff`): older messages are never read.

    Raises:
        CorpusTooSmall: Fewer than `min_messages` trainable messages; the message says how many are needed.
    """
    rows, dropped = without_slurs(
        iter_corpus_messages(session, scope, scrub=True, cutoff=cutoff), text_of=_text_of
    )
    if dropped:
        # How many, never which words or whose messages.
        logger.info("scope %s: left out %d messages that hold a slur", scope.scope_key, dropped)
    rows = _newest_rows(rows, max_chars)
    # Training text: "alice: ..." loses its address, like every corpus (`textgen.corpus.without_addressee`).
    speakers = {row.author_id.casefold() for row in rows}
    messages = [without_addressee(row.text, speakers) for row in rows]
    if len(messages) < max(2, min_messages):
        name = scope_name or f"scope {scope.scope_key}"
        raise CorpusTooSmall(
            f"{name} has {len(messages)} trainable messages, training needs at least {min_messages}; "
            "collect or import more, or lower CHATSMITH_TRAINER_MIN_MESSAGES"
        )
    split = split_recent(messages, holdout_fraction)
    return ScopeCorpus(
        split.train,
        split.holdout,
        authors=frozenset(row.author_id for row in rows),
        oldest_message_at=min((row.created_at for row in rows), default=None),
        channels=frozenset(row.channel_id for row in rows),
    )


def _newest_rows(rows: Iterable[CorpusMessage], max_chars: int | None) -> list[CorpusMessage]:
    """The newest of `rows` (oldest first, as read) whose texts fit in `max_chars`, in order."""
    if max_chars is None:
        return list(rows)
    kept: deque[CorpusMessage] = deque()
    chars = 0
    for row in rows:
        kept.append(row)
        chars += len(row.text)
        while chars > max_chars and len(kept) > 1:
            chars -= len(kept.popleft().text)
    return list(kept)


def _text_of(message: CorpusMessage) -> str:
    return message.text
