"""A damaged bundle under an active version: the scope falls back, the version is marked failed, no server
path reaches the chat, and a retrain fine-tunes from the fallback, never from the damaged bundle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from bot.core import Services
from bot.core.services import BotConfig
from db.engine import create_database_engine
from db.model_store import LocalModelStore
from db.models import ModelVersion
from db.schema import upgrade
from db.scopes import Scope, get_or_create_channel, get_or_create_workspace
from tests.bot.conftest import Chat
from tests.bot.conftest import base_bundle as base_bundle  # noqa: F401  (the session's tiny base model)
from tests.trainer.conftest import register_version


def damage(bundle: Path, suffixes: tuple[str, ...] = (".h5", ".npy", ".npz", ".keras")) -> None:
    """What a bad disk or a half-finished copy leaves: the manifest is fine, the weights are garbage."""
    for path in bundle.iterdir():
        if path.suffix in suffixes:
            path.unlink()
            path.write_bytes(b"\x00garbage\x00" * 8)


@pytest.fixture
def bot(
    database_url: str, tmp_path: Path, base_bundle: Path
) -> Iterator[tuple[Chat, list[Scope], LocalModelStore]]:  # noqa: F811
    engine = create_database_engine(database_url)
    upgrade(engine)
    store = LocalModelStore(tmp_path / "models")
    with Session(engine) as session, session.begin():
        workspace = get_or_create_workspace(session, "console", "team")
        channels = [get_or_create_channel(session, workspace, name) for name in ("general", "random")]
        scopes = [Scope(workspace.id, channel.id) for channel in channels]
    services = Services(engine, BotConfig(base_model_path=base_bundle), store=store)
    chat = Chat(services, tmp_path / "files")
    yield chat, scopes, store
    chat.close()
    services.close()


def _version(chat: Chat, version_id: int) -> ModelVersion:
    with chat.services.sessions() as session:
        version = session.get(ModelVersion, version_id)
        assert version is not None
        return version


def test_generate_with_a_damaged_active_bundle_answers_with_the_previous_version_or_the_base_model(
    bot: tuple[Chat, list[Scope], LocalModelStore],
    base_bundle: Path,  # noqa: F811
) -> None:
    """What must hold: every /generate is answered by a model that loads, the damaged versions are marked
    failed, /status names what really answers, and no reply shows a server path."""
    chat, (general, random), store = bot
    engine = chat.services.engine
    good = register_version(engine, store, general, base_bundle, activate=False)
    bad = register_version(engine, store, general, base_bundle, activate=True)
    damage(Path(_version(chat, bad).bundle_path))
    ann = chat.user("ann")

    answer = ann.say("/generate to be")
    assert ann.last_reply.model == "channel model v1", answer
    assert "/tmp" not in answer and str(store.root) not in answer
    assert _version(chat, bad).status == "failed" and "does not load" in _version(chat, bad).note
    assert _version(chat, good).status == "active"
    assert "the channel model v1 answers" in ann.say("/status")

    # Only its copy guard damaged: the same (a reply is never sent unchecked).
    guarded = register_version(engine, store, general, base_bundle, activate=True)
    damage(Path(_version(chat, guarded).bundle_path), (".npz",))
    answer = ann.say("/generate to be")
    assert ann.last_reply.model == "channel model v1" and "/tmp" not in answer, answer
    assert _version(chat, guarded).status == "failed"

    # A channel whose only version is damaged: the base model answers, and /status says so.
    only = register_version(engine, store, random, base_bundle, activate=True)
    damage(Path(_version(chat, only).bundle_path))
    bob = chat.user("bob", channel="random")
    answer = bob.say("/generate to be")
    assert bob.last_reply.model == "base model", answer
    assert "/tmp" not in answer
    assert _version(chat, only).status == "failed"
    assert "the base model answers" in bob.say("/status")
