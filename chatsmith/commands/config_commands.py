"""`chatsmith config show|check`: print the effective configuration, and validate it before a deploy.

`show` prints every variable with its value and where it came from (environment, `.env`, default);
secrets are masked and the database password never appears. `check` runs the checks a process would
otherwise fail on later (or never notice): each problem is one line naming the variable and the fix,
and the exit code is 2 when there is any. It changes nothing: no directory or database is created.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatsmith.errors import EXIT_BAD_INPUT

# The roles `check --role` knows; a role makes its platform's tokens required rather than optional.
ROLES = ("discord", "slack", "trainer", "console")
DEFAULT_CONNECT_TIMEOUT = 5.0
# A Discord bot token is three base64url parts: the bot's user id, a timestamp, an HMAC.
DISCORD_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{18,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}$")
# A Slack signing secret is 32 hexadecimal characters (Basic Information -> App Credentials).
SLACK_SIGNING_SECRET_SHAPE = re.compile(r"^[0-9a-f]{32}$")


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
        help="the role(s) this configuration is for; `discord` and `slack` make their tokens required "
        "(default: platforms are checked when any of their variables is set)",
    )
    check.add_argument(
        "--connect-timeout",
        type=float,
        default=DEFAULT_CONNECT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for the database server (default {DEFAULT_CONNECT_TIMEOUT:g})",
    )
    check.add_argument("--no-connect", action="store_true", help="do not connect to the database")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.set_defaults(handler=run_check)


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


@dataclass
class CheckReport:
    """What `check` found: problems (each with its fix), notes (fine, but worth knowing), and passes."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    def problem(self, variable: str, message: str) -> None:
        self.problems.append(f"{variable}: {message}")

    def note(self, message: str) -> None:
        self.notes.append(message)

    def ok(self, message: str) -> None:
        self.passed.append(message)


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


def check_settings(
    settings: Any,
    report: CheckReport,
    *,
    roles: Iterable[str] = (),
    connect: bool = True,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
) -> CheckReport:
    """Run every check on loaded settings, adding to `report`.

    Args:
        settings: The `chatsmith.settings.Settings` to check.
        report: Where problems, notes and passes go.
        roles: Roles the configuration is for (`discord`, `slack`, ...): their tokens become required.
        connect: Connect to the database (off: only its URL is checked).
        connect_timeout: Seconds to wait for a database server.

    Returns:
        `report`.
    """
    check_storage(settings, report)
    check_database(settings, report, connect=connect, timeout=connect_timeout)
    check_base_model(settings, report)
    check_trainer(settings, report)
    roles = set(roles)
    check_discord(settings, report, required="discord" in roles)
    check_slack(settings, report, required="slack" in roles)
    check_bots(settings, report)
    return report


def check_storage(settings: Any, report: CheckReport) -> None:
    """The model directory (and the data directory when SQLite lives there) must be writable."""
    model_dir = Path(settings.effective_model_dir).expanduser()
    variable = "CHATSMITH_MODEL_DIR" if settings.model_dir is not None else "CHATSMITH_DATA_DIR"
    problem = _unwritable(model_dir)
    if problem:
        report.problem(
            variable, f"model directory {model_dir} {problem}; point {variable} at a writable directory"
        )
    else:
        report.ok(f"model directory {model_dir.absolute()} is writable")
    if settings.database_url is None:
        data_dir = Path(settings.data_dir).expanduser()
        problem = _unwritable(data_dir)
        if problem:
            report.problem(
                "CHATSMITH_DATA_DIR",
                f"data directory {data_dir} (SQLite database) {problem}; point CHATSMITH_DATA_DIR at a "
                "writable directory, or set CHATSMITH_DATABASE_URL",
            )


def _unwritable(path: Path) -> str | None:
    """Why `path` cannot hold new files, or None when it can (created later if it does not exist)."""
    if path.exists():
        if not path.is_dir():
            return "is not a directory"
        try:
            # os.access says yes to root and ignores read-only mounts; creating a file does not lie.
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as error:
            return f"is not writable ({error.strerror})"
        return None
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"cannot be created: {ancestor} is not a directory"
    if not os.access(ancestor, os.W_OK | os.X_OK):
        return f"cannot be created: {ancestor} is not writable"
    return None


