"""Settings: read once from the environment (and an optional `.env`) at the top of each command."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
