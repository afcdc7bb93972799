"""Collecting messages, consent, forgetting a user, and building a scope's corpus."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.messages import (
    corpus_for_scope,
    count_messages_since,
    delete_message,
    edit_message,
    forget_user,
    is_opted_out,
    iter_corpus_messages,
    recent_messages,
    recent_messages_by,
    record_message,
    retention_cutoff,
    set_collection,
    workspace_author_ids,
)
from db.models import Channel, Message, UserOptOut
from db.scopes import Scope

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _say(
    session: Session, channel: Channel, message_id: str, text: str, minute: int, **kwargs: object
) -> None:
    author = str(kwargs.pop("author", "alice"))
    record_message(session, channel, message_id, author, text, T0 + timedelta(minutes=minute), **kwargs)  # type: ignore[arg-type]


def test_record_is_idempotent_by_platform_id(session: Session, make_channel: Callable) -> None:
    channel = make_channel()
    first = record_message(session, channel, "m1", "alice", "hello", T0)
    again = record_message(session, channel, "m1", "alice", "hello (redelivered)", T0)
    session.commit()

    assert first is not None and again is first
    assert session.scalar(select(func.count(Message.id))) == 1
    assert first.created_at == T0
    # The same platform id in another channel is another message.
    assert record_message(session, make_channel("random"), "m1", "bob", "hi", T0) is not None


def test_nothing_is_recorded_without_consent(session: Session, make_channel: Callable) -> None:
    closed = make_channel("closed", collecting=False)
    open_channel = make_channel("open")
    session.add(UserOptOut(workspace_id=open_channel.workspace_id, user_id="carol"))
    session.flush()

    assert record_message(session, closed, "m1", "alice", "not collected", T0) is None
    assert record_message(session, open_channel, "m2", "carol", "opted out", T0) is None
    assert session.scalar(select(func.count(Message.id))) == 0


def test_edits_and_deletes_are_applied_and_deletes_stick(session: Session, make_channel: Callable) -> None:
    channel = make_channel()
    _say(session, channel, "m1", "helo wrld", 0)

    assert edit_message(session, channel, "m1", "hello world", T0 + timedelta(minutes=1))
    assert corpus_for_scope(session, Scope.of(channel)) == ["hello world"]
    assert delete_message(session, channel, "m1")
    assert not delete_message(session, channel, "m1")
    assert not edit_message(session, channel, "m1", "edited after delete")
    assert not edit_message(session, channel, "unknown", "x")
    # A late redelivery of the original message does not bring it back.
    record_message(session, channel, "m1", "alice", "helo wrld", T0)

    stored = session.scalars(select(Message)).one()
    assert (stored.deleted, stored.text) == (True, "")
    assert corpus_for_scope(session, Scope.of(channel)) == []


def test_corpus_keeps_only_consented_human_conversation(session: Session, make_channel: Callable) -> None:
    general = make_channel("general")
    random = make_channel("random")
    closed = make_channel("closed", collecting=False)
    _say(session, general, "g3", "third, mail me at a@b.io", 3)
    _say(session, general, "g1", "first from <@42>", 1)  # recorded out of order: the corpus sorts by time
    _say(session, general, "bot", "I am the bot's own output", 2, author="B0T", author_is_bot=True)
    _say(session, general, "cmd", "/generate seed text", 4)
    _say(session, general, "cmd2", "   /train", 5)
    _say(session, general, "bang", "!generate please", 6)
    _say(session, general, "gone", "deleted later", 7)
    delete_message(session, general, "gone")
    _say(session, general, "dave", "dave talks", 8, author="dave")
    _say(session, general, "blank", "   ", 9)
    _say(session, random, "r1", "second, in random: https://example.com", 2)
    set_collection(session, closed, True, by="admin")
    _say(session, closed, "c1", "said while collection was on", 1)
    set_collection(session, closed, False, by="admin")
    # Dave opts out after his message was stored: the corpus must still leave it out.
    session.add(UserOptOut(workspace_id=general.workspace_id, user_id="dave"))
    session.commit()

    workspace = Scope(general.workspace_id)
    assert corpus_for_scope(session, workspace, command_prefixes=("/", "!")) == [
        "first from @user",
        "second, in random: <url>",
        "third, mail me at <email>",
    ]
    assert corpus_for_scope(session, Scope.of(general)) == [
        "first from @user",
        "third, mail me at <email>",
        "!generate please",
    ]
    assert corpus_for_scope(session, Scope.of(random), scrub=False) == [
        "second, in random: https://example.com"
    ]
    assert corpus_for_scope(session, Scope.of(closed)) == []


def test_count_messages_since(session: Session, make_channel: Callable) -> None:
    general = make_channel("general")
    other_workspace = make_channel("general", workspace="W2")
    for minute in range(5):
        _say(session, general, f"m{minute}", f"message {minute}", minute)
    _say(session, general, "bot", "bot", 10, author="bot", author_is_bot=True)
    _say(session, general, "cmd", "/train", 11)
    _say(session, other_workspace, "x", "elsewhere", 12)
    session.commit()

    scope = Scope.of(general)
    assert count_messages_since(session, scope, None) == 5
    assert count_messages_since(session, scope, T0 + timedelta(minutes=2)) == 2
    assert count_messages_since(session, Scope(general.workspace_id), T0 + timedelta(minutes=4)) == 0


def test_forget_user_deletes_their_messages_in_that_workspace_only(
    session: Session, make_channel: Callable
) -> None:
    general = make_channel("general")
    random = make_channel("random")
    quiet = make_channel("quiet")
    elsewhere = make_channel("general", workspace="W2")
    _say(session, general, "1", "mine", 1, author="erin")
    _say(session, random, "2", "mine too", 2, author="erin")
    _say(session, quiet, "3", "not mine", 3, author="frank")
    _say(session, elsewhere, "4", "erin in another workspace", 4, author="erin")
    session.commit()

    result = forget_user(session, general.workspace_id, "erin")
    session.commit()

    assert result.deleted_messages == 2
    assert result.affected_scopes == [
        Scope(general.workspace_id),
        Scope.of(general),
        Scope.of(random),
    ]
    assert is_opted_out(session, general.workspace_id, "erin")
    assert not is_opted_out(session, elsewhere.workspace_id, "erin")
    assert corpus_for_scope(session, Scope(general.workspace_id)) == ["not mine"]
    assert corpus_for_scope(session, Scope.of(elsewhere)) == ["erin in another workspace"]
    assert record_message(session, general, "5", "erin", "after forgetting", T0) is None
    # Forgetting again is harmless.
    assert forget_user(session, general.workspace_id, "erin") == type(result)(0, [])
    assert session.scalar(select(func.count(UserOptOut.id))) == 1


def test_set_collection_records_who_and_when(session: Session, make_channel: Callable) -> None:
    channel = make_channel(collecting=False)

    set_collection(session, channel, True, by="admin-1", now=T0)
    set_collection(session, channel, True, by="admin-2", now=T0 + timedelta(days=1))
    session.commit()

    assert (channel.collecting, channel.collection_enabled_by, channel.collection_enabled_at) == (
        True,
        "admin-1",
        T0,
    )
    set_collection(session, channel, False, by="admin-2")
    assert not channel.collecting


def test_a_private_channel_feeds_only_its_own_model_unless_shared(
    session: Session, make_channel: Callable
) -> None:
    general, secret = make_channel("general"), make_channel("secret")
    secret.private = True
    _say(session, general, "g1", "said in public", 1)
    _say(session, secret, "s1", "said in private", 2)
    session.commit()
    workspace = Scope(general.workspace_id)

    # The workspace model answers in every channel: a private channel stays out of it...
    assert corpus_for_scope(session, workspace) == ["said in public"]
    assert count_messages_since(session, workspace, None) == 1
    assert corpus_for_scope(session, Scope.of(secret)) == ["said in private"]
    # ...until an admin shares that channel with the workspace explicitly.
    secret.workspace_training = True
    session.commit()
    assert corpus_for_scope(session, workspace) == ["said in public", "said in private"]


def test_messages_past_the_retention_limit_are_never_read(session: Session, make_channel: Callable) -> None:
    """Before the trainer's hourly pass deletes them, neither a corpus nor a reply's context reads them."""
    general = make_channel("general")
    _say(session, general, "old", "said 40 days ago", 0, author="ann")
    _say(session, general, "new", "said yesterday", 39 * 24 * 60)
    session.commit()
    scope, workspace = Scope.of(general), Scope(general.workspace_id)
    cutoff = retention_cutoff(30, now=T0 + timedelta(days=40))
    assert cutoff == T0 + timedelta(days=10)

    assert corpus_for_scope(session, scope, cutoff=cutoff) == ["said yesterday"]
    assert corpus_for_scope(session, workspace, cutoff=cutoff) == ["said yesterday"]
    assert [m.author_id for m in iter_corpus_messages(session, workspace, cutoff=cutoff)] == ["alice"]
    assert recent_messages(session, scope, 4, cutoff=cutoff) == ["said yesterday"]
    assert recent_messages(session, scope, 4, author_id="ann", cutoff=cutoff) == []
    # No limit (0) reads everything, as before.
    assert retention_cutoff(0) is None
    assert recent_messages(session, scope, 4, cutoff=retention_cutoff(0)) == [
        "said 40 days ago",
        "said yesterday",
    ]


def test_a_reply_reads_who_wrote_its_conversation_and_who_the_workspace_members_are(
    session: Session, make_channel: Callable
) -> None:
    general, random = make_channel("general"), make_channel("random")
    other_workspace = make_channel("general", workspace="W2")
    _say(session, general, "g1", "hello", 0, author="Ann")
    _say(session, general, "g2", "/generate", 1, author="bob")  # a command: not conversation
    _say(session, general, "g3", "how are you", 2, author="carl")
    _say(session, random, "r1", "over here", 3, author="dora")
    _say(session, other_workspace, "o1", "elsewhere", 4, author="eve")
    session.commit()
    assert recent_messages_by(session, Scope.of(general), 4) == [("Ann", "hello"), ("carl", "how are you")]
    # Everyone who wrote in the workspace, commands and other channels included, lowercase.
    assert workspace_author_ids(session, general.workspace_id) == {"ann", "bob", "carl", "dora"}
