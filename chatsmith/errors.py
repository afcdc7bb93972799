"""How the command line turns the project's errors into one line and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable

# Exit code for bad input, as argparse uses it.
EXIT_BAD_INPUT = 2


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exception types whose message is written for the user (problem and fix, one line)."""
    from chatsmith.settings import SettingsError
    from textgen.errors import TextgenError

    types: list[type[BaseException]] = [TextgenError, SettingsError]
    try:
        from db.errors import DatabaseError

        types.append(DatabaseError)
    except ImportError:
        pass
    return tuple(types)


def run_reporting_errors(action: Callable[[], int | None]) -> int:
    """Run a command; a user error becomes `error: ...` on stderr and exit code 2."""
    try:
        result = action()
    except user_error_types() as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)
