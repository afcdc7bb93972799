"""A test database at the newest schema in milliseconds: copied from a template migrated once per process.

Applying the migrations takes tens of milliseconds on SQLite (each constraint change copies a table) and
more on PostgreSQL, and hundreds of tests start from a migrated database. So each test process runs the
real migrations once, into a template, and those tests get a copy of it. The migrations themselves are
tested on empty databases in `tests/db/test_db_schema.py`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path

from psycopg import errors as pg_errors
from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from db.engine import create_database_engine
from db.schema import upgrade

_templates: dict[str, str] = {}
# How long a DROP DATABASE waits for someone else's session on it to end.
DROP_PATIENCE_S = 10.0
_IN_USE = (pg_errors.InsufficientPrivilege, pg_errors.ObjectInUse)


def copy_migrated_schema(database_url: str) -> None:
    """Give the database at `database_url` the newest schema.

    SQLite: the file must not exist yet (its folder is created). PostgreSQL: the database must be empty; it
    is dropped and created again from the template, under the same name.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        target = Path(str(url.database))
        if target.exists():
            raise FileExistsError(f"{target} exists already; a migrated copy goes only where no database is")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_sqlite_template(), target)
        return
    template = _postgres_template(url)
    admin = _admin(url)
    try:
        with admin.connect() as connection:
            drop_database(connection, str(url.database))
            connection.exec_driver_sql(f'CREATE DATABASE "{url.database}" TEMPLATE "{template}"')
    finally:
        admin.dispose()


def _sqlite_template() -> str:
    if "sqlite" not in _templates:
        folder = tempfile.mkdtemp(prefix="chatsmith-schema-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        path = Path(folder) / "template.db"
        _migrate(f"sqlite:///{path}")
        _templates["sqlite"] = str(path)
    return _templates["sqlite"]


def _postgres_template(url: URL) -> str:
    key = url.set(database="").render_as_string(hide_password=False)
    if key not in _templates:
        name = f"chatsmith_template_{os.getpid()}"
        admin = _admin(url)
        with admin.connect() as connection:
            drop_database(connection, name)
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        atexit.register(_drop, admin, name)
        # A database is a template only while nobody is connected to it: the migrating engine is closed.
        _migrate(url.set(database=name).render_as_string(hide_password=False))
        _templates[key] = name
    return _templates[key]


def _admin(url: URL):  # type: ignore[no-untyped-def]
    """A connection for CREATE and DROP DATABASE: the role the tests were given (`tests/conftest.py`)."""
    admin_url = os.environ.get("CHATSMITH_TEST_POSTGRES_URL") or url.set(database="postgres")
    return create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _migrate(database_url: str) -> None:
    engine = create_database_engine(database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def drop_database(connection: Connection, name: str) -> None:
    """DROP DATABASE `name` if it exists, waiting out the server's own brief visits.

    WITH (FORCE) ends the tests' leftover sessions, but a role that is not a superuser may not end the
    autovacuum worker that sometimes visits a new database for a moment: that refusal is tried again.
    """
    deadline = time.monotonic() + DROP_PATIENCE_S
    while True:
        try:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except DBAPIError as error:
            if time.monotonic() > deadline or not isinstance(error.orig, _IN_USE):
                raise
            time.sleep(0.05)


def _drop(admin, name: str) -> None:  # type: ignore[no-untyped-def]
    try:
        with admin.connect() as connection:
            drop_database(connection, name)
    finally:
        admin.dispose()
