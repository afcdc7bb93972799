"""The checks of `chatsmith config check`: what a process would otherwise fail on later, or never notice.

Each problem is one line naming the variable and the fix. The checks change nothing: no directory or
database is created. The platforms' settings are checked in `chatsmith.token_checks`; the report is `chatsmith.check_report`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from chatsmith.check_report import CheckReport
from chatsmith.token_checks import check_platforms

DEFAULT_CONNECT_TIMEOUT = 5.0


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
        roles: Roles the configuration is for (a platform of `db.platforms`, `trainer`, ...): a platform's
            tokens become required.
        connect: Connect to the database (off: only its URL is checked).
        connect_timeout: Seconds to wait for a database server.

    Returns:
        `report`.
    """
    check_storage(settings, report)
    check_database(settings, report, connect=connect, timeout=connect_timeout)
    check_base_model(settings, report)
    check_trainer(settings, report)
    check_platforms(settings, report, required=set(roles))
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
        problem = _cannot_create_in(path)
        return f"is not writable ({problem})" if problem else None
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return f"cannot be created: {ancestor} is not a directory"
    # /proc and read-only mounts pass os.access for root; only creating something there tells.
    return f"cannot be created: {ancestor} is not writable" if _cannot_create_in(ancestor) else None


def _cannot_create_in(directory: Path) -> str | None:
    try:
        # os.access says yes to root and ignores read-only mounts; creating a file does not lie.
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


def check_database(settings: Any, report: CheckReport, *, connect: bool, timeout: float) -> None:
    """The database URL parses, its driver is installed, the server answers, and its schema is current."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import NoSuchModuleError

    from chatsmith.settings import mask_database_url
    from db.engine import parse_database_url
    from db.errors import DatabaseError

    variable = "CHATSMITH_DATABASE_URL"
    url = settings.effective_database_url
    try:
        parsed = parse_database_url(url)
    except DatabaseError as error:
        if "port" in str(error):
            report.problem(variable, str(error))
            return
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


def check_bots(settings: Any, report: CheckReport) -> None:
    """Admin settings that grant nothing, and generation defaults that contradict each other."""
    if settings.admin_roles:
        report.problem(
            "CHATSMITH_ADMIN_ROLES",
            f"role names ({', '.join(settings.admin_roles)}) no longer make anyone an admin, because anyone "
            "who may create roles could make one with that name; set CHATSMITH_ADMIN_ROLE_IDS to "
            "GUILD_ID:ROLE_ID pairs instead (Discord: User Settings > Advanced > Developer Mode on, then "
            "right-click the server and the role > Copy ID) and remove CHATSMITH_ADMIN_ROLES",
        )
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
