"""Engines and sessions: SQLite tuned for several processes, any other SQLAlchemy URL as it is.

Transactions are owned by the caller: functions in this package that take a `Session` flush but never
commit, so that several calls can share one transaction (`with factory.begin() as session:`). The queue
functions in `db.jobs` take an `Engine` instead, because they run their own short transactions with retries.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from db.errors import DatabaseError, mask_url
from errortext import error_line

DEFAULT_BUSY_TIMEOUT_MS = 5000
# Execution option read by the SQLite "begin" hook: take the write lock when the transaction starts.
SQLITE_BEGIN_IMMEDIATE = "chatsmith_sqlite_begin_immediate"


def create_database_engine(
    url: str | URL,
    *,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    check_connection: bool = True,
    echo: bool = False,
) -> Engine:
    """Create an engine for `url`, ready for several processes sharing one database.

    SQLite gets WAL mode (readers do not block the writer), a busy timeout (a writer waits for the lock
    instead of failing at once), foreign keys on, and its parent directory created. Transactions on SQLite
    begin explicitly (`BEGIN`, or `BEGIN IMMEDIATE` through `immediate(engine)`), which savepoints and
    the queue's atomic claim rely on.

    Args:
        url: Any SQLAlchemy URL, e.g. `sqlite:////data/chatsmith.db` or `postgresql+psycopg://u:p@h/db`.
        busy_timeout_ms: How long a SQLite writer waits for another writer's lock before failing.
        check_connection: Connect once now, so that a wrong URL or a stopped server fails here with a
            `DatabaseError` naming the fix instead of later in the middle of some command.
        echo: Log every SQL statement.

    Returns:
        The engine.

    Raises:
        DatabaseError: The URL is not valid, its driver is missing, or the database cannot be reached.
    """
    parsed = parse_database_url(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        _create_sqlite_directory(parsed)
        # Several threads of one process share the pool; the pool, not sqlite3, keeps connections apart.
        connect_args["check_same_thread"] = False
    try:
        # pool_pre_ping: a pooled connection is checked before each use, so the first query after a
        # database restart reconnects instead of failing on a connection the server closed.
        # hide_parameters: a failed statement's error (and so the logs) never carries message text.
        engine = create_engine(
            parsed, echo=echo, connect_args=connect_args, pool_pre_ping=True, hide_parameters=True
        )
    except (NoSuchModuleError, ModuleNotFoundError) as error:
        raise DatabaseError(
            f"no database driver for {mask_url(parsed)}; install it (PostgreSQL: pip install 'psycopg[binary]') "
            "or use a postgresql+psycopg:// or sqlite:/// URL"
        ) from error
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine, busy_timeout_ms)
    if check_connection:
        verify_connection(engine)
    return engine


def parse_database_url(url: str | URL) -> URL:
    """Parse a database URL, or fail in one line that names the problem and never shows the password.

    Raises:
        DatabaseError: Not a SQLAlchemy URL, or its port is not a number from 1 to 65535.
    """
    example = "sqlite:///data/chatsmith.db or postgresql+psycopg://user:password@host:5432/dbname"
    if isinstance(url, URL):
        parsed = url
    else:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise DatabaseError(
                f"the database URL is not a valid SQLAlchemy URL; set CHATSMITH_DATABASE_URL to something like "
                f"{example}"
            ) from None
        except ValueError:
            # make_url's int() of the port; its message would quote the URL's text.
            raise DatabaseError(
                f"the port of the database URL is not a number; set CHATSMITH_DATABASE_URL to something like "
                f"{example}"
            ) from None
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise DatabaseError(
            f"the port of the database URL {mask_url(parsed)} is {parsed.port}, expected 1 to 65535; fix "
            "CHATSMITH_DATABASE_URL"
        )
    return parsed


def _create_sqlite_directory(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    directory = Path(database).expanduser().resolve().parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatabaseError(
            f"cannot create the database directory {directory} ({error.strerror}); "
            "set CHATSMITH_DATA_DIR to a writable directory"
        ) from error


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # pysqlite's own implicit BEGIN is lazy and breaks SAVEPOINT and BEGIN IMMEDIATE; turn it off and
        # let the "begin" hook below start transactions (the recipe from SQLAlchemy's SQLite notes).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        # Durable at every checkpoint and far faster than FULL; WAL keeps the database consistent.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate_lock = connection.get_execution_options().get(SQLITE_BEGIN_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate_lock else "BEGIN")


def immediate(engine: Engine) -> Engine:
    """The same engine whose SQLite transactions take the write lock at `BEGIN`.

    A deferred SQLite transaction that reads and then writes fails at once ("database is locked") when
    another writer committed in between; taking the lock first makes it wait its turn instead. Other
    databases ignore the option.
    """
    return engine.execution_options(**{SQLITE_BEGIN_IMMEDIATE: True})


def verify_connection(engine: Engine) -> None:
    """Connect once and run `SELECT 1`.

    Raises:
        DatabaseError: The database cannot be reached; the message names the URL without its password.
    """
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except DBAPIError as error:
        raise DatabaseError(
            f"cannot connect to the database at {mask_url(engine.url)} ({_driver_message(error, engine.url)}); "
            "check that the server is running and that CHATSMITH_DATABASE_URL is right"
        ) from error


def _driver_message(error: DBAPIError, url: URL) -> str:
    """The first line of the driver's message, with the password cut out in case the driver echoed it."""
    message = error_line(error.orig)
    if url.password:
        message = message.replace(str(url.password), "***")
    return message


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay readable after commit (no reload on attribute access).

    Use it as `with factory.begin() as session:` for one transaction that commits on success.
    """
    return sessionmaker(bind=engine, expire_on_commit=False)
