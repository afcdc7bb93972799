"""Settings: read once from the environment (and an optional `.env`) at the top of each command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Effective configuration of every chatsmith process.

    Every field maps to an environment variable with the `CHATSMITH_` prefix (for example
    `CHATSMITH_DATA_DIR`). Paths default to `./data` so the embedded setup needs no configuration.
    """

    model_config = SettingsConfigDict(env_prefix="CHATSMITH_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Where the SQLite database and models live.")
    database_url: str | None = Field(
        default=None, description="Any SQLAlchemy URL; defaults to SQLite inside the data directory."
    )
    model_dir: Path | None = Field(
        default=None, description="Where model bundles live; defaults to <data_dir>/models."
    )
    # Trainer (trainer/config.py turns these into a TrainerConfig). The base model a scope's first model is
    # fine-tuned from is `base_model_path` below, shared with the bots; "none" there means from scratch.
    trainer_schedule: str = Field(
        default="0 3 * * *", description="Cron expression (crontab's five fields) for per-scope retrains."
    )
    trainer_poll_seconds: float = Field(default=5.0, gt=0, description="How often the queue is polled.")
    trainer_heartbeat_seconds: float = Field(default=10.0, gt=0, description="Heartbeat interval of a job.")
    trainer_stale_after_seconds: float = Field(
        default=120.0, gt=0, description="A running job silent this long is requeued (its worker died)."
    )
    trainer_max_attempts: int = Field(default=3, ge=1, description="Claims a job gets before it is failed.")
    trainer_time_budget: float = Field(
        default=900.0, gt=0, description="Wall-clock seconds one training job may take, corpus included."
    )
    trainer_min_messages: int = Field(
        default=200, ge=2, description="Trainable messages a scope needs before it is trained."
    )
    trainer_holdout_fraction: float = Field(
        default=0.1, gt=0, lt=0.5, description="Share of the newest messages held out for the promotion gate."
    )
    trainer_keep_versions: int = Field(default=5, ge=1, description="Model versions kept per scope.")
    trainer_spec: dict[str, Any] = Field(
        default_factory=dict,
        description='JSON ModelSpec fields for models trained from scratch, e.g. {"arch": "lstm", "units": 256}.',
    )
    trainer_train_config: dict[str, Any] = Field(
        default_factory=dict,
        description='JSON TrainConfig fields, e.g. {"epochs": 5, "batch_size": 64, "steps_per_epoch": 200}.',
    )

    # ------------------------------------------------------------------ bots (bot/)
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
    admin_roles: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated Discord role names whose members may run admin commands.",
    )
    admin_user_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated platform user ids (Discord or Slack) allowed to run admin commands.",
    )
    generate_user_cooldown: float = Field(
        default=5.0, ge=0, description="Seconds between a user's /generate."
    )
    generate_channel_cooldown: float = Field(
        default=1.0, ge=0, description="Seconds between /generate calls in one channel."
    )
    train_user_cooldown: float = Field(default=60.0, ge=0, description="Seconds between a user's /train.")
    train_channel_cooldown: float = Field(
        default=30.0, ge=0, description="Seconds between /train calls in one channel."
    )
    generation_workers: int = Field(default=2, ge=1, description="Threads decoding generate requests.")
    generation_max_batch: int = Field(
        default=32, ge=1, description="Most generate requests decoded together in one batch."
    )
    model_cache_size: int = Field(default=4, ge=1, description="Model bundles kept loaded by a bot.")
    generate_default_length: int = Field(default=160, ge=1, description="Tokens /generate writes by default.")
    generate_max_length: int = Field(default=600, ge=1, description="Most tokens one /generate may ask for.")
    generate_temperature: float = Field(default=0.8, ge=0, description="Default sampling temperature.")
    generate_top_p: float = Field(default=0.95, gt=0, le=1, description="Nucleus sampling share.")
    backfill_max: int = Field(default=5000, ge=0, description="Most past messages one /train backfill reads.")
    base_model_path: Path | None = Field(
        default=None,
        description="Bundle that answers where no channel or workspace model is active yet.",
    )

    @field_validator("admin_roles", "admin_user_ids", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        # "a, b" from the environment; lists pass through from code.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'chatsmith.db').resolve()}"

    @property
    def effective_model_dir(self) -> Path:
        return self.model_dir if self.model_dir is not None else self.data_dir / "models"


def load_settings() -> Settings:
    """Read the settings from the environment; call once per process, at the top."""
    return Settings()
