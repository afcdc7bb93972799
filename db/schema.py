"""The schema's version: apply Alembic migrations, and refuse to run on an out-of-date database.

The migrations ship inside the package (`db/migrations`), and Alembic is configured here in code, so an
installed chatsmith needs no alembic.ini and no working directory of any kind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from db.engine import DEFAULT_BUSY_TIMEOUT_MS, create_database_engine
from db.errors import DatabaseError, SchemaOutOfDate, mask_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
UPGRADE_COMMAND = "chatsmith db upgrade"


def alembic_config() -> Config:
    """An Alembic configuration pointing at the packaged migrations."""
    config = Config()
    # ConfigParser interpolates "%"; a path may contain one.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise DatabaseError(f"no migrations found in {MIGRATIONS_DIR}; reinstall chatsmith")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when no migration was ever applied.

    Raises:
        DatabaseError: The database cannot be read.
    """
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as error:
        raise DatabaseError(
            f"cannot read the schema version of {mask_url(engine.url)}; check CHATSMITH_DATABASE_URL"
        ) from error


def upgrade(engine_or_url: Engine | str | URL, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply migrations up to `revision`.

    Args:
        engine_or_url: The database; a URL gets a short-lived engine of its own.
        revision: Target revision; "head" for the newest.

    Returns:
        The revisions before and after (the first is None for an empty database).
    """
    owns_engine = not isinstance(engine_or_url, Engine)
    engine = create_database_engine(engine_or_url) if not isinstance(engine_or_url, Engine) else engine_or_url
    try:
        before = current_revision(engine)
        _migrate(engine, lambda config: command.upgrade(config, revision))
        return before, current_revision(engine)
    finally:
        if owns_engine:
            engine.dispose()


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate down to `revision` ("base" for an empty schema); for development and tests."""
    _migrate(engine, lambda config: command.downgrade(config, revision))


def _migrate(engine: Engine, run: Callable[[Config], None]) -> None:
    """Run Alembic in one transaction; on SQLite with foreign keys off while it runs.

    A migration that changes a constraint copies the table on SQLite and drops the old one, and with
    foreign keys on, dropping a table deletes its rows first and so cascades to every table that refers
    to it. SQLite's own procedure for such changes turns them off (only possible outside a transaction)
    and checks the keys before committing.
    """
    config = alembic_config()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.connection.dbapi_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                run(config)
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise DatabaseError(
                        "a migration left rows that refer to missing rows; nothing was changed"
                    )
        finally:
            if sqlite:
                connection.connection.dbapi_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]


def ensure_schema_current(engine: Engine) -> None:
    """Refuse to go on unless the database is at exactly the revision this code needs.

    Every long-running process calls this at start, so that an old schema fails in one line that names the
    fix rather than later in some query.

    Raises:
        SchemaOutOfDate: The database is empty, behind, or ahead of this code.
    """
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    where = mask_url(engine.url)
    if current is None:
        raise SchemaOutOfDate(
            f"database {where} has no chatsmith schema yet (code needs {head}); run `{UPGRADE_COMMAND}`"
        )
    if not _known(ScriptDirectory.from_config(alembic_config()), current):
        raise SchemaOutOfDate(
            f"database {where} is at schema {current}, which this chatsmith does not know (code needs {head}); "
            "a newer chatsmith migrated it: upgrade chatsmith"
        )
    raise SchemaOutOfDate(f"database schema is at {current}, code needs {head}; run `{UPGRADE_COMMAND}`")


def open_database(url: str | URL, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> Engine:
    """Connect to `url` and check its schema: what a bot or trainer process calls at start.

    Raises:
        DatabaseError: The database cannot be reached.
        SchemaOutOfDate: It needs `chatsmith db upgrade` first.
    """
    engine = create_database_engine(url, busy_timeout_ms=busy_timeout_ms)
    try:
        ensure_schema_current(engine)
    except DatabaseError:
        engine.dispose()
        raise
    return engine


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:  # an id that is in no migration file
        return False
