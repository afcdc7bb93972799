"""The composition root's wiring: each package's plain configuration and resources, built from `Settings`.

The bots and the trainer never read the environment or import `chatsmith`; the commands call these
functions once, at the top, and hand what they return to constructors.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatsmith.base_model import find_base_model
from chatsmith.cooldown_settings import parse_cooldowns
from chatsmith.settings import Settings, secret_text
from db.model_store import LocalModelStore
from db.platforms import SERVED_PLATFORMS, platform_entry

if TYPE_CHECKING:
    from bot.core.cooldowns import CooldownRule
    from bot.core.runner import Adapter
    from bot.core.services import BotConfig, Services
    from bot.discord_platform import DiscordConfig
    from bot.slack_platform import SlackConfig
    from trainer.config import TrainerConfig


def model_store(settings: Settings) -> LocalModelStore:
    """The model store in the configured model directory."""
    return LocalModelStore(settings.effective_model_dir)


def cooldown_rules(settings: Settings) -> dict[str, CooldownRule]:
    """Every declared command's cooldown: its declared default, then the settings that override it
    (`<name>_user_cooldown` and `<name>_channel_cooldown` where a command has them, then
    `CHATSMITH_COOLDOWNS`)."""
    from bot.core.catalog import DECLARED
    from bot.core.cooldowns import CooldownRule

    waits = {spec.name: spec.cooldown for spec in DECLARED}
    for name in ("generate", "train", "stats"):
        waits[name] = (
            getattr(settings, f"{name}_user_cooldown"),
            getattr(settings, f"{name}_channel_cooldown"),
        )
    waits.update(parse_cooldowns(settings.cooldowns))
    return {name: CooldownRule(*pair) for name, pair in waits.items()}


def bot_config(settings: Settings) -> BotConfig:
    """The bots' part of the settings; the base model is found as the trainer finds it.

    Raises:
        TrainerError: `CHATSMITH_BASE_MODEL_PATH` names a directory that does not exist.
    """
    from bot.core.request import AdminPolicy
    from bot.core.services import BotConfig

    return BotConfig(
        policy=AdminPolicy(frozenset(settings.admin_role_ids), frozenset(settings.admin_user_ids)),
        cooldowns=cooldown_rules(settings),
        default_length=min(settings.generate_default_length, settings.generate_max_length),
        max_length=settings.generate_max_length,
        temperature=settings.generate_temperature,
        top_p=settings.generate_top_p,
        length_from_channel=settings.generate_channel_lengths,
        backfill_max=settings.backfill_max,
        base_model_path=find_base_model(settings.base_model_path),
        model_cache_bytes=settings.model_cache_mb * 1024 * 1024,
        generation_workers=settings.generation_workers,
        generation_max_batch=settings.generation_max_batch,
        generation_queue_max=settings.generation_queue_max,
        generation_queue_per_workspace=settings.generation_queue_per_workspace,
        train_queue_per_workspace=settings.train_queue_per_workspace,
        min_training_messages=settings.trainer_min_messages,
        retention_days=settings.retention_days,
    )


def bot_services(settings: Settings, *, migrate_new_database: bool = False) -> Services:
    """Open the configured database and build the bots' services around it.

    Args:
        settings: The process's settings.
        migrate_new_database: Apply the migrations when the database is a SQLite file (the default one
            or one CHATSMITH_DATABASE_URL names) with no schema at all yet (the console's fresh-clone case).

    Raises:
        TrainerError: `CHATSMITH_BASE_MODEL_PATH` names a directory that does not exist.
        DatabaseError: The database cannot be reached, or its schema is not current.
    """
    from bot.core.services import build_services

    config = bot_config(settings)  # first: a wrong base-model path fails before any I/O
    return build_services(
        config,
        settings.effective_database_url,
        model_store(settings),
        # A server database is the operator's to migrate (`chatsmith db upgrade`); a new file is not.
        migrate_new_database=migrate_new_database and settings.effective_database_url.startswith("sqlite"),
    )


def platform_adapter(name: str) -> Adapter:
    """The adapter of platform `name` (its module's `ADAPTER`), imported on demand: each platform's client
    library loads only in the process that serves it.

    Raises:
        DatabaseError: `name` is not in `db.platforms.PLATFORMS`.
        ValueError: The platform has no adapter to serve (the console).
    """
    entry = platform_entry(name)
    if entry.adapter is None:
        raise ValueError(
            f"Received platform {name!r}, expected one with a bot to run ({', '.join(SERVED_PLATFORMS)})"
        )
    adapter: Adapter = importlib.import_module(entry.adapter).ADAPTER
    return adapter


def platform_config(settings: Settings, name: str) -> Any:
    """Platform `name`'s config: each field `x` of its adapter's config type is the setting `<name>_x`.

    A field named `data_dir` is chatsmith's data directory, where an adapter may keep state of its own.
    Secrets arrive as plain text without surrounding spaces ("" when unset), lists as tuples.
    """
    config_type = platform_adapter(name).config_type
    values: dict[str, Any] = {}
    for config_field in dataclasses.fields(config_type):
        if config_field.name == "data_dir":
            values["data_dir"] = settings.data_dir
            continue
        setting = f"{name}_{config_field.name}"
        value = getattr(settings, setting)
        if setting in Settings.secret_fields():
            value = secret_text(value)
        elif isinstance(value, list):
            value = tuple(value)
        values[config_field.name] = value
    return config_type(**values)


def discord_config(settings: Settings) -> DiscordConfig:
    """The Discord bot's part of the settings."""
    config: DiscordConfig = platform_config(settings, "discord")
    return config


def slack_config(settings: Settings) -> SlackConfig:
    """The Slack bot's part of the settings."""
    config: SlackConfig = platform_config(settings, "slack")
    return config


def trainer_config(settings: Settings) -> TrainerConfig:
    """The trainer's part of the settings, validated.

    Raises:
        TrainerError or TextgenError: A setting is not valid; the message names it.
    """
    from trainer.config import TrainerConfig

    return TrainerConfig(
        schedule=settings.trainer_schedule,
        poll_seconds=settings.trainer_poll_seconds,
        heartbeat_seconds=settings.trainer_heartbeat_seconds,
        stale_after_seconds=settings.trainer_stale_after_seconds,
        max_attempts=settings.trainer_max_attempts,
        time_budget=settings.trainer_time_budget,
        min_messages=settings.trainer_min_messages,
        holdout_fraction=settings.trainer_holdout_fraction,
        max_corpus_chars=settings.trainer_max_corpus_chars or None,
        keep_versions=settings.trainer_keep_versions,
        retention_days=settings.retention_days,
        spec=dict(settings.trainer_spec),
        train_config=dict(settings.trainer_train_config),
        base_model=find_base_model(settings.base_model_path),
        model_dir=Path(settings.effective_model_dir),
    ).validate()
