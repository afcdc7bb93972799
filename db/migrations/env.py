"""Alembic environment for chatsmith; configured in code by `db.schema`, no alembic.ini needed.

`db.schema` passes an open connection in `config.attributes["connection"]`. Command-line use (for writing
a new revision: `alembic -x url=sqlite:///scratch.db revision --autogenerate`) gets its URL from `-x url=`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from db.engine import create_database_engine
from db.models import Base

config = context.config
target_metadata = Base.metadata


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # Other tables share the database (APScheduler's job store); autogenerate must not drop them.
    return not (type_ == "table" and reflected and compare_to is None)


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode copies the table instead. Harmless elsewhere.
        render_as_batch=True,
        include_object=include_object,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give a database URL: alembic -x url=sqlite:///scratch.db ...")
    engine = create_database_engine(url)
    with engine.connect() as connection:
        run_migrations(connection)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `chatsmith db upgrade`")
main()
