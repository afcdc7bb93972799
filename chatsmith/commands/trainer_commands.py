"""`chatsmith trainer | import | train-scope | models`: the trainer process and its operator commands.

Each command reads the settings once, opens the database (refusing an out-of-date schema), and hands
the work to `trainer/` or `db/`; this module only parses arguments and prints.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Any

from chatsmith.wording import plural
from db.models import JOB_REASONS
from db.platforms import PLATFORM_NAMES as PLATFORMS
from textgen.formats import FORMATS as IMPORT_FORMATS
from trainer.errors import TrainerError

# The platform whose ids an export carries, so that imported authors meet the bot's collected ones.
FORMAT_PLATFORMS = {"slack-export": "slack", "discord-json": "discord", "discord-csv": "discord"}


def register(subparsers: Any) -> None:
    """Add `trainer`, `import`, `train-scope` and `models`."""
    trainer = subparsers.add_parser(
        "trainer",
        help="run the trainer: retrain schedules and the training queue",
        description="Run the trainer process: per-scope retrain schedules (CHATSMITH_TRAINER_SCHEDULE) and a "
        "poll of the training queue. Stops cleanly on SIGTERM or Ctrl-C, putting an unfinished job back in the "
        "queue. With --once: run every queued job, then exit (0: all jobs finished, promoted or rejected; "
        "1: a job failed).",
    )
    trainer.add_argument("--once", action="store_true", help="process the queue once and exit")
    trainer.add_argument("--worker-id", help="this trainer's name in the queue (default: host-pid)")
    trainer.set_defaults(handler=run_trainer)

    importer = subparsers.add_parser(
        "import",
        help="import a chat log or export into channels' messages (and turn collection on there)",
        description="Store the messages of FILE in its channels, creating them when new and turning their "
        "collection on. FILE is a chat log (IRC, one message per line, JSON lines), a DiscordChatExporter "
        "JSON or CSV export, or a Slack workspace export (its zip or unpacked folder). Authors and times are "
        "kept where the format has them. Importing the same file again adds nothing. Conversations the "
        "export marks private (private channels, direct messages, private threads) are stored private: they "
        "train only their own channel model, never the workspace model.",
    )
    importer.add_argument("file", type=Path, metavar="FILE")
    importer.add_argument(
        "--platform",
        choices=PLATFORMS,
        default=None,
        help="slack for a Slack export, discord for a Discord export, else console (the default)",
    )
    importer.add_argument("--workspace", required=True, help="workspace (server, team) id")
    importer.add_argument(
        "--channel",
        help="channel id to store a log's messages in; in a Slack or Discord export, the one channel to import "
        "(by name or id; default: every channel, each stored under its own id)",
    )
    importer.add_argument(
        "--format", default="auto", help=f"auto or one of: {', '.join(IMPORT_FORMATS)} (default: auto)"
    )
    importer.add_argument(
        "--irc-actions", action="store_true", help="keep IRC actions (`* nick waves`) as messages"
    )
    importer.add_argument(
        "--private",
        action="store_true",
        help="store the channels private whatever the file says (a log of a private channel or a direct "
        "conversation): they then train only their own channel model",
    )
    importer.set_defaults(handler=run_import)

    train_scope = subparsers.add_parser(
        "train-scope",
        help="queue a training job for a workspace or channel",
        description="Queue a training job for WORKSPACE (all its collecting channels) or one CHANNEL of it; "
        "`chatsmith trainer` runs it.",
    )
    _add_scope_arguments(train_scope)
    train_scope.add_argument("--reason", choices=JOB_REASONS, default="cli")
    train_scope.add_argument("--requested-by", default="cli", help="who asked (stored on the job)")
    train_scope.set_defaults(handler=run_train_scope)

    models = subparsers.add_parser("models", help="list, activate or roll back model versions")
    commands = models.add_subparsers(dest="models_command", metavar="MODELS_COMMAND", required=True)
    listing = commands.add_parser("list", help="model versions, newest first (all scopes, or one)")
    _add_scope_arguments(listing, optional=True)
    listing.set_defaults(handler=run_models_list)
    activate = commands.add_parser("activate", help="make a version its scope's active model")
    activate.add_argument(
        "version_id", type=int, metavar="VERSION_ID", help="id from `chatsmith models list`"
    )
    activate.set_defaults(handler=run_models_activate)
    rollback = commands.add_parser("rollback", help="serve the scope's previous good version again")
    _add_scope_arguments(rollback)
    rollback.set_defaults(handler=run_models_rollback)


def _add_scope_arguments(parser: argparse.ArgumentParser, *, optional: bool = False) -> None:
    # Listing without a workspace lists every platform unless --platform names one.
    parser.add_argument(
        "--platform",
        choices=PLATFORMS,
        default=None if optional else "console",
        help="platform of WORKSPACE (default: console"
        + ("; without WORKSPACE, every platform)" if optional else ")"),
    )
    parser.add_argument("workspace", nargs="?" if optional else None, metavar="WORKSPACE")
    parser.add_argument("channel", nargs="?", metavar="CHANNEL")


# ---------------------------------------------------------------------------------------------- set-up


def _open() -> tuple[Any, Any]:
    """The settings and a database engine whose schema is current."""
    import logging

    # Alembic narrates its schema check at INFO; the commands print their own outcome.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    from chatsmith.settings import load_settings
    from db.schema import open_database

    settings = load_settings()
    return settings, open_database(settings.effective_database_url)


def _store(settings: Any) -> Any:
    from chatsmith.wiring import model_store

    return model_store(settings)


def _find_scope(engine: Any, platform: str, workspace: str, channel: str | None) -> Any:
    from sqlalchemy.orm import Session

    from db.scopes import find_scope
    from trainer.errors import ScopeNotFound

    with Session(engine) as session:
        scope = find_scope(session, platform, workspace, channel)
    if scope is None:
        where = f"{platform}:{workspace}" + (f" #{channel}" if channel else "")
        raise ScopeNotFound(
            f"{where} is not in the database; import messages first with `chatsmith import --platform {platform} "
            f"--workspace {workspace} --channel CHANNEL FILE`, or check the ids with `chatsmith models list`"
        )
    return scope


# ---------------------------------------------------------------------------------------------- trainer


def run_trainer(args: argparse.Namespace) -> int:
    """Run the trainer, or with --once process the queue and return 1 if a job failed."""
    from chatsmith.wiring import trainer_config
    from trainer.service import StopOnSignal, TrainerService

    settings, engine = _open()
    try:
        config = trainer_config(settings)
        worker_id = args.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        service = TrainerService(engine, config, _store(settings), worker_id)
        with StopOnSignal(service.stop) as stopper:
            if not args.once:
                service.serve()
                return 0
            outcomes = service.run_once()
        for outcome in outcomes:
            print(f"job {outcome.job_id} {outcome.headline} ({outcome.message})")
        if not outcomes:
            print("no queued jobs")
        if stopper.signum is not None:
            return 128 + stopper.signum
        return 1 if any(outcome.status == "failed" for outcome in outcomes) else 0
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------- import


def run_import(args: argparse.Namespace) -> int:
    """Import a chat log or export into its channels, with a progress bar, and print what was added."""
    from chatsmith.read_progress import ReadProgressBar
    from textgen.formats import CHANNEL_FORMATS, open_source
    from trainer.importing import import_records

    source = open_source(args.file, args.format, channel=args.channel, include_actions=args.irc_actions)
    if source.guessed:
        # Said before reading, so a wrong guess on a large file can be stopped early; the summary only
        # recalls it.
        print(f"{args.file}: guessed format {source.format!r}; pass --format to override", file=sys.stderr)
    platform = args.platform or FORMAT_PLATFORMS.get(source.format, "console")
    # In an export of channels, --channel picks one of them; in a log, it names where the messages go.
    target = None if source.format in CHANNEL_FORMATS else args.channel
    bar = ReadProgressBar(args.file.name, "files" if source.counts_files else "bytes")
    settings, engine = _open()
    try:
        result = import_records(
            engine,
            source.records(bar),
            platform=platform,
            workspace=args.workspace,
            channel=target,
            source_name=args.file.name,
            private=args.private,
        )
    finally:
        bar.close()
        engine.dispose()
    for note in source.report.notes:
        print(f"note: {args.file.name}: {note}", file=sys.stderr)
    for broken in source.report.broken:
        print(f"warning: {args.file.name}: could not read {broken}; the rest was imported", file=sys.stderr)
    if result.messages == 0:
        raise TrainerError(
            f"{args.file} has no messages in format {source.format!r}; check --format (and --channel)"
        )
    guessed = ", guessed" if source.guessed else ""
    where = ", ".join(f"#{channel}" for channel in result.channels[:5])
    if len(result.channels) > 5:
        where += f" and {len(result.channels) - 5} more channels"
    left_out = f", {plural(source.report.skipped, 'non-message')} left out" if source.report.skipped else ""
    stored = "was" if result.already_stored == 1 else "were"
    private = ", ".join(f"#{channel}" for channel in result.private_channels[:5])
    if len(result.private_channels) > 5:
        private += f" and {len(result.private_channels) - 5} more"
    kept_apart = f"; private, so training only their own channel model: {private}" if private else ""
    print(
        f"imported {result.added} of {plural(result.messages, 'message')} ({source.format} format{guessed}) into "
        f"{platform}:{args.workspace} {where}; {result.already_stored} {stored} already stored, "
        f"{result.opted_out} from opted-out users skipped{left_out}; collection is on{kept_apart}"
    )
    return 0


# ---------------------------------------------------------------------------------------------- train-scope


def run_train_scope(args: argparse.Namespace) -> int:
    """Queue a training job and print its id and place in the queue."""
    from sqlalchemy.orm import Session

    from db.jobs import queue_position, request_training

    _settings, engine = _open()
    try:
        scope = _find_scope(engine, args.platform, args.workspace, args.channel)
        enqueued = request_training(engine, scope, args.reason, args.requested_by)
        with Session(engine) as session:
            position = queue_position(session, scope)
    finally:
        engine.dispose()
    where = f"{args.platform}:{args.workspace}" + (f" #{args.channel}" if args.channel else "")
    state = "queued" if enqueued.created else f"already {enqueued.job.status}"
    place = "running now" if position == 0 else f"position {position} in the queue"
    print(f"job {enqueued.job.id} {state} for {where} ({place}); run `chatsmith trainer --once` to train it")
    return 0


# ---------------------------------------------------------------------------------------------- models


def run_models_list(args: argparse.Namespace) -> int:
    """Print the model versions of one scope, or of every scope."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from db.models import ModelVersion, Workspace
    from db.scopes import Scope, describe_scope
    from db.verdicts import format_nats, gate_outcome, held_out_score

    settings, engine = _open()
    try:
        query = select(ModelVersion).order_by(ModelVersion.scope_key, ModelVersion.version.desc())
        if args.workspace is not None:
            scope = _find_scope(engine, args.platform or "console", args.workspace, args.channel)
            query = query.where(ModelVersion.scope_key == scope.scope_key)
        elif args.platform is not None:
            query = query.join(Workspace, Workspace.id == ModelVersion.workspace_id).where(
                Workspace.platform == args.platform
            )
        with Session(engine) as session:
            versions = list(session.scalars(query))
            names = {
                v.scope_key: describe_scope(session, Scope(v.workspace_id, v.channel_id)) for v in versions
            }
    finally:
        engine.dispose()
    if not versions:
        print("no model versions yet; queue one with `chatsmith train-scope WORKSPACE [CHANNEL]`")
        return 0
    print(f"{'id':>5}  {'scope':<36} {'ver':>4}  {'status':<9} {'nats/char':>9}  {'created (UTC)':<16}  note")
    for v in versions:
        score = held_out_score(v.metrics)
        score_text = format_nats(score) if score is not None else "-"
        outcome = gate_outcome(v.metrics)
        note = (f"{outcome}; " if outcome else "") + (v.note or "")
        print(
            f"{v.id:>5}  {names[v.scope_key][:36]:<36} {'v' + str(v.version):>4}  {v.status:<9} {score_text:>9}  "
            f"{v.created_at:%Y-%m-%d %H:%M}  {_wrapped_note(note)}"
        )
    return 0


