"""`collect unshare` reaches the weights: a sentence planted in a shared private channel leaves the
workspace model that answers everywhere else.

A private channel shared with the workspace (`collect share`) teaches the workspace model one unique
sentence. After `collect unshare`, `/generate` in another channel completes it 0 times in 20: at once,
after the trainer ran again, and after an admin's `/rollback`. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.core.request import Request
from db.models import ModelVersion
from tests.bot.conftest import CHANNEL_LINES, Chat
from tests.bot.test_forget_me_weights import (
    MEMORISING,
    PLANTED,
    PROMPT,
    SECRET,
    SHORT,
    active_versions,
    planted_chat,
    train,
)

__all__ = ["planted_chat"]  # the fixture, shared with the forget-me test


def in_secret(chat: Chat, line: str) -> str:
    """An admin's `collect` command in #secret, which the platform reports private."""
    request = Request(
        platform="console",
        workspace="team",
        channel="secret",
        channel_name="secret",
        channel_private=True,
        user="root",
        command="collect",
        args={"state": line},
        permissions=frozenset({"administrator"}),
    )
    return chat.runner.run(chat.core.handle(request)).text


def completions_elsewhere(chat: Chat, tries: int = 20) -> list[str]:
    """`/generate my secret is` in #general (which has no model of its own: the workspace model answers)."""
    carl = chat.user("carl")
    return [carl.say(f"/generate {PROMPT} temperature:0.{3 + i % 5}") for i in range(tries)]


def workspace_versions(chat: Chat) -> list[tuple[int, str]]:
    with chat.services.sessions() as session:
        rows = session.execute(
            select(ModelVersion.version, ModelVersion.status)
            .where(ModelVersion.channel_id.is_(None))
            .order_by(ModelVersion.version)
        )
        return [(version, status) for version, status in rows]


@pytest.mark.slow
def test_unsharing_a_channel_takes_its_sentence_out_of_the_workspace_model(
    planted_chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = planted_chat
    admin, bob = chat.user("root", admin=True), chat.user("bob")
    admin.say("/collect on")
    for line in CHANNEL_LINES[:20]:
        bob.say(line)
    admin.say("/train workspace")
    train(chat, monkeypatch, SHORT)
    assert workspace_versions(chat) == [(1, "active")]  # clean: #general only

    in_secret(chat, "on")
    assert "trains the workspace model too" in in_secret(chat, "share")
    ann = chat.user("ann", channel="secret")
    for _ in range(30):
        ann.say(PLANTED)
    admin.say("/train workspace")
    train(chat, monkeypatch, MEMORISING)
    assert active_versions(chat.services) == [2]
    learned = completions_elsewhere(chat, tries=5)
    assert any(SECRET in text for text in learned), learned

    answer = in_secret(chat, "unshare")
    assert "#secret no longer trains the workspace model" in answer
    assert "1 model version(s) that learned from #secret stopped answering at once" in answer
    assert "the workspace model now answers with its earlier v1" in answer
    # At once.
    assert [SECRET in text for text in completions_elsewhere(chat)] == [False] * 20
    assert workspace_versions(chat) == [(1, "active"), (2, "retired")]

    # After the trainer ran: the retrain fine-tunes the clean v1, without #secret's messages.
    train(chat, monkeypatch, SHORT)
    with chat.services.sessions() as session:
        retrained = session.scalars(
            select(ModelVersion).where(ModelVersion.version == 3, ModelVersion.channel_id.is_(None))
        ).one()
        clean = session.scalars(
            select(ModelVersion.id).where(ModelVersion.version == 1, ModelVersion.channel_id.is_(None))
        ).one()
        assert retrained.parent_version_id == clean
    assert [SECRET in text for text in completions_elsewhere(chat)] == [False] * 20

    # After an admin's rollback: never back to the version that learned it.
    admin.say("/rollback workspace")
    assert (2, "active") not in workspace_versions(chat)
    assert [SECRET in text for text in completions_elsewhere(chat)] == [False] * 20
