"""Collected messages and consent: recording, edits and deletes, forgetting a user, and the corpus.

Consent is checked twice: nothing is recorded from a channel with collection off or from a user who
opted out, and `corpus_for_scope` filters the same way again, because collection can be switched off
(and users can opt out) after their messages were stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Result,
    and_,
    delete,
    exists,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import Channel, Message, UserOptOut, utcnow
from db.scopes import Scope
from db.scrub import scrub_text

# Slash commands; bots with text commands add their own prefix ("!", "?") through `command_prefixes`.
DEFAULT_COMMAND_PREFIXES: tuple[str, ...] = ("/",)


@dataclass(frozen=True)
class ForgetResult:
    """What `forget_user` did.

    Attributes:
        deleted_messages: How many stored messages of the user were deleted.
        affected_scopes: Scopes whose models saw those messages (each channel and its workspace), so that
            the caller can queue retraining.
    """

    deleted_messages: int
    affected_scopes: list[Scope]


def record_message(
    session: Session,
    channel: Channel,
    platform_message_id: str,
    author_id: str,
    text: str,
    created_at: datetime,
    *,
    author_is_bot: bool = False,
) -> Message | None:
    """Store a message seen in `channel`, once: a redelivered event returns the row already stored.

    Args:
        session: The caller's session (flushed, not committed).
        channel: Where the message was posted.
        platform_message_id: The platform's id of the message, unique within the channel.
        author_id: The platform's id of the author.
        text: The message text as the platform sent it (scrubbing happens when the corpus is built).
        created_at: When it was posted (aware datetime).
        author_is_bot: Whether a bot (this one included) wrote it; kept so the corpus can leave it out.

    Returns:
        The stored message, or None when it must not be kept: the channel's collection is off or the
        author opted out. A message already deleted stays deleted.
    """
    if not channel.collecting or is_opted_out(session, channel.workspace_id, author_id):
        return None
    query = select(Message).where(
        Message.channel_id == channel.id, Message.platform_message_id == platform_message_id
    )
    existing = session.scalars(query).one_or_none()
    if existing is not None:
        return existing
    message = Message(
        channel_id=channel.id,
        platform_message_id=platform_message_id,
        author_id=author_id,
        author_is_bot=author_is_bot,
        text=text,
        created_at=created_at,
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        # Another process stored the same event between our read and our insert.
        return session.scalars(query).one()
    return message


def edit_message(
    session: Session, channel: Channel, platform_message_id: str, text: str, edited_at: datetime | None = None
) -> bool:
    """Apply an edit made on the platform. Returns whether a stored, not deleted message was changed."""
    message = _find(session, channel, platform_message_id)
    if message is None or message.deleted:
        return False
    message.text = text
    message.edited_at = edited_at or utcnow()
    return True


def delete_message(session: Session, channel: Channel, platform_message_id: str) -> bool:
    """Apply a delete made on the platform: the text is erased and the row kept as a tombstone.

    The tombstone stops a late or repeated delivery of the original message from storing it again.
    Returns whether a stored message was deleted now.
    """
    message = _find(session, channel, platform_message_id)
    if message is None or message.deleted:
        return False
    message.deleted = True
    message.text = ""
    return True


def _find(session: Session, channel: Channel, platform_message_id: str) -> Message | None:
    return session.scalars(
        select(Message).where(
            Message.channel_id == channel.id, Message.platform_message_id == platform_message_id
        )
    ).one_or_none()


def is_opted_out(session: Session, workspace_id: int, user_id: str) -> bool:
    """Whether the user asked not to be collected in this workspace."""
    return (
        session.scalar(
            select(UserOptOut.id).where(
                UserOptOut.workspace_id == workspace_id, UserOptOut.user_id == user_id
            )
        )
        is not None
    )


def forget_user(
    session: Session, workspace_id: int, user_id: str, now: datetime | None = None
) -> ForgetResult:
    """Delete everything a user wrote in a workspace and keep them out of it from now on.

    Models already trained on their messages are not touched here; the returned scopes say which to
    retrain.

    Returns:
        How many messages were deleted and which scopes they had fed.
    """
    channel_ids = select(Channel.id).where(Channel.workspace_id == workspace_id)
    of_user = and_(Message.channel_id.in_(channel_ids), Message.author_id == user_id)
    touched = sorted(set(session.scalars(select(Message.channel_id).where(of_user, not_(Message.deleted)))))
    deleted = _rowcount(session.execute(delete(Message).where(of_user)))
    if not is_opted_out(session, workspace_id, user_id):
        session.add(UserOptOut(workspace_id=workspace_id, user_id=user_id, opted_out_at=now or utcnow()))
    session.flush()
    scopes = [Scope(workspace_id)] if touched else []
    scopes += [Scope(workspace_id, channel_id) for channel_id in touched]
    return ForgetResult(deleted_messages=deleted, affected_scopes=scopes)


def _rowcount(result: Result[Any]) -> int:
    # Bulk DELETE always returns a cursor result; the ORM's signature is wider than that.
    return cast(CursorResult[Any], result).rowcount


def set_collection(
    session: Session, channel: Channel, enabled: bool, by: str, now: datetime | None = None
) -> Channel:
    """Turn collection in a channel on or off, recording which admin turned it on and when.

    Turning it off keeps what was stored but leaves it out of every corpus until it is turned on again.
    """
    if enabled and not channel.collecting:
        channel.collection_enabled_by = by
        channel.collection_enabled_at = now or utcnow()
    channel.collecting = enabled
    session.flush()
    return channel


def retention_cutoff(days: int, now: datetime | None = None) -> datetime | None:
    """The time before which messages are past a retention limit of `days` days; None for no limit (0)."""
    if days <= 0:
        return None
    return (now or utcnow()) - timedelta(days=days)


def _training_messages(
    scope: Scope, command_prefixes: Sequence[str], cutoff: datetime | None = None
) -> list[ColumnElement[bool]]:
    """Conditions for messages (joined with their channel) that may be trained on in `scope`."""
    conditions: list[ColumnElement[bool]] = [
        Channel.workspace_id == scope.workspace_id,
        Channel.collecting == true(),
        not_(Message.author_is_bot),
        not_(Message.deleted),
        ~exists().where(
            UserOptOut.workspace_id == Channel.workspace_id, UserOptOut.user_id == Message.author_id
        ),
    ]
    if cutoff is not None:
        # Past the retention limit: never read, even before the trainer's hourly pass deletes it.
        conditions.append(Message.created_at >= cutoff)
    if scope.channel_id is not None:
        conditions.append(Channel.id == scope.channel_id)
    else:
        # The workspace model answers in every channel: a private channel feeds it only when an admin
        # shared that channel with the workspace explicitly.
        conditions.append(or_(not_(Channel.private), Channel.workspace_training == true()))
    # Commands to the bot are requests, not conversation; leading spaces do not hide one.
    stripped = func.ltrim(Message.text)
    conditions += [
        not_(stripped.startswith(prefix, autoescape=True)) for prefix in command_prefixes if prefix
    ]
    return conditions


def iter_corpus(
    session: Session,
    scope: Scope,
    *,
    command_prefixes: Sequence[str] = DEFAULT_COMMAND_PREFIXES,
    scrub: bool = True,
    batch_size: int = 2000,
    cutoff: datetime | None = None,
) -> Iterator[str]:
    """Stream the training texts of a scope in time order; see `corpus_for_scope`."""
    query = (
        select(Message.text)
        .join(Channel, Message.channel_id == Channel.id)
        .where(*_training_messages(scope, command_prefixes, cutoff))
        .order_by(Message.created_at, Message.id)
        .execution_options(yield_per=batch_size)
    )
    for text in session.scalars(query):
        if scrub:
            text = scrub_text(text)
        if text.strip():
            yield text


@dataclass(frozen=True)
class CorpusMessage:
    """One training message with what privacy needs to know of it: who wrote it, when and where."""

    text: str
    author_id: str
    created_at: datetime
    channel_id: int


def iter_corpus_messages(
    session: Session,
    scope: Scope,
    *,
    command_prefixes: Sequence[str] = DEFAULT_COMMAND_PREFIXES,
    scrub: bool = True,
    batch_size: int = 2000,
    cutoff: datetime | None = None,
) -> Iterator[CorpusMessage]:
    """Like `iter_corpus`, with each text's author and time, read by the same query (one snapshot)."""
    query = (
        select(Message.text, Message.author_id, Message.created_at, Message.channel_id)
        .join(Channel, Message.channel_id == Channel.id)
        .where(*_training_messages(scope, command_prefixes, cutoff))
        .order_by(Message.created_at, Message.id)
        .execution_options(yield_per=batch_size)
    )
    for text, author_id, created_at, channel_id in session.execute(query):
        if scrub:
            text = scrub_text(text)
        if text.strip():
            yield CorpusMessage(text, author_id, created_at, channel_id)