# Notes wrap under the note column, whole: a withdrawn version's reason comes last.
_NOTE_INDENT = 89
_NOTE_WIDTH = 60


def _wrapped_note(note: str | None) -> str:
    import textwrap

    lines = textwrap.wrap(
        " ".join((note or "").split()), _NOTE_WIDTH, break_long_words=False, break_on_hyphens=False
    ) or [""]
    return ("\n" + " " * _NOTE_INDENT).join(lines)


def run_models_activate(args: argparse.Namespace) -> int:
    """Make a version active, after checking its bundle is still there."""
    from sqlalchemy.orm import Session

    from db.engine import immediate
    from db.errors import DatabaseError
    from db.registry import get_version, promote
    from db.retry import retry_on_lock

    settings, engine = _open()
    store = _store(settings)

    def activate() -> tuple[int, int | None]:
        with Session(immediate(engine), expire_on_commit=False) as session, session.begin():
            version = get_version(session, args.version_id)
            if version.bundle_path and not store.exists(version.bundle_path):
                raise DatabaseError(
                    f"model version {version.id} has no bundle at {version.bundle_path} any more; pick another "
                    "version from `chatsmith models list` or retrain"
                )
            previous = promote(session, version)
            return version.version, previous.version if previous is not None else None

    try:
        number, previous = retry_on_lock(activate)
    finally:
        engine.dispose()
    replaced = f" (was v{previous})" if previous is not None else ""
    print(f"model version {args.version_id} (v{number}) is now active{replaced}")
    return 0


