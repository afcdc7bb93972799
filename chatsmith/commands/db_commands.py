"""`chatsmith db ...`: create or migrate the database schema, and show its version."""

from __future__ import annotations

import argparse
import logging
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `db` command and its `upgrade` and `current` sub-commands."""
    parser = subparsers.add_parser("db", help="create or migrate the database", description=__doc__)
    commands = parser.add_subparsers(dest="db_command", metavar="DB_COMMAND", required=True)

    upgrade = commands.add_parser(
        "upgrade",
        help="apply database migrations (creates the database if it does not exist)",
        description="Apply Alembic migrations to the database named by CHATSMITH_DATABASE_URL "
        "(default: SQLite in CHATSMITH_DATA_DIR).",
    )
    upgrade.add_argument("--revision", default="head", help="target revision (default: the newest)")
    upgrade.set_defaults(handler=run_upgrade)

    current = commands.add_parser("current", help="show the database's schema revision and the code's")
    current.set_defaults(handler=run_current)


def _quiet_alembic(args: argparse.Namespace) -> None:
    # Alembic narrates every plugin it loads at INFO; the command prints the outcome itself.
    if not getattr(args, "verbose", False):
        logging.getLogger("alembic").setLevel(logging.WARNING)


def run_upgrade(args: argparse.Namespace) -> int:
    """Apply migrations and print the revisions before and after."""
    _quiet_alembic(args)  # before the imports: alembic logs as it loads
    from alembic.util import CommandError

    from chatsmith.settings import load_settings
    from db.engine import create_database_engine
    from db.errors import DatabaseError, mask_url
    from db.schema import upgrade

    settings = load_settings()
    engine = create_database_engine(settings.effective_database_url)
    try:
        before, after = upgrade(engine, args.revision)
    except CommandError as error:
        # Alembic's own words name the bad revision ("Can't locate revision identified by 'x'").
        raise DatabaseError(f"{error}; `chatsmith db current` shows the revisions") from None
    finally:
        engine.dispose()
    where = mask_url(engine.url)
    if before == after:
        print(f"database {where} already at revision {after}")
    else:
        print(f"database {where} upgraded from {before or 'empty'} to {after}")
    return 0


def run_current(args: argparse.Namespace) -> int:
    """Print the database's revision and the code's; exit 1 when they differ."""
    _quiet_alembic(args)
    from chatsmith.settings import load_settings
    from db.engine import create_database_engine
    from db.errors import mask_url
    from db.schema import current_revision, head_revision

    settings = load_settings()
    engine = create_database_engine(settings.effective_database_url)
    try:
        current = current_revision(engine)
    finally:
        engine.dispose()
    head = head_revision()
    state = "up to date" if current == head else "out of date: run `chatsmith db upgrade`"
    print(f"database {mask_url(engine.url)}: revision {current or 'empty'}, code needs {head} ({state})")
    return 0 if current == head else 1
