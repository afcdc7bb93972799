"""Fixtures for the bot tests: a tiny base model per session, bot settings and services per test, and
`chat`, the whole bot in-process behind the console adapter, so that a test reads like a conversation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot import defaults as bot_defaults
from bot.console import ConsoleChat
from bot.core import CommandCore, Services
from chatsmith.settings import Settings
from chatsmith.wiring import bot_services
from tests.schema_template import copy_migrated_schema
from tests.shared_models import built_once

# Lines of chat the channel scenarios collect: repetitive on purpose, so that a few fine-tuning steps
# make a model that beats the base model on them (the trainer's promotion gate compares the two).
CHANNEL_LINES = [f"the cat sat on the mat number {i} and the dog sat on the log" for i in range(40)]


@pytest.fixture(scope="session")
def base_bundle(tmp_path_factory: pytest.TempPathFactory, shakespeare: str) -> Path:
    """A tiny base model (GRU, 16 units) trained for a few steps, once per run: enough to generate."""
    from textgen.spec import ModelSpec, TrainConfig
    from textgen.training import train_model

    lines = [line for line in shakespeare[:20_000].splitlines() if line.strip()]

    def train(out: Path) -> None:
        train_model(
            lines,
            out,
            spec=ModelSpec(arch="gru", layers=1, units=16, embedding=8, seq_len=16),
            config=TrainConfig(batch_size=8, epochs=1, steps_per_epoch=4, val_fraction=0.1, seed=1),
            tokenizer="byte",
            precision="float32",
        )

    return built_once(tmp_path_factory, "base-model", train)


def make_settings(data_dir: Path, base_bundle: Path | None, **overrides: Any) -> Settings:
    """Bot settings for tests: no cooldowns or workspace shares, a tiny trainer, the session's base model."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "base_model_path": base_bundle,
        "generate_user_cooldown": 0,
        "generate_channel_cooldown": 0,
        "train_user_cooldown": 0,
        "train_channel_cooldown": 0,
        "stats_user_cooldown": 0,
        "stats_channel_cooldown": 0,
        "cooldowns": ", ".join(f"{name}:0/0" for name in bot_defaults.COOLDOWNS),
        # One workspace may use the whole generation queue, as cooldowns are off (tests/bot/test_fair_use.py
        # checks the deployed share).
        "generation_queue_per_workspace": bot_defaults.GENERATION_QUEUE_MAX,
        "generate_default_length": 24,
        "trainer_min_messages": 5,
        "trainer_time_budget": 60,
        "trainer_holdout_fraction": 0.2,
        "trainer_train_config": {"epochs": 2, "batch_size": 4, "steps_per_epoch": 6, "learning_rate": 0.01},
        **overrides,
    }
    # Fields another package has not added yet are left out rather than rejected.
    known = {name: value for name, value in values.items() if name in Settings.model_fields}
    return Settings(_env_file=None, **known)  # type: ignore[call-arg]


@pytest.fixture
def bot_settings(tmp_path: Path, base_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings on a fresh data directory; the environment points there too (for in-process CLI calls)."""
    monkeypatch.setenv("CHATSMITH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CHATSMITH_BASE_MODEL_PATH", str(base_bundle))
    settings = make_settings(tmp_path / "data", base_bundle)
    for name in ("trainer_min_messages", "trainer_time_budget", "trainer_holdout_fraction"):
        if name in Settings.model_fields:
            monkeypatch.setenv(f"CHATSMITH_{name.upper()}", str(getattr(settings, name)))
    if "trainer_train_config" in Settings.model_fields:
        import json

        monkeypatch.setenv("CHATSMITH_TRAINER_TRAIN_CONFIG", json.dumps(settings.trainer_train_config))
    return settings


@pytest.fixture
def services(bot_settings: Settings) -> Iterator[Services]:
    """Services on a new embedded database at the newest schema."""
    copy_migrated_schema(bot_settings.effective_database_url)
    built = bot_services(bot_settings, migrate_new_database=True)
    yield built
    built.close()


class ChatUser:
    """One person in one console channel; `say` returns what the bot printed."""

    def __init__(self, chat: Chat, console: ConsoleChat) -> None:
        self.chat = chat
        self.console = console

    def say(self, line: str) -> str:
        return "\n".join(self.chat.runner.run(self.console.say(line)))

    @property
    def last_reply(self) -> Any:
        return self.console.replies[-1]


class Chat:
    """The bot in-process: one command core shared by every user, on one event loop."""

    def __init__(self, services: Services, files_dir: Path) -> None:
        self.services = services
        self.core = CommandCore(services)
        self.files_dir = files_dir
        self.runner = asyncio.Runner()

    def user(
        self, name: str, *, admin: bool = False, channel: str = "general", workspace: str = "team"
    ) -> ChatUser:
        console = ConsoleChat(self.core, workspace, channel, name, admin=admin, files_dir=self.files_dir)
        return ChatUser(self, console)

    def close(self) -> None:
        self.runner.close()


@pytest.fixture
def chat(services: Services, tmp_path: Path) -> Iterator[Chat]:
    """The whole bot behind the console adapter: `chat.user("ann", admin=True).say("/collect on")`."""
    bot = Chat(services, tmp_path / "files")
    yield bot
    bot.close()
