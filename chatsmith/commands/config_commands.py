"""`chatsmith config show|check`: print the effective configuration, and validate it before a deploy.

`show` prints every variable with its value and where it came from (environment, `.env`, default);
secrets are masked and the database password never appears. `check` runs the checks of
`chatsmith.config_checks` and `chatsmith.token_checks`: each problem is one line naming the variable and
the fix, and the exit code is 2 when there is any. It changes nothing: no directory or database is created.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from chatsmith.check_report import CheckReport
from chatsmith.config_checks import DEFAULT_CONNECT_TIMEOUT, check_settings, check_tf_config
from chatsmith.errors import EXIT_BAD_INPUT
from chatsmith.settings import secret_text
from db.platforms import SERVED_PLATFORMS

# The roles `check --role` knows; a platform's role makes its tokens required rather than optional.
ROLES = (*SERVED_PLATFORMS, "trainer", "console")


def register(subparsers: Any) -> None:
    """Add the `config` command and its `show` and `check` sub-commands."""
    parser = subparsers.add_parser(
        "config", help="show or check the configuration (environment and .env)", description=__doc__
    )
    commands = parser.add_subparsers(dest="config_command", metavar="CONFIG_COMMAND", required=True)

    show = commands.add_parser(
        "show",
        help="print the effective configuration, secrets masked",
        description="Print every CHATSMITH_* variable (and the platform token names) with its effective "
        "value and its source: env, .env or default. Secrets print as *** and the database password "
        "is masked.",
    )
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(handler=run_show)

    check = commands.add_parser(
        "check",
        help="validate the configuration; one line per problem with the fix, exit 2 if any",
        description="Check the configuration without changing anything: values, database reachable "
        "(and its schema version), model and data directories writable, base model present, cron "
        "schedule, trainer JSON, Discord and Slack tokens and modes, TF_CONFIG. Exit 0 when all is "
        "well, 2 when there is a problem.",
    )
    check.add_argument(
        "--role",
        choices=ROLES,
        action="append",
        help="the role(s) this configuration is for; a platform's role makes its tokens required "
        "(default: platforms are checked when any of their variables is set)",
    )
    check.add_argument(
        "--connect-timeout",
        type=_positive_seconds,
        default=DEFAULT_CONNECT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the database server (default {DEFAULT_CONNECT_TIMEOUT:g})",
    )
    check.add_argument("--no-connect", action="store_true", help="do not connect to the database")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.set_defaults(handler=run_check)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, received {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, received {text}")
    return value


# ---------------------------------------------------------------------------------------------- show


def _quiet(args: argparse.Namespace) -> None:
    # Alembic and the base-model lookup narrate at INFO; these commands print their own findings.
    if not getattr(args, "verbose", False):
        for name in ("alembic", "chatsmith.base_model"):
            logging.getLogger(name).setLevel(logging.WARNING)


def run_show(args: argparse.Namespace) -> int:
    """Print the effective configuration."""
    _quiet(args)
    from chatsmith.settings import FIELD_GROUPS, Settings, SettingsError, load_settings, mask_database_url

    try:
        settings = load_settings()
    except SettingsError as error:
        for problem in error.problems:
            print(f"problem: {problem}")
        print("fix the variables above, then run `chatsmith config show` again")
        return EXIT_BAD_INPUT
    env_file = Path(".env").absolute()
    effective = {
        "database": mask_database_url(settings.effective_database_url),
        "model_dir": str(settings.effective_model_dir.absolute()),
        "base_model": _describe_base_model(settings),
        "env_file": f"{env_file} ({'read' if env_file.is_file() else 'not found'})",
    }
    if args.json:
        variables = {
            Settings.env_names(name)[0]: {
                "value": settings.display_value(name),
                "source": settings.source_of(name),
                "group": group,
                "secret": name in Settings.secret_fields(),
            }
            for group, names in FIELD_GROUPS.items()
            for name in names
        }
        print(json.dumps({"variables": variables, "effective": effective}, indent=2))
        return 0
    print("# chatsmith configuration: NAME=value  # source (env, .env or default); secrets masked")
    for group, names in FIELD_GROUPS.items():
        print(f"\n# --- {group}")
        for name in names:
            shown = dotenv_value(settings.display_value(name))
            print(f"{Settings.env_names(name)[0]}={shown}  # {settings.source_of(name)}")
    print("\n# --- effective")
    for key, value in effective.items():
        print(f"# {key}: {value}")
    return 0


def dotenv_value(value: str) -> str:
    """`value` as a .env line reads it back: quoted only when it has spaces, quotes or a `#`."""
    # A cron expression has spaces and JSON has quotes; a masked "***" or a plain path stays as it is.
    return shlex.quote(value) if re.search(r"[\s#'\"\\]", value) else value


def _describe_base_model(settings: Any) -> str:
    from chatsmith.base_model import find_base_model
    from trainer.errors import TrainerError

    try:
        found = find_base_model(settings.base_model_path)
    except TrainerError:
        return f"{settings.base_model_path} (missing)"
    return str(found) if found is not None else "none (new scopes train from scratch)"


# ---------------------------------------------------------------------------------------------- check


def run_check(args: argparse.Namespace) -> int:
    """Validate the configuration; exit 2 when there is a problem."""
    _quiet(args)
    from chatsmith.settings import SettingsError, load_settings

    report = CheckReport()
    try:
        settings = load_settings()
    except SettingsError as error:
        report.problems.extend(error.problems)
        settings = None
    if settings is not None:
        check_settings(
            settings,
            report,
            roles=set(args.role or ()),
            connect=not args.no_connect,
            connect_timeout=args.connect_timeout,
        )
    check_tf_config(os.environ.get("TF_CONFIG"), report)
    secrets = _secret_values(settings)
    lines = [_redact(line, secrets) for line in report.problems]
    notes = [_redact(line, secrets) for line in report.notes]
    passed = [_redact(line, secrets) for line in report.passed]
    if args.json:
        print(json.dumps({"ok": not lines, "problems": lines, "notes": notes, "passed": passed}, indent=2))
    else:
        for line in passed:
            print(f"ok: {line}")
        for line in notes:
            print(f"note: {line}")
        for line in lines:
            print(f"problem: {line}")
        if lines:
            print(f"{len(lines)} problem(s); fix them, then run `chatsmith config check` again")
        else:
            print("configuration OK")
    return EXIT_BAD_INPUT if lines else 0


def _secret_values(settings: Any) -> list[str]:
    """Every secret the settings hold (tokens, the database password): never printed, whatever happens."""
    if settings is None:
        return []
    from chatsmith.settings import Settings

    values = [secret_text(getattr(settings, name)) for name in Settings.secret_fields()]
    try:
        from sqlalchemy.engine import make_url

        password = make_url(settings.effective_database_url).password
    except Exception:  # an unparseable URL has no password to hide here
        password = None
    if password:
        values.append(str(password))
    return [value for value in values if len(value) >= 4]


def _redact(line: str, secrets: Iterable[str]) -> str:
    # Belt and braces: the checks never format a secret, but a library message might echo one.
    for secret in secrets:
        line = line.replace(secret, "***")
    return line
