"""Errors of the bot package: one root, and one whose message is written for the person in chat."""

from __future__ import annotations

import re

from errortext import first_line


class BotError(Exception):
    """Root of the errors raised by `bot`."""


class CommandError(BotError):
    """A command cannot be carried out; the message (one line) says why and what to do instead."""


class GenerationBusy(CommandError):
    """Too many generate requests are waiting already; this one is refused at once rather than queued."""

    def __init__(self, message: str = "I'm busy right now, try again in a moment.") -> None:
        super().__init__(message)


class ConfigurationError(BotError):
    """A bot cannot start as configured; the message names the setting (env var) to fix."""


def user_message(error: BaseException) -> str | None:
    """The one-line message of an error written for users, or None for an unexpected error.

    Besides `CommandError`, the data layer's `DatabaseError` and textgen's `TextgenError` carry messages
    that name the problem and the fix without secrets.
    """
    from db.errors import DatabaseError
    from textgen.errors import TextgenError

    if isinstance(error, CommandError | DatabaseError | TextgenError):
        line = first_line(str(error))
        return without_server_paths(line) if line else None
    return None


# An absolute path (or a Windows one): a server's layout is nobody's business in a chat.
_SERVER_PATH = re.compile(r"(?<![\w:/\\.])(?:[A-Za-z]:\\|/)(?:[^\s/\\'\"`]+[/\\])+([^\s/\\'\"`]*)")


def without_server_paths(text: str) -> str:
    """`text` with every absolute path cut to its last part (`/srv/models/w1/v3/weights.npy` ->
    `weights.npy`): errors about files stay readable and say nothing of where they live."""
    return _SERVER_PATH.sub(lambda match: match.group(1) or "(a directory)", text)