def run_models_rollback(args: argparse.Namespace) -> int:
    """Serve the scope's previous good version again, or what served before its first version."""
    from sqlalchemy.orm import Session

    from chatsmith.base_model import find_base_model
    from db.engine import immediate
    from db.registry import active_version, roll_back_or_fall_back
    from db.retry import retry_on_lock
    from db.serving import resolve_serving_model

    settings, engine = _open()
    store = _store(settings)
    try:
        scope = _find_scope(engine, args.platform, args.workspace, args.channel)

        def roll_back() -> tuple[int | None, int | None, int | None]:
            with Session(immediate(engine), expire_on_commit=False) as session, session.begin():
                current = active_version(session, scope)
                version = roll_back_or_fall_back(session, scope, bundle_exists=store.exists)
                was = current.version if current is not None else None
                return was, (version.id if version else None), (version.version if version else None)

        was, version_id, number = retry_on_lock(roll_back)
        serving = None
        if version_id is None:
            base = find_base_model(settings.base_model_path)
            serving = resolve_serving_model(
                engine, args.platform, args.workspace, args.channel, store=store, base_model=base
            )
    finally:
        engine.dispose()
    if version_id is not None:
        print(f"rolled back: model version {version_id} (v{number}) is active again")
        return 0
    if serving is None:
        now = "nothing serves it now (no workspace model, no base model)"
    elif serving.source == "base":
        now = "the base model serves it again"
    else:
        now = f"the {serving.source} model v{serving.version} serves it again"
    print(f"rolled back: v{was} set aside and no earlier version served here; {now}")
    return 0


