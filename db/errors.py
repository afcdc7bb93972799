"""Errors raised by db. Each message names the problem and the fix on one line, and never a password."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class DatabaseError(Exception):
    """A database problem whose message is safe to show a user: what went wrong and how to fix it."""


class SchemaOutOfDate(DatabaseError):
    """The database schema is not the one this version of the code was written for."""


class BundleOutsideStore(DatabaseError):
    """A model version's bundle location lies outside the model directory: it is never served, fine-tuned
    from or deleted through."""


class NothingToRollBack(DatabaseError):
    """A rollback was asked for a scope that has no earlier good model version."""


def mask_url(url: object) -> str:
    """Render a database URL for messages and logs with its password replaced by `***`.

    Args:
        url: A URL string or `sqlalchemy.engine.URL`.

    Returns:
        The URL without its password; a placeholder when the text is not a URL at all, because an
        unparseable string may still hold a secret.
    """
    try:
        return make_url(url).render_as_string(hide_password=True)  # type: ignore[arg-type]
    except (ArgumentError, ValueError, TypeError):
        return "<unparseable database URL>"
