"""Settings: read once from the environment (and an optional `.env`) at the top of each command.

One `Settings` object holds the configuration of every chatsmith process (bots, trainer, CLI). Each
field is one environment variable, `CHATSMITH_<FIELD>` (for example `CHATSMITH_DATA_DIR`); the platform
tokens also answer to the names the platforms' own docs use (`DISCORD_TOKEN`, `SLACK_BOT_TOKEN`, ...).
Variables set in the environment win over `.env` in the working directory, which wins over the
defaults. `.env.example` documents every variable; `chatsmith config show` prints the effective values
with secrets masked, and `chatsmith config check` validates them. Secrets are `SecretStr` (masked in
`repr`, `str` and `model_dump`), and the database URL's password wherever a value is displayed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as _SourceError

from bot import defaults as bot_defaults
from chatsmith.cooldown_settings import EXAMPLE as COOLDOWNS_EXAMPLE
from chatsmith.cooldown_settings import parse_cooldowns
from db.platforms import SERVED_PLATFORMS
from trainer.config import TrainerConfig

ENV_PREFIX = "CHATSMITH_"
ENV_FILE = ".env"
# What a masked secret looks like wherever settings are shown.
MASK = "***"
# The defaults are the packages' own (`bot.defaults`, `TrainerConfig`), written once there.
_TRAINER = TrainerConfig()


class SettingsError(ValueError):
    """The environment or `.env` holds values that are not valid; one line per problem, with the fix.

    Attributes:
        problems: One line per invalid variable; never the value of a secret.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class Settings(BaseSettings):
    """Effective configuration of every chatsmith process.

    Every field maps to an environment variable with the `CHATSMITH_` prefix (for example
    `CHATSMITH_DATA_DIR`). Paths default to `./data` so the embedded setup needs no configuration.
    Fields are listed by group (`FIELD_GROUPS`); `Settings.env_names` gives a field's variable names.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=ENV_FILE, extra="ignore")

    # ------------------------------------------------------------------ storage (every role)
    data_dir: Path = Field(default=Path("data"), description="Where the SQLite database and models live.")
    database_url: str | None = Field(
        default=None, description="Any SQLAlchemy URL; defaults to SQLite inside the data directory."
    )
    model_dir: Path | None = Field(
        default=None, description="Where model bundles live; defaults to <data_dir>/models."
    )
    base_model_path: Path | None = Field(
        default=None, description="Bundle that answers where no channel or workspace model is active yet."
    )

    # ------------------------------------------------------------------ trainer (trainer/)
    # trainer/config.py turns these into a TrainerConfig. The base model a scope's first model is
    # fine-tuned from is `base_model_path` above, shared with the bots; "none" there means from scratch.
    trainer_schedule: str = Field(
        default=_TRAINER.schedule,
        description="Cron expression (crontab's five fields) for per-scope retrains.",
    )
    trainer_poll_seconds: float = Field(
        default=_TRAINER.poll_seconds, gt=0, description="How often the queue is polled."
    )
    trainer_heartbeat_seconds: float = Field(
        default=_TRAINER.heartbeat_seconds, gt=0, description="Heartbeat interval of a job."
    )
    trainer_stale_after_seconds: float = Field(
        default=_TRAINER.stale_after_seconds,
        gt=0,
        description="A running job silent this long is requeued (its worker died).",
    )
    trainer_max_attempts: int = Field(
        default=_TRAINER.max_attempts, ge=1, description="Claims a job gets before it is failed."
    )
    trainer_time_budget: float = Field(
        default=_TRAINER.time_budget,
        gt=0,
        description="Wall-clock seconds one training job may take, corpus included.",
    )
    trainer_min_messages: int = Field(
        default=_TRAINER.min_messages,
        ge=2,
        description="Trainable messages a scope needs before it is trained.",
    )
    trainer_max_corpus_chars: int = Field(
        default=_TRAINER.max_corpus_chars or 0,
        ge=0,
        description="A job reads its newest messages that fit "
        "in this many characters (bounds its memory); 0 reads them all.",
    )
    trainer_holdout_fraction: float = Field(
        default=_TRAINER.holdout_fraction,
        gt=0,
        lt=0.5,
        description="Share of the newest messages held out for the promotion gate.",
    )
    trainer_keep_versions: int = Field(
        default=_TRAINER.keep_versions, ge=1, description="Model versions kept per scope."
    )
    retention_days: int = Field(
        default=_TRAINER.retention_days,
        ge=0,
        description="Messages older than this many days are deleted on the trainer's schedule, and the models "
        "that learned from them retired; 0 keeps messages for ever.",
    )
    # NoDecode: the validator below parses the JSON, so a typo is one validation error among the others
    # instead of an exception that hides every later problem.
    trainer_spec: Annotated[dict[str, Any], NoDecode] = Field(
        default_factory=dict,
        description='JSON ModelSpec fields for models trained from scratch, e.g. {"arch": "lstm", "units": 256}.',
    )
    trainer_train_config: Annotated[dict[str, Any], NoDecode] = Field(
        default_factory=dict,
        description='JSON TrainConfig fields, e.g. {"epochs": 5, "batch_size": 64, "steps_per_epoch": 200}.',
    )

    # ------------------------------------------------------------------ Discord (bot/discord_platform.py)
    # Tokens also answer to the names the platforms' own docs use (DISCORD_TOKEN, SLACK_BOT_TOKEN, ...):
    # env names are matched case-insensitively, so each alias covers both spellings.
    discord_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("discord_token", "chatsmith_discord_token"),
        description="Discord bot token (DISCORD_TOKEN or CHATSMITH_DISCORD_TOKEN).",
    )
    discord_sharded: bool = Field(
        default=False, description="Run the Discord bot as an AutoShardedClient (many servers)."
    )
    discord_shard_count: int | None = Field(
        default=None, ge=1, description="Shards for the sharded client; default: Discord's recommendation."
    )
    discord_shard_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Shards this process runs, e.g. 0,2 of CHATSMITH_DISCORD_SHARD_COUNT=4; empty: all of them.",
    )

    # ------------------------------------------------------------------ Slack (bot/slack_platform.py)
    slack_bot_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("slack_bot_token", "chatsmith_slack_bot_token"),
        description="Slack bot token, xoxb-... (SLACK_BOT_TOKEN).",
    )
    slack_app_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("slack_app_token", "chatsmith_slack_app_token"),
        description="Slack app-level token for Socket Mode, xapp-... (SLACK_APP_TOKEN).",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("slack_signing_secret", "chatsmith_slack_signing_secret"),
        description="Slack signing secret, needed in HTTP mode (SLACK_SIGNING_SECRET).",
    )
    slack_mode: Literal["socket", "http"] = Field(
        default="socket", description="socket: Socket Mode (no public URL); http: Events API over HTTP."
    )
    slack_http_host: str = Field(default="0.0.0.0", description="Address the HTTP-mode server binds.")
    slack_http_port: int = Field(default=3000, ge=1, le=65535, description="Port of the HTTP-mode server.")
    slack_http_path: str = Field(default="/slack/events", description="Request URL path in HTTP mode.")
    slack_api_url: str = Field(
        default="https://slack.com/api/", description="Slack Web API base URL (ends with /api/)."
    )

    # ------------------------------------------------------------------ both bots (bot/core)
    admin_role_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated GUILD_ID:ROLE_ID pairs: members of that Discord role in that server "
        "may run admin commands.",
    )
    admin_roles: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="No longer used: role names grant nothing (anyone who may create roles could make one); "
        "`chatsmith config check` says how to move to CHATSMITH_ADMIN_ROLE_IDS.",
    )
    admin_user_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated platform user ids (Discord or Slack) allowed to run admin commands.",
    )
    generate_user_cooldown: float = Field(
        default=bot_defaults.COOLDOWNS["generate"][0], ge=0, description="Seconds between a user's /generate."
    )
    generate_channel_cooldown: float = Field(
        default=bot_defaults.COOLDOWNS["generate"][1],
        ge=0,
        description="Seconds between /generate calls in one channel.",
    )
    train_user_cooldown: float = Field(
        default=bot_defaults.COOLDOWNS["train"][0], ge=0, description="Seconds between a user's /train."
    )
    train_channel_cooldown: float = Field(
        default=bot_defaults.COOLDOWNS["train"][1],
        ge=0,
        description="Seconds between /train calls in one channel.",
    )
    stats_user_cooldown: float = Field(
        default=bot_defaults.COOLDOWNS["stats"][0], ge=0, description="Seconds between a user's /stats."
    )
    stats_channel_cooldown: float = Field(
        default=bot_defaults.COOLDOWNS["stats"][1],
        ge=0,
        description="Seconds between /stats calls in one channel (each draws a chart).",
    )
    cooldowns: str = Field(
        default="",
        description="Per-command cooldowns over the defaults, COMMAND:USER_SECONDS/CHANNEL_SECONDS, comma "
        f"separated (e.g. {COOLDOWNS_EXAMPLE}); every command has one, see the README.",
    )
    train_queue_per_workspace: int = Field(
        default=bot_defaults.TRAIN_QUEUE_PER_WORKSPACE,
        ge=1,
        description="Most training jobs /train may have queued per workspace (forget-me retrains and the "
        "schedule are never refused).",
    )
    generation_workers: int = Field(
        default=bot_defaults.GENERATION_WORKERS, ge=1, description="Threads decoding generate requests."
    )
    generation_max_batch: int = Field(
        default=bot_defaults.GENERATION_MAX_BATCH,
        ge=1,
        description="Most generate requests decoded together in one batch.",
    )
    generation_queue_max: int = Field(
        default=bot_defaults.GENERATION_QUEUE_MAX,
        ge=1,
        description="Most generate requests waiting or decoding at once; past it a request is answered "
        "'busy, try again in a moment' at once.",
    )
    generation_queue_per_workspace: int = Field(
        default=bot_defaults.GENERATION_QUEUE_PER_WORKSPACE,
        ge=1,
        description="Most of those one workspace may hold (Discord server or Slack workspace).",
    )
    model_cache_mb: int = Field(
        default=bot_defaults.MODEL_CACHE_MB,
        ge=1,
        description="Megabytes of model weights a bot keeps loaded (least recently used go).",
    )
    generate_default_length: int = Field(
        default=bot_defaults.DEFAULT_LENGTH, ge=1, description="Tokens /generate writes by default."
    )
    generate_max_length: int = Field(
        default=bot_defaults.MAX_LENGTH, ge=1, description="Most tokens one /generate may ask for."
    )
    generate_temperature: float = Field(
        default=bot_defaults.TEMPERATURE, ge=0, description="Default sampling temperature."
    )
    generate_top_p: float = Field(
        default=bot_defaults.TOP_P, gt=0, le=1, description="Nucleus sampling share."
    )
    generate_channel_lengths: bool = Field(default=True, description="Replies as long as recent messages.")
    backfill_max: int = Field(
        default=bot_defaults.BACKFILL_MAX, ge=0, description="Most past messages one /train backfill reads."
    )

    @field_validator("admin_roles", "admin_user_ids", "admin_role_ids", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        # "a, b" from the environment; lists pass through from code.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cooldowns")
    @classmethod
    def _cooldowns(cls, value: str) -> str:
        parse_cooldowns(value)
        return value

    @field_validator("admin_role_ids")
    @classmethod
    def _guild_role_pairs(cls, value: list[str]) -> list[str]:
        for entry in value:
            guild, _, role = entry.partition(":")
            if not (guild.isdigit() and role.isdigit()):
                raise ValueError(
                    f"received {entry!r}, expected GUILD_ID:ROLE_ID (two Discord ids, e.g. "
                    "123456789012345678:234567890123456789; copy them with Developer Mode on)"
                )
        return value

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _split_shard_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.split(",") if part.strip()]
        return value

    @model_validator(mode="after")
    def _shard_ids_within_count(self) -> Settings:
        if self.discord_shard_ids:
            count = self.discord_shard_count
            if count is None:
                raise ValueError(
                    "CHATSMITH_DISCORD_SHARD_IDS needs CHATSMITH_DISCORD_SHARD_COUNT: every process must agree "
                    "on the total"
                )
            outside = [shard for shard in self.discord_shard_ids if not 0 <= shard < count]
            if outside:
                raise ValueError(f"CHATSMITH_DISCORD_SHARD_IDS {outside} not in 0..{count - 1}; fix the list")
        return self

    @field_validator("trainer_spec", "trainer_train_config", mode="before")
    @classmethod
    def _parse_json(cls, value: object) -> object:
        # JSON text from the environment; dicts pass through from code. An empty variable means "defaults".
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                return json.loads(value)
            except json.JSONDecodeError as error:
                raise ValueError(f"not valid JSON ({error.msg} at character {error.pos})") from None
        return value

    @property
    def effective_database_url(self) -> str:
        """The database URL in use: `database_url`, else SQLite in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'chatsmith.db').resolve()}"

    @property
    def effective_model_dir(self) -> Path:
        """The model directory in use: `model_dir`, else `<data_dir>/models`."""
        return self.model_dir if self.model_dir is not None else self.data_dir / "models"

    # ------------------------------------------------------------------ describing the settings

    @classmethod
    def env_names(cls, name: str) -> tuple[str, ...]:
        """The environment variables that set field `name`, the documented one first."""
        alias = cls.model_fields[name].validation_alias
        if isinstance(alias, AliasChoices):
            return tuple(str(choice).upper() for choice in alias.choices)
        return (f"{ENV_PREFIX}{name.upper()}",)

    @classmethod
    def secret_fields(cls) -> frozenset[str]:
        """Fields whose value is a secret (never shown); the database URL's password is masked apart."""
        return frozenset(
            name for name, field in cls.model_fields.items() if "SecretStr" in str(field.annotation)
        )

    def display_value(self, name: str) -> str:
        """Field `name` as text for people and logs: secrets masked, the database password masked.

        Lists are comma-separated and dicts JSON, the way the environment spells them; unset is "".
        """
        value = getattr(self, name)
        if value is None:
            return ""
        if isinstance(value, SecretStr):
            return MASK if value.get_secret_value() else ""
        if name == "database_url":
            return mask_database_url(value)
        if isinstance(value, list):
            return ",".join(str(item) for item in value)
        if isinstance(value, dict):
            return json.dumps(value, sort_keys=True)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def source_of(self, name: str, environ: Mapping[str, str] | None = None) -> str:
        """Where field `name` came from: "env", ".env" (or code), or "default"."""
        present = {key.upper() for key in (os.environ if environ is None else environ)}
        if any(env_name in present for env_name in self.env_names(name)):
            return "env"
        if name in self.model_fields_set:
            return ENV_FILE
        return "default"