def corpus_for_scope(
    session: Session,
    scope: Scope,
    *,
    command_prefixes: Sequence[str] = DEFAULT_COMMAND_PREFIXES,
    scrub: bool = True,
    cutoff: datetime | None = None,
) -> list[str]:
    """The texts a scope's model may be trained on, oldest first.

    A workspace scope takes every channel of the workspace that has collection on, except private channels
    an admin did not share with the workspace (`Channel.workspace_training`). Left out: messages by
    bots, deleted messages, messages of users who opted out, channels with collection off, commands to the
    bot (texts starting with one of `command_prefixes`), and texts empty after scrubbing.

    Args:
        session: Any session.
        scope: The workspace or channel.
        command_prefixes: Prefixes that mark a command to the bot.
        scrub: Replace mentions, emails and URLs with placeholders (see `db.scrub.scrub_text`).
        cutoff: Messages written before it are left out: past the retention limit (`retention_cutoff`),
            they are as good as deleted.

    Returns:
        One string per message.
    """
    return list(iter_corpus(session, scope, command_prefixes=command_prefixes, scrub=scrub, cutoff=cutoff))


def count_messages_since(
    session: Session,
    scope: Scope,
    since: datetime | None,
    *,
    command_prefixes: Sequence[str] = DEFAULT_COMMAND_PREFIXES,
) -> int:
    """How many trainable messages (as `corpus_for_scope` counts them) were posted after `since`.

    `since` None counts them all. The scheduler compares this with zero (or a threshold) to decide whether
    a scope needs retraining.
    """
    conditions = _training_messages(scope, command_prefixes)
    if since is not None:
        conditions.append(Message.created_at > since)
    query = select(func.count(Message.id)).join(Channel, Message.channel_id == Channel.id).where(*conditions)
    return session.scalar(query) or 0


