"""chatsmith's data layer: collected messages, consent, model versions and the training queue.

SQLAlchemy 2 models in `db.models`, engines in `db.engine`, migrations in `db.schema`, and one module per
concept for queries: `db.scopes`, `db.messages`, `db.scrub`, `db.jobs`, `db.registry`. Beside the registry,
what the bots and the trainer both need: `db.model_store` (where bundles live) and `db.serving` (which model
serves a scope). This package imports nothing from the rest of chatsmith.
"""

from db.engine import create_database_engine, session_factory
from db.errors import DatabaseError, NothingToRollBack, SchemaOutOfDate
from db.schema import ensure_schema_current, open_database, upgrade
from db.scopes import Scope

__all__ = [
    "DatabaseError",
    "NothingToRollBack",
    "SchemaOutOfDate",
    "Scope",
    "create_database_engine",
    "ensure_schema_current",
    "open_database",
    "session_factory",
    "upgrade",
]
