"""Migrations, schema checks, engine set-up and the `chatsmith db` commands."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chatsmith.commands import db_commands
from db.engine import create_database_engine
from db.errors import DatabaseError, SchemaOutOfDate, mask_url
from db.models import Base
from db.schema import (
    current_revision,
    downgrade,
    ensure_schema_current,
    head_revision,
    open_database,
    upgrade,
)
from db.scopes import get_or_create_workspace

TABLES = {"workspaces", "channels", "messages", "user_opt_outs", "model_versions", "training_jobs"}


def test_upgrade_from_empty_reaches_head_and_matches_the_models(database_url: str) -> None:
    engine = create_database_engine(database_url)
    assert current_revision(engine) is None

    before, after = upgrade(engine)

    assert (before, after) == (None, head_revision())
    assert set(inspect(engine).get_table_names()) >= TABLES
    ensure_schema_current(engine)
    # The migrations create exactly what the models declare: autogenerate finds nothing to add.
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


def test_partial_unique_indexes_exist_after_migration(engine: Engine) -> None:
    indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("training_jobs")}
    assert indexes["uq_training_jobs_one_open_per_scope"]["unique"]
    active = {ix["name"]: ix for ix in inspect(engine).get_indexes("model_versions")}
    assert active["uq_model_versions_one_active_per_scope"]["unique"]


def test_empty_database_is_refused_with_the_fix(database_url: str) -> None:
    engine = create_database_engine(database_url)
    with pytest.raises(SchemaOutOfDate, match="no chatsmith schema yet.*run `chatsmith db upgrade`"):
        ensure_schema_current(engine)
    engine.dispose()


def test_old_schema_is_refused_with_the_fix(database_url: str) -> None:
    engine = create_database_engine(database_url)
    upgrade(engine, "0001")

    with pytest.raises(SchemaOutOfDate) as raised:
        ensure_schema_current(engine)

    assert (
        str(raised.value)
        == f"database schema is at 0001, code needs {head_revision()}; run `chatsmith db upgrade`"
    )
    assert upgrade(engine) == ("0001", head_revision())
    ensure_schema_current(engine)
    engine.dispose()


def test_schema_from_a_newer_chatsmith_is_refused(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffffffff'")
    with pytest.raises(SchemaOutOfDate, match="does not know.*upgrade chatsmith"):
        ensure_schema_current(engine)


def test_downgrade_to_base_and_back(engine: Engine) -> None:
    downgrade(engine, "base")
    assert not TABLES & set(inspect(engine).get_table_names())
    assert upgrade(engine) == (None, head_revision())


def test_platform_names_leave_the_schema_without_losing_a_row(database_url: str) -> None:
    # The platform CHECK goes (the registry in db.platforms checks names): SQLite copies the workspaces
    # table to drop it, and the channels and messages that refer to its rows must all still be there.
    engine = create_database_engine(database_url)
    upgrade(engine, "0006")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO workspaces (id, platform, external_id, name, created_at) "
            "VALUES (1, 'slack', 'T1', 'team', '2026-01-01 00:00:00')"
        )
        connection.exec_driver_sql(
            "INSERT INTO channels (id, workspace_id, external_id, name, collecting, created_at) "
            "VALUES (1, 1, 'C1', 'general', TRUE, '2026-01-01 00:00:00')"
        )

    assert upgrade(engine) == ("0006", head_revision())

    with engine.begin() as connection:
        assert connection.exec_driver_sql("SELECT external_id FROM channels").all() == [("C1",)]
        # Explicit ids: PostgreSQL's sequence did not count the rows inserted with theirs above.
        connection.exec_driver_sql(
            "INSERT INTO workspaces (id, platform, external_id, name, created_at) "
            "VALUES (2, 'matrix', '!room', '', '2026-01-01 00:00:00')"
        )
        connection.exec_driver_sql("DELETE FROM workspaces WHERE platform = 'matrix'")
        if engine.dialect.name == "sqlite":  # turned off for the migration only
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    downgrade(engine, "0006")
    with pytest.raises(IntegrityError, match="ck_workspaces_platform"), engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO workspaces (id, platform, external_id, name, created_at) "
            "VALUES (3, 'matrix', '!room', '', '2026-01-01 00:00:00')"
        )
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT external_id FROM channels").all() == [("C1",)]
    engine.dispose()


def test_an_unknown_platform_is_refused_by_name(session: Session) -> None:
    with pytest.raises(DatabaseError, match="unknown platform 'matrix'; use one of discord, slack, console"):
        get_or_create_workspace(session, "matrix", "!room")


def test_open_database_checks_the_schema(database_url: str) -> None:
    with pytest.raises(SchemaOutOfDate):
        open_database(database_url)
    upgrade(database_url)
    engine = open_database(database_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_sqlite_engine_creates_its_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "chatsmith.db"
    engine = create_database_engine(f"sqlite:///{path}", busy_timeout_ms=1234)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
    assert path.exists()
    engine.dispose()


def test_sqlite_foreign_keys_are_enforced(sqlite_engine: Engine) -> None:
    with pytest.raises(IntegrityError, match="FOREIGN KEY"), sqlite_engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO channels (workspace_id, external_id, name, collecting, created_at) "
            "VALUES (999, 'x', 'x', 0, '2026-01-01 00:00:00')"
        )


def test_unreachable_server_error_names_the_fix_and_hides_the_password() -> None:
    url = "postgresql+psycopg://alice:s3cret-pw@127.0.0.1:1/chatsmith"
    with pytest.raises(DatabaseError) as raised:
        create_database_engine(url)
    message = str(raised.value)
    assert "s3cret-pw" not in message
    assert "alice:***@127.0.0.1:1" in message
    assert "CHATSMITH_DATABASE_URL" in message
    assert "\n" not in message


def test_bad_url_and_missing_driver_are_database_errors() -> None:
    with pytest.raises(DatabaseError, match="not a valid SQLAlchemy URL"):
        create_database_engine("not a url at all")
    with pytest.raises(DatabaseError, match="no database driver") as raised:
        create_database_engine("nosuchdialect://bob:hunter2@host/db")
    assert "hunter2" not in str(raised.value)


def test_mask_url_hides_passwords() -> None:
    assert mask_url("postgresql://u:pw@h/d") == "postgresql://u:***@h/d"
    assert mask_url("garbage :: pw") == "<unparseable database URL>"


def _run_db_command(argv: list[str]) -> int:
    from chatsmith.errors import run_reporting_errors

    parser = argparse.ArgumentParser(prog="chatsmith")
    db_commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run_reporting_errors(lambda: args.handler(args))


def test_db_commands_upgrade_and_current(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env from the working directory
    monkeypatch.setenv("CHATSMITH_DATABASE_URL", database_url)

    assert _run_db_command(["db", "current"]) == 1
    assert "revision empty" in capsys.readouterr().out
    assert _run_db_command(["db", "upgrade"]) == 0
    assert f"upgraded from empty to {head_revision()}" in capsys.readouterr().out
    assert _run_db_command(["db", "upgrade"]) == 0
    assert f"already at revision {head_revision()}" in capsys.readouterr().out
    assert _run_db_command(["db", "current"]) == 0
    assert "(up to date)" in capsys.readouterr().out


def test_db_upgrade_defaults_to_sqlite_in_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CHATSMITH_DATABASE_URL", raising=False)
    monkeypatch.setenv("CHATSMITH_DATA_DIR", str(tmp_path / "state"))

    assert _run_db_command(["db", "upgrade"]) == 0

    database = tmp_path / "state" / "chatsmith.db"
    assert str(database) in capsys.readouterr().out
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == (head_revision(),)


def test_db_command_on_unreachable_database_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHATSMITH_DATABASE_URL", "postgresql+psycopg://bob:pa55word@127.0.0.1:1/x")

    assert _run_db_command(["db", "upgrade"]) == 2

    error = capsys.readouterr().err
    assert error.startswith("error: cannot connect to the database")
    assert error.count("\n") == 1
    assert "pa55word" not in error


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "postgresql+psycopg://chatsmith:hunter22@db:fivefourthreetwo/chatsmith",
            "port of the database URL is not a number",
        ),
        (
            "postgresql+psycopg://chatsmith:hunter22@[::1/chatsmith",
            "port of the database URL is not a number",
        ),
        ("postgresql+psycopg://chatsmith:hunter22@db:99999/chatsmith", "is 99999, expected 1 to 65535"),
        ("not a url at all hunter22", "not a valid SQLAlchemy URL"),
    ],
)
def test_every_bad_database_url_is_one_line_without_the_password(url: str, problem: str) -> None:
    with pytest.raises(DatabaseError) as raised:
        create_database_engine(url)
    message = str(raised.value)
    assert problem in message and "CHATSMITH_DATABASE_URL" in message
    assert "\n" not in message and "hunter22" not in message


def test_database_errors_never_carry_message_text(engine: Engine) -> None:
    from sqlalchemy.orm import Session

    from db.models import Channel, Message, Workspace, utcnow

    with Session(engine) as session:
        workspace = Workspace(platform="console", external_id="w")
        session.add(workspace)
        session.flush()
        channel = Channel(workspace_id=workspace.id, external_id="c")
        session.add(channel)
        session.flush()
        for _ in range(2):  # the same platform id twice: a unique violation
            session.add(
                Message(
                    channel_id=channel.id,
                    platform_message_id="m1",
                    author_id="ann",
                    text="my private words",
                    created_at=utcnow(),
                )
            )
        with pytest.raises(IntegrityError) as raised:
            session.flush()
    assert "my private words" not in str(raised.value)