def recent_messages(
    session: Session,
    scope: Scope,
    limit: int,
    *,
    author_id: str | None = None,
    command_prefixes: Sequence[str] = DEFAULT_COMMAND_PREFIXES,
    cutoff: datetime | None = None,
) -> list[str]:
    """The newest `limit` messages of a channel scope that may be trained on (so: collected, not deleted,
    not from opted-out members, not commands, not written before `cutoff`), oldest first and scrubbed like
    the corpus; only `author_id`'s when given. The conversation a reply follows (`textgen.context`)."""
    return [
        text
        for _author, text in recent_messages_by(
            session, scope, limit, author_id=author_id, command_prefixes=command_prefixes, cutoff=cutoff
        )
    ]


def recent_messages_by(
    session: Session,
    scope: Scope,
    limit: int,
    *,
    author_id: str | None = None,
    command_prefixes: Sequence[str] = DEFAULT_COMMAND_PREFIXES,
    cutoff: datetime | None = None,
) -> list[tuple[str, str]]:
    """`recent_messages` with each message's author: (author id, text) pairs, oldest first."""
    query = (
        select(Message.author_id, Message.text)
        .join(Channel, Message.channel_id == Channel.id)
        .where(*_training_messages(scope, command_prefixes, cutoff))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    )
    if author_id is not None:
        query = query.where(Message.author_id == author_id)
    rows = [(author, scrub_text(text)) for author, text in session.execute(query)]
    return [(author, text) for author, text in reversed(rows) if text.strip()]


def workspace_author_ids(session: Session, workspace_id: int) -> frozenset[str]:
    """Every author id, lowercase, of the workspace's messages that are still stored: the members a model
    of its channels may have learned to name (deleted messages and opted-out authors included)."""
    query = (
        select(Message.author_id)
        .join(Channel, Message.channel_id == Channel.id)
        .where(Channel.workspace_id == workspace_id)
        .distinct()
    )
    return frozenset(author.lower() for author in session.scalars(query))


def messages_per_day(session: Session, channel_id: int) -> list[tuple[date, int]]:
    """How many messages of a channel (not deleted, not from bots) were posted each UTC day, oldest day
    first; days without any are left out. Counted by the database (one row per day), so a channel of
    millions of messages costs as little to chart as a quiet one."""
    if session.get_bind().dialect.name == "postgresql":
        # The session's time zone would decide the day of a `timestamptz`; the day is UTC's.
        day: ColumnElement[Any] = func.date(func.timezone("UTC", Message.created_at))
    else:
        day = func.date(Message.created_at)  # SQLite keeps UTC text: "2025-01-02 03:04:05.000000"
    query = (
        select(day.label("day"), func.count(Message.id))
        .where(Message.channel_id == channel_id, Message.deleted.is_(False), Message.author_is_bot.is_(False))
        .group_by(day)
        .order_by(day)
    )
    return [
        (value if isinstance(value, date) else date.fromisoformat(str(value)), int(count))
        for value, count in session.execute(query)
    ]
