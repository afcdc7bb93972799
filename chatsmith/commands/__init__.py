"""Sub-command modules of the `chatsmith` CLI; each exposes `register(subparsers)`."""

from __future__ import annotations

import importlib
from types import ModuleType

# Each module adds its sub-commands; modules for areas not installed yet are skipped.
_COMMAND_MODULES = (
    "chatsmith.commands.textgen_commands",
    "chatsmith.commands.db_commands",
    "chatsmith.commands.trainer_commands",
    "chatsmith.commands.bot_commands",
    "chatsmith.commands.config_commands",
)


def registered_command_modules() -> list[ModuleType]:
    modules = []
    for name in _COMMAND_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
    return modules
