"""Fixtures for the trainer tests: databases (SQLite, and PostgreSQL when configured), tiny models, scopes.

Models are tiny (a GRU of 24 units over 16-byte windows, a few steps) so that a whole job takes about a
second; the tests check the trainer's bookkeeping, not what the models learn.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from db.engine import create_database_engine, immediate
from db.model_store import LocalModelStore
from db.models import Message, utcnow
from db.registry import create_version, mark_candidate, promote
from db.scopes import Scope, get_or_create_channel, get_or_create_workspace
from tests.schema_template import copy_migrated_schema
from tests.shared_models import built_once
from trainer.config import TrainerConfig

REPOSITORY = Path(__file__).resolve().parents[2]
# The first 8,000 lines of the Ubuntu IRC log (CC-BY-4.0, see tests/data/README.md).
IRC_LOG = REPOSITORY / "tests" / "data" / "ubuntu-irc-head.log"

TINY_SPEC = {"arch": "gru", "units": 24, "embedding": 8, "seq_len": 16}
# A job of this config trains 8 steps: about a second on one core, TensorFlow's tracing included. The
# high learning rate takes it clearly past a uniform guess (0.2 nats/char on 150 messages), which the
# promotion gate requires of a first model; at 4 steps of the default rate the margin was 0.03, and a
# first model was now and then rejected.
QUICK_TRAIN = {"epochs": 1, "steps_per_epoch": 8, "batch_size": 8, "learning_rate": 1e-2}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to the newest schema."""
    copy_migrated_schema(database_url)
    engine = create_database_engine(database_url, busy_timeout_ms=5000)
    yield engine
    engine.dispose()


@pytest.fixture
def store(tmp_path: Path) -> LocalModelStore:
    return LocalModelStore(tmp_path / "models")


@pytest.fixture(scope="session")
def chat_lines() -> list[str]:
    """Messages of the first 6,000 lines of the Ubuntu IRC log slice in tests/data."""
    from textgen.corpus import parse_corpus

    with IRC_LOG.open(encoding="utf-8") as handle:
        head = "".join(next(handle, "") for _ in range(6000))
    return parse_corpus(head, "irc").messages


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, chat_lines: list[str]) -> Path:
    """A tiny model trained once per run: the base or active model of many tests."""
    from textgen.spec import ModelSpec, TrainConfig
    from textgen.training import train_model

    config = TrainConfig(epochs=1, steps_per_epoch=40, batch_size=16, learning_rate=1e-2)
    return built_once(
        tmp_path_factory,
        "tiny",
        lambda out: train_model(chat_lines[:1500], out, spec=ModelSpec(**TINY_SPEC), config=config),
    )


@pytest.fixture
def trainer_config(tmp_path: Path) -> TrainerConfig:
    """Quick jobs, from scratch, with a heartbeat fast enough for tests."""
    return TrainerConfig(
        heartbeat_seconds=0.3,
        stale_after_seconds=2.0,
        time_budget=60.0,
        min_messages=100,
        keep_versions=5,
        spec=dict(TINY_SPEC),
        train_config=dict(QUICK_TRAIN),
        base_model=None,
        model_dir=tmp_path / "models",
    )


ScopeMaker = Callable[..., Scope]


@pytest.fixture
def make_scope(engine: Engine, chat_lines: list[str]) -> ScopeMaker:
    """Create a collecting channel with `messages` chat lines; returns its scope (or its workspace's)."""

    def make(
        channel: str = "general", workspace: str = "W", *, messages: int = 400, workspace_scope: bool = False
    ) -> Scope:
        with Session(engine) as session, session.begin():
            ws = get_or_create_workspace(session, "console", workspace)
            ch = get_or_create_channel(session, ws, channel)
            ch.collecting = True
            start = utcnow() - timedelta(hours=1)
            session.add_all(
                Message(
                    channel_id=ch.id,
                    platform_message_id=f"m{index}",
                    author_id=f"user{index % 7}",
                    text=text,
                    created_at=start + timedelta(seconds=index),
                )
                for index, text in enumerate(chat_lines[:messages])
            )
            session.flush()
            return Scope(ws.id) if workspace_scope else Scope(ws.id, ch.id)

    return make


def register_version(
    engine: Engine, store: LocalModelStore, scope: Scope, bundle: Path, *, activate: bool
) -> int:
    """Publish a copy of `bundle` as the scope's next version (active, or a candidate that once served)."""
    with Session(immediate(engine), expire_on_commit=False) as session, session.begin():
        version = create_version(session, scope, tokenizer_kind="byte", spec=dict(TINY_SPEC))
        target = Path(store.location_for(scope.scope_key, version.version))
        shutil.copytree(bundle, target)
        mark_candidate(session, version, bundle_path=str(target))
        promote(session, version)
        if not activate:
            version.status = "candidate"
        return version.id


def trainer_environment(tmp_path: Path, database_url: str, **settings: str) -> dict[str, str]:
    """Environment for a `chatsmith` subprocess on the test's database and directories."""
    env = {
        **os.environ,
        "CHATSMITH_DATA_DIR": str(tmp_path / "data"),
        "CHATSMITH_DATABASE_URL": database_url,
        "CHATSMITH_MODEL_DIR": str(tmp_path / "models"),
        "CHATSMITH_BASE_MODEL_PATH": "none",
        "CHATSMITH_TRAINER_SPEC": '{"arch": "gru", "units": 24, "embedding": 8, "seq_len": 16}',
        "CHATSMITH_TRAINER_TRAIN_CONFIG": json.dumps(QUICK_TRAIN),
        "CHATSMITH_TRAINER_MIN_MESSAGES": "100",
        "CHATSMITH_TRAINER_HEARTBEAT_SECONDS": "0.3",
        "CHATSMITH_TRAINER_STALE_AFTER_SECONDS": "2",
        "CHATSMITH_TRAINER_POLL_SECONDS": "0.5",
        "CUDA_VISIBLE_DEVICES": "",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": str(REPOSITORY),
    }
    env.update(settings)
    return env


def start_trainer(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen[bytes]:
    """Start `chatsmith trainer ARGS` as a real process, its output into `log`."""
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "chatsmith.cli", "trainer", *args],
        cwd=REPOSITORY,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
