"""The Discord command tree, built from the command declarations, and synced only when it changed.

Each declared command (`bot.core.catalog`) becomes an `app_commands.Command` whose typed options come
from its `Option`s: choices become a list to pick from, bounds a range, a member option a user picker.
Discord limits how often an application may register its commands, so the tree is synced only when its
payload differs from the one last synced for the same application, which is recorded in a small file.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import keyword
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import discord
from discord import app_commands

from bot.core.catalog import DECLARED
from bot.core.command_spec import CommandSpec, Option
from bot.core.request import ArgValue

log = logging.getLogger(__name__)

# How a command reaches the adapter: the interaction, the command's name and its arguments.
RunCommand = Callable[[discord.Interaction, str, dict[str, ArgValue | None]], Awaitable[None]]
ReportError = Callable[[BaseException, discord.Interaction], Awaitable[None]]


class ChatsmithTree(app_commands.CommandTree[Any]):
    """The tree of the declared commands.

    Args:
        client: The Discord client.
        run: Where every command hands its interaction and arguments.
        report: The adapter's one error handler for commands (a command that raised).
    """

    def __init__(self, client: discord.Client, run: RunCommand, report: ReportError) -> None:
        super().__init__(client)
        self._report = report
        for spec in DECLARED:
            self.add_command(slash_command(spec, run))

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await self._report(error, interaction)

    async def sync_if_changed(self, application_id: int | None, record: Path | None) -> bool:
        """Sync with Discord unless `record` shows this very tree was synced for this application.

        Args:
            application_id: The application the tree belongs to (a new bot token may be a new one).
            record: The file that remembers the last sync; None: sync at every start.

        Returns:
            Whether it synced.
        """
        synced = {"application_id": str(application_id), "fingerprint": tree_fingerprint(self)}
        if record is not None and _read_record(record) == synced:
            log.info("discord commands unchanged since the last sync; not synced again")
            return False
        await self.sync()
        if record is not None:
            _write_record(record, synced)
        return True


def slash_command(spec: CommandSpec, run: RunCommand) -> app_commands.Command[Any, ..., None]:
    """The Discord slash command for one declaration.

    discord.py reads a command's options from its callback's signature, so the callback carries one
    made from the declared options (a keyword such as `as` is renamed for Python and back for Discord).
    """
    python_names = {option.name: _python_name(option.name) for option in spec.options}

    async def callback(interaction: discord.Interaction, **values: Any) -> None:
        args = {option.name: _arg_value(values.get(python_names[option.name])) for option in spec.options}
        await run(interaction, spec.name, args)

    parameters = [
        inspect.Parameter(
            "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction
        )
    ]
    for option in spec.options:
        parameters.append(
            inspect.Parameter(
                python_names[option.name],
                inspect.Parameter.KEYWORD_ONLY,
                default=option.default,
                annotation=_annotation(option),
            )
        )
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    renames = {python: name for name, python in python_names.items() if python != name}
    if renames:
        callback = app_commands.rename(**renames)(callback)
    if spec.options:
        descriptions = {python_names[option.name]: option.description for option in spec.options}
        callback = app_commands.describe(**descriptions)(callback)
    return app_commands.Command(name=spec.name, description=spec.description, callback=callback)


def _python_name(name: str) -> str:
    python = name.replace("-", "_")
    return f"{python}_" if keyword.iskeyword(python) else python


def _annotation(option: Option) -> Any:
    """The type discord.py turns into the option's Discord type (optional when it has no default)."""
    base: Any
    if option.choices:
        base = Literal[option.choices]
    elif option.kind == "member":
        base = discord.User
    elif option.kind in ("whole", "number"):
        number: type = int if option.kind == "whole" else float
        if option.low is not None and option.high is not None:
            base = app_commands.Range[number, number(option.low), number(option.high)]  # type: ignore[valid-type]
        else:
            base = number
    else:
        base = str
    return base | None if option.default is None else base


def _arg_value(value: Any) -> ArgValue | None:
    """A Discord option value as a command argument: a member becomes their id."""
    if isinstance(value, discord.abc.User):
        return str(value.id)
    return value  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- syncing


def tree_fingerprint(tree: app_commands.CommandTree[Any]) -> str:
    """A digest of the global commands exactly as a sync would send them to Discord."""
    payload = sorted((command.to_dict(tree) for command in tree.get_commands()), key=lambda c: c["name"])
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


def _read_record(record: Path) -> dict[str, str] | None:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # missing or damaged: sync, which rewrites it
    return data if isinstance(data, dict) else None


def _write_record(record: Path, synced: dict[str, str]) -> None:
    """Write the record whole or not at all; a failure costs one more sync at the next start, no more."""
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        partial = record.with_name(record.name + ".tmp")
        partial.write_text(json.dumps(synced), encoding="utf-8")
        partial.replace(record)
    except OSError:
        log.warning("could not record the command sync in %s; the next start syncs again", record)