def check_database(settings: Any, report: CheckReport, *, connect: bool, timeout: float) -> None:
    """The database URL parses, its driver is installed, the server answers, and its schema is current."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from chatsmith.settings import mask_database_url

    variable = "CHATSMITH_DATABASE_URL"
    url = settings.effective_database_url
    try:
        parsed = make_url(url)
    except ArgumentError:
        report.problem(
            variable,
            "not a valid SQLAlchemy URL; use e.g. sqlite:////data/chatsmith.db or "
            "postgresql+psycopg://user:password@host:5432/chatsmith",
        )
        return
    where = mask_database_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.get_driver_name() != "psycopg":
        report.note(
            f"{where}: chatsmith installs the psycopg (version 3) driver; write postgresql+psycopg://..."
        )
    if backend == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database).expanduser()
            if not path.exists():
                problem = _unwritable(path.parent)
                if problem:
                    report.problem(
                        variable if settings.database_url else "CHATSMITH_DATA_DIR",
                        f"SQLite directory {path.parent} {problem}; choose a writable location",
                    )
                else:
                    report.note(f"database {where} does not exist yet; `chatsmith db upgrade` creates it")
                return
    if not connect:
        report.ok(f"database URL {where} parses (not connected: --no-connect)")
        return
    connect_args: dict[str, Any] = {}
    if backend in ("postgresql", "mysql", "mariadb"):
        # A firewalled host would otherwise hold the check for minutes.
        connect_args["connect_timeout"] = max(1, round(timeout))
    try:
        engine = create_engine(parsed, connect_args=connect_args)
    except (NoSuchModuleError, ModuleNotFoundError):
        report.problem(
            variable,
            f"no database driver for {where}; install it (PostgreSQL: pip install 'psycopg[binary]') or use "
            "a postgresql+psycopg:// or sqlite:/// URL",
        )
        return
    try:
        _check_reachable_and_current(engine, where, report)
    finally:
        engine.dispose()


def _check_reachable_and_current(engine: Any, where: str, report: CheckReport) -> None:
    from db.engine import verify_connection
    from db.errors import DatabaseError
    from db.schema import current_revision, ensure_schema_current

    try:
        verify_connection(engine)
        current = current_revision(engine)
    except DatabaseError as error:
        # db's messages name the URL without its password and say what to check.
        report.problem("CHATSMITH_DATABASE_URL", str(error))
        return
    if current is None:
        report.note(f"database {where} is reachable and empty; `chatsmith db upgrade` creates the schema")
        return
    try:
        ensure_schema_current(engine)
    except DatabaseError as error:
        report.problem("CHATSMITH_DATABASE_URL", str(error))
        return
    report.ok(f"database {where} is reachable, schema {current} is current")


def check_base_model(settings: Any, report: CheckReport) -> None:
    """A configured base model must be a bundle; `none` asks for training from scratch."""
    from chatsmith.base_model import FROM_SCRATCH, PACKAGED_BASE_MODEL, find_base_model
    from trainer.errors import TrainerError

    configured = settings.base_model_path
    try:
        found = find_base_model(configured)
    except TrainerError as error:
        report.problem("CHATSMITH_BASE_MODEL_PATH", str(error))
        return
    if found is None:
        if configured is None or str(configured).strip().lower() != FROM_SCRATCH:
            report.note(
                f"no base model (none packaged at {PACKAGED_BASE_MODEL}); new scopes train from scratch "
                "and /generate has nothing to answer with until a scope is trained"
            )
        return
    # The manifest a bundle is loaded by; its name is textgen's, kept here to avoid importing TensorFlow.
    if not (found / "bundle.json").is_file():
        report.problem(
            "CHATSMITH_BASE_MODEL_PATH",
            f"{found} is not a model bundle (no bundle.json); point it at a directory written by "
            "`chatsmith train`, or set it to 'none'",
        )
        return
    report.ok(f"base model {found}")


def check_trainer(settings: Any, report: CheckReport) -> None:
    """The retrain schedule is valid crontab; the JSON spec and train config name real fields."""
    from textgen.errors import TextgenError
    from trainer.config import TrainerConfig, cron_trigger
    from trainer.errors import TrainerError

    attempts: list[tuple[str, Callable[[], object]]] = [
        ("CHATSMITH_TRAINER_SCHEDULE", lambda: cron_trigger(settings.trainer_schedule)),
    ]
    config = TrainerConfig(
        spec=dict(settings.trainer_spec),
        train_config=dict(settings.trainer_train_config),
        time_budget=settings.trainer_time_budget,
    )
    attempts.append(("CHATSMITH_TRAINER_SPEC", config.model_spec))
    attempts.append(("CHATSMITH_TRAINER_TRAIN_CONFIG", config.textgen_train_config))
    failed = False
    for variable, attempt in attempts:
        try:
            attempt()
        except (TrainerError, TextgenError) as error:
            message = str(error)
            # trainer's messages already start with the variable; textgen's name the field.
            report.problem(variable, message.removeprefix(f"{variable} ").removeprefix(variable))
            failed = True
    if settings.trainer_stale_after_seconds <= 2 * settings.trainer_heartbeat_seconds:
        report.problem(
            "CHATSMITH_TRAINER_STALE_AFTER_SECONDS",
            f"{settings.trainer_stale_after_seconds:g}s is not more than twice the heartbeat interval "
            f"({settings.trainer_heartbeat_seconds:g}s), so live jobs would be requeued; raise it",
        )
        failed = True
    if not failed:
        report.ok(f"trainer schedule {settings.trainer_schedule!r} (UTC) and training settings")


def check_discord(settings: Any, report: CheckReport, *, required: bool) -> None:
    """The Discord token has the shape of a bot token (three dot-separated parts)."""
    token = settings.discord_token.get_secret_value() if settings.discord_token else ""
    if not token:
        if required:
            report.problem(
                "DISCORD_TOKEN",
                "not set; set it to the bot token from the Discord developer portal (Bot -> Reset Token)",
            )
        if settings.discord_shard_count is not None and not settings.discord_sharded:
            report.problem(
                "CHATSMITH_DISCORD_SHARD_COUNT",
                "is set but CHATSMITH_DISCORD_SHARDED is not true; set CHATSMITH_DISCORD_SHARDED=true",
            )
        return
    problem = discord_token_problem(token)
    if problem:
        report.problem("DISCORD_TOKEN", problem)
    else:
        report.ok("DISCORD_TOKEN has the shape of a bot token")
    if settings.discord_shard_count is not None and not settings.discord_sharded:
        report.problem(
            "CHATSMITH_DISCORD_SHARD_COUNT",
            "is set but CHATSMITH_DISCORD_SHARDED is not true; set CHATSMITH_DISCORD_SHARDED=true",
        )


def discord_token_problem(token: str) -> str | None:
    """What is wrong with the shape of a Discord bot token, with the fix; None when it looks right.

    The message never contains the token.
    """
    fix = "copy the token again from the Discord developer portal (Bot -> Reset Token)"
    if token != token.strip():
        return "has spaces or a line break around it; remove them"
    if token[:1] in "\"'" and token[-1:] == token[:1]:
        return "is wrapped in quotes; remove them"
    if token.lower().startswith("bot "):
        return "starts with 'Bot '; set only the token (discord.py adds the prefix)"
    if token.isdigit():
        return f"is a number (an application or user id), not the bot token; {fix}"
    if "." not in token and len(token) == 32:
        return f"looks like the OAuth2 client secret, not the bot token; {fix}"
    if not DISCORD_TOKEN_SHAPE.match(token):
        return f"does not look like a Discord bot token (three parts separated by dots); {fix}"
    return None


def check_slack(settings: Any, report: CheckReport, *, required: bool) -> None:
    """Slack tokens have their prefixes, and the mode has what it needs (app token, or signing secret)."""
    bot_token = _secret(settings.slack_bot_token)
    app_token = _secret(settings.slack_app_token)
    signing_secret = _secret(settings.slack_signing_secret)
    used = required or bool(bot_token or app_token or signing_secret) or settings.slack_mode == "http"
    if not used:
        return
    failed = len(report.problems)
    if not bot_token:
        report.problem("SLACK_BOT_TOKEN", "not set; set it to the app's Bot User OAuth Token (xoxb-...)")
    elif bot_token.startswith("xoxp-"):
        report.problem(
            "SLACK_BOT_TOKEN",
            "is a user token (xoxp-); use the Bot User OAuth Token (xoxb-...) from OAuth & Permissions",
        )
    elif not bot_token.startswith("xoxb-"):
        report.problem(
            "SLACK_BOT_TOKEN",
            "does not start with xoxb-; copy the Bot User OAuth Token from OAuth & Permissions",
        )
    if settings.slack_mode == "socket":
        if not app_token:
            report.problem(
                "SLACK_APP_TOKEN",
                "Socket Mode needs an app-level token: set SLACK_APP_TOKEN (xapp-..., scope "
                "connections:write), or CHATSMITH_SLACK_MODE=http with SLACK_SIGNING_SECRET",
            )
        elif not app_token.startswith("xapp-"):
            report.problem(
                "SLACK_APP_TOKEN",
                "does not start with xapp-; create an App-Level Token under Basic Information",
            )
    else:
        if not signing_secret:
            report.problem(
                "SLACK_SIGNING_SECRET",
                "HTTP mode (CHATSMITH_SLACK_MODE=http) needs the signing secret to check requests; set it "
                "from Basic Information -> App Credentials",
            )
        elif not SLACK_SIGNING_SECRET_SHAPE.match(signing_secret):
            report.problem(
                "SLACK_SIGNING_SECRET",
                "is not 32 hexadecimal characters; copy the Signing Secret (not a token) from Basic "
                "Information -> App Credentials",
            )
        if not settings.slack_http_path.startswith("/"):
            report.problem("CHATSMITH_SLACK_HTTP_PATH", "must start with /, e.g. /slack/events")
    if len(report.problems) == failed:
        report.ok(f"Slack settings for {settings.slack_mode} mode")


def check_bots(settings: Any, report: CheckReport) -> None:
    """Generation defaults that contradict each other."""
    if settings.generate_default_length > settings.generate_max_length:
        report.problem(
            "CHATSMITH_GENERATE_DEFAULT_LENGTH",
            f"{settings.generate_default_length} exceeds CHATSMITH_GENERATE_MAX_LENGTH "
            f"({settings.generate_max_length}); lower it or raise the maximum",
        )


def check_tf_config(raw: str | None, report: CheckReport) -> None:
    """`TF_CONFIG` (multi-worker training) names a cluster and this process's place in it."""
    if not raw:
        return
    fix = (
        'set it to e.g. {"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}}'
    )
    try:
        config = json.loads(raw)
    except ValueError:
        report.problem("TF_CONFIG", f"is not valid JSON; {fix}")
        return
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster:
        report.problem("TF_CONFIG", f"has no cluster; {fix}")
        return
    for kind, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(_host_port(a) for a in addresses):
            report.problem("TF_CONFIG", f"cluster {kind!r} must be a list of host:port strings; {fix}")
            return
    if not isinstance(task, dict) or task.get("type") not in cluster:
        report.problem("TF_CONFIG", f"task.type must name one of the cluster's jobs ({', '.join(cluster)})")
        return
    index = task.get("index")
    if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        report.problem(
            "TF_CONFIG",
            f"task.index must be 0..{len(cluster[task['type']]) - 1}, this process's place in "
            f"cluster[{task['type']!r}]",
        )
        return
    workers = sum(len(addresses) for addresses in cluster.values())
    report.ok(f"TF_CONFIG: {task['type']} {index} of {workers} (MultiWorkerMirroredStrategy when > 1)")


def _host_port(address: object) -> bool:
    if not isinstance(address, str):
        return False
    host, _, port = address.rpartition(":")
    return bool(host) and port.isdigit()


def _secret(value: Any) -> str:
    return value.get_secret_value().strip() if value is not None else ""


def _secret_values(settings: Any) -> list[str]:
    """Every secret the settings hold (tokens, the database password): never printed, whatever happens."""
    if settings is None:
        return []
    from chatsmith.settings import Settings

    values = [_secret(getattr(settings, name)) for name in Settings.secret_fields()]
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
