"""Sub-command modules of the `chatsmith` CLI; each exposes `register(subparsers)`."""

from __future__ import annotations

from types import ModuleType

from chatsmith.commands import (
    bot_commands,
    config_commands,
    db_commands,
    textgen_commands,
    trainer_commands,
)


def registered_command_modules() -> list[ModuleType]:
    """The modules whose sub-commands make up `chatsmith`, in help order."""
    return [textgen_commands, db_commands, trainer_commands, bot_commands, config_commands]
