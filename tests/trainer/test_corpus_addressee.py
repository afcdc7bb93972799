"""A scope's training text loses the `nick:` address its members' messages open with."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from db.models import Message, utcnow
from db.scopes import Scope, get_or_create_channel, get_or_create_workspace
from trainer.corpus import load_scope_corpus


def test_training_text_drops_addresses_to_members(engine: Engine) -> None:
    said = [
        ("alice", "hello all"),
        ("bob", "alice: try this"),
        ("alice", "Note: it works"),
        ("bob", "bob, ok"),
    ]
    with Session(engine) as session, session.begin():
        workspace = get_or_create_workspace(session, "console", "W")
        channel = get_or_create_channel(session, workspace, "C")
        channel.collecting = True
        start = utcnow() - timedelta(hours=1)
        session.add_all(
            Message(
                channel_id=channel.id,
                platform_message_id=f"m{index}",
                author_id=author,
                text=text,
                created_at=start + timedelta(seconds=index),
            )
            for index, (author, text) in enumerate(said * 5)
        )
        session.flush()
        scope = Scope(workspace.id, channel.id)
    with Session(engine) as session:
        corpus = load_scope_corpus(session, scope, min_messages=2, holdout_fraction=0.2)
    texts = set(corpus.train) | set(corpus.holdout)
    assert texts == {"hello all", "try this", "Note: it works", "ok"}