# ---------------------------------------------------------------------------------------------- generate --scope


def scope_bundle(args: argparse.Namespace) -> tuple[Path, Any]:
    """The bundle `chatsmith generate --scope WORKSPACE [CHANNEL]` uses (what serves there now), and the
    output filter of that workspace.

    Called by `textgen_commands.run_generate`; says on stderr which model it picked.

    Raises:
        TrainerError: Bad --scope arguments, a scope not in the database, or nothing serves there.
    """
    from chatsmith.base_model import find_base_model
    from chatsmith.scope_filter import scope_output_filter
    from db.serving import resolve_serving_model
    from trainer.errors import TrainerError

    if args.model is not None:
        raise TrainerError("pass either --model DIR or --scope WORKSPACE [CHANNEL], not both")
    if not 1 <= len(args.scope) <= 2:
        raise TrainerError(f"--scope takes WORKSPACE [CHANNEL], received {len(args.scope)} values")
    workspace, channel = args.scope[0], (args.scope[1] if len(args.scope) == 2 else None)
    platform = getattr(args, "platform", None) or "console"
    settings, engine = _open()
    try:
        # An unknown scope is a typo, not a request for the base model.
        _find_scope(engine, platform, workspace, channel)
        output = scope_output_filter(engine, platform, workspace)
        model = resolve_serving_model(
            engine,
            platform,
            workspace,
            channel,
            store=_store(settings),
            base_model=find_base_model(settings.base_model_path),
        )
    finally:
        engine.dispose()
    if model is None:
        where = f"{platform}:{workspace}" + (f" #{channel}" if channel is not None else "")
        channel_arg = f" {channel}" if channel is not None else ""
        raise TrainerError(
            f"no model serves {where} yet and there is no base model; train one with "
            f"`chatsmith train-scope --platform {platform} {workspace}{channel_arg}` then "
            "`chatsmith trainer --once`, or set CHATSMITH_BASE_MODEL_PATH"
        )
    which = "the base model" if model.source == "base" else f"the {model.source} model v{model.version}"
    print(f"using {which} ({model.path})", file=sys.stderr)
    return model.path, output
