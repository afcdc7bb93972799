"""forget-me reaches the weights: a sentence one member planted is gone from every model that answers.

A member writes one unique sentence many times; the channel's model learns to complete it. After
`forget-me`, no `/generate` completes it: at once, after the trainer ran again, and after an admin's
`/rollback`. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.core import Services
from bot.core.request import Request
from bot.core.serving import serving_model
from chatsmith.settings import Settings
from chatsmith.wiring import bot_services
from db.models import ModelVersion
from db.schema import upgrade
from tests.bot.conftest import CHANNEL_LINES, Chat, make_settings
from tests.bot.helpers import run_trainer_once

PROMPT = "my secret is"
PLANTED = "my secret is blue zebra ninety"
SECRET = "blue zebra"
# Enough steps for a tiny model to learn one sentence by heart; seconds on one core.
SPEC = {"arch": "gru", "units": 64, "embedding": 16, "seq_len": 32}
# Full length: the trainer's plateau stop would end a memorising run before it has learned the sentence.
MEMORISING = {"epochs": 60, "batch_size": 8, "learning_rate": 0.03, "seed": 3, "check_every": None}
# Only the job that reads the planted sentence must learn it by heart. The clean model before it and the
# retrain after it are short jobs: a short retrain that wrongly started from the model that learned the
# sentence would still complete it, so the checks after it lose nothing.
SHORT = {**MEMORISING, "epochs": 2}
# The learning rate decays over the steps or the time budget, whichever runs out first. A budget far
# beyond the run's seconds keeps the rate a function of the steps alone: the same model on a loaded machine.
TIME_BUDGET_S = "900"


@pytest.fixture
def planted_chat(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Chat]:
    # No base model: the channel's first model trains from scratch, big enough to learn a sentence.
    settings: Settings = make_settings(
        tmp_path / "data",
        None,
        database_url=database_url,
        base_model_path="none",
        trainer_train_config=MEMORISING,
    )
    for name, value in {
        "CHATSMITH_DATA_DIR": str(tmp_path / "data"),
        "CHATSMITH_DATABASE_URL": database_url,
        "CHATSMITH_BASE_MODEL_PATH": "none",
        "CHATSMITH_TRAINER_SPEC": json.dumps(SPEC),
        "CHATSMITH_TRAINER_MIN_MESSAGES": "5",
        "CHATSMITH_TRAINER_HOLDOUT_FRACTION": "0.2",
        "CHATSMITH_TRAINER_TIME_BUDGET": TIME_BUDGET_S,
        "CHATSMITH_TRAINER_TRAIN_CONFIG": json.dumps(MEMORISING),
    }.items():
        monkeypatch.setenv(name, value)
    upgrade(database_url)
    services = bot_services(settings)
    chat = Chat(services, tmp_path / "files")
    yield chat
    chat.close()
    services.close()


def train(chat: Chat, monkeypatch: pytest.MonkeyPatch, config: dict) -> None:
    """Run the trainer once (as `chatsmith trainer --once`), its jobs trained with `config`."""
    monkeypatch.setenv("CHATSMITH_TRAINER_TRAIN_CONFIG", json.dumps(config))
    chat.runner.run(run_trainer_once())


def completions(chat: Chat) -> list[str]:
    """What answers `/generate my secret is` in #general: the serving model at temperature 0, and a
    sampled `/generate` reply."""
    from textgen.generator import Generator

    request = Request(platform="console", workspace="team", channel="general", user="x", command="generate")
    serving = serving_model(chat.services, request)
    assert serving is not None
    [greedy] = Generator.from_bundle(serving.path).generate(PROMPT, max_tokens=24, temperature=0.0)
    reply = chat.user("carl").say(f"/generate {PROMPT} temperature:0.3")
    return [greedy, reply]


def active_versions(services: Services) -> list[int]:
    with services.sessions() as session:
        return list(session.scalars(select(ModelVersion.version).where(ModelVersion.status == "active")))


@pytest.mark.slow
def test_a_planted_sentence_leaves_every_model_that_answers(
    planted_chat: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = planted_chat
    admin, ann, bob = chat.user("root", admin=True), chat.user("ann"), chat.user("bob")
    admin.say("/collect on")
    for line in CHANNEL_LINES[:20]:
        bob.say(line)
    admin.say("/train")
    train(chat, monkeypatch, SHORT)
    assert active_versions(chat.services) == [1]  # a clean model: bob only

    for _ in range(30):
        ann.say(PLANTED)
    admin.say("/train")
    train(chat, monkeypatch, MEMORISING)
    assert active_versions(chat.services) == [2]
    learned = completions(chat)
    assert any(SECRET in text for text in learned), learned

    answer = ann.say("/forget-me")
    # At once: the model that learned it no longer answers, and its bundle is gone.
    assert all(SECRET not in text for text in completions(chat))
    assert active_versions(chat.services) == [1]
    assert "Deleted 30 of your messages" in answer
    assert "1 model version(s) that learned from them stopped answering at once" in answer
    assert "#general now answers with its earlier v1" in answer
    assert "Retraining queued for #general" in answer
    with chat.services.sessions() as session:
        withdrawn = session.scalars(select(ModelVersion).where(ModelVersion.version == 2)).one()
        assert withdrawn.status == "retired" and withdrawn.bundle_path is None
        assert "forget-me" in (withdrawn.note or "")

    # After the trainer ran: the retrain started from the clean v1 (or the base model), never from v2.
    train(chat, monkeypatch, SHORT)
    with chat.services.sessions() as session:
        retrained = session.scalars(select(ModelVersion).where(ModelVersion.version == 3)).one()
        clean = session.scalars(select(ModelVersion.id).where(ModelVersion.version == 1)).one()
        assert retrained.parent_version_id == clean
    assert all(SECRET not in text for text in completions(chat))

    # After an admin's rollback: never back to the version that learned it.
    rolled = admin.say("/rollback")
    assert "v2" not in rolled.split("(")[0]
    assert 2 not in active_versions(chat.services)
    assert all(SECRET not in text for text in completions(chat))
    assert "cannot be activated" in admin_activate(chat, withdrawn.id)


def admin_activate(chat: Chat, version_id: int) -> str:
    """What an operator's `chatsmith models activate` answers for a withdrawn version."""
    from db.errors import DatabaseError
    from db.registry import get_version, promote

    with chat.services.write_sessions.begin() as session:
        try:
            promote(session, get_version(session, version_id))
        except DatabaseError as error:
            return str(error)
    return "activated"