_FIELDS = list(Settings.model_fields)
# Every field belongs to one group; `config show`, `.env.example` and the tests follow this order.
FIELD_GROUPS: dict[str, tuple[str, ...]] = {
    "storage": ("data_dir", "database_url", "model_dir", "base_model_path"),
    "trainer": (*(name for name in Settings.model_fields if name.startswith("trainer_")), "retention_days"),
    # One group per platform of `db.platforms`: its settings are the fields named `<platform>_...`.
    **{
        platform: tuple(name for name in Settings.model_fields if name.startswith(f"{platform}_"))
        for platform in SERVED_PLATFORMS
    },
    # The bots' settings are the fields from `admin_role_ids` to `backfill_max`, in the order declared.
    "bots": tuple(_FIELDS[_FIELDS.index("admin_role_ids") : _FIELDS.index("backfill_max") + 1]),
}


def mask_database_url(url: str) -> str:
    """`url` with its password replaced by `***`; a placeholder when it is not a URL at all."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):
        # An unparseable string may still hold a secret: show none of it.
        return "<unparseable database URL>"


def secret_text(value: Any) -> str:
    """A `SecretStr` setting's text without surrounding spaces; "" when unset."""
    return value.get_secret_value().strip() if value is not None else ""


def describe_validation_error(error: ValidationError) -> list[str]:
    """One line per invalid variable: its name, what is wrong, and the fix; secret values left out."""
    by_alias = {alias.upper(): name for name in Settings.model_fields for alias in Settings.env_names(name)}
    problems = []
    for item in error.errors():
        location = str(item["loc"][0]) if item["loc"] else ""
        name = by_alias.get(location.upper(), location.lower().removeprefix(ENV_PREFIX.lower()))
        variable = Settings.env_names(name)[0] if name in Settings.model_fields else location.upper()
        message = str(item["msg"]).removeprefix("Value error, ")
        shown = ""
        if name not in Settings.secret_fields() and name != "database_url" and "input" in item:
            shown = f" (got {str(item['input'])[:60]!r})"
        problems.append(f"{variable}: {message}{shown}; fix it in the environment or {ENV_FILE}")
    return problems


def load_settings(env_file: str | Path | None = ENV_FILE) -> Settings:
    """Read the settings from the environment (and `env_file`); call once per process, at the top.

    Raises:
        SettingsError: A variable is not valid; one line per problem, never a secret's value.
    """
    try:
        return Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None
    except _SourceError as error:
        # pydantic-settings' own parse failures (a malformed value it decodes itself); name the field.
        raise SettingsError([f"{error}; fix it in the environment or {ENV_FILE}"]) from None
