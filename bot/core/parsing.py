"""Commands typed as text (Slack mentions and slash commands, the console) into a command and arguments.

`generate once upon a time length:80 temperature:0.9` -> ("generate", {"prompt": "once upon a time",
"length": "80", "temperature": "0.9"}). What a command accepts is its declaration (`bot.core.catalog`):
`name:value` (or `name=value`) sets one of its options; the other words fill its positional options in
order, one word each, except a `rest` option (a prompt), which takes every word left.
"""

from __future__ import annotations

import re

from bot.core.catalog import COMMANDS, resolve
from bot.core.request import ArgValue

# The slash command whose first word names the command (`/chatsmith status`), where a platform registers
# only a few slash commands of its own.
CATCH_ALL = "chatsmith"
_OPTION = re.compile(r"^([a-z_]+)[:=](.+)$", re.IGNORECASE)


def parse_command_text(text: str) -> tuple[str, dict[str, ArgValue]]:
    """Split a command line into its name and arguments (values stay text; handlers check them).

    Args:
        text: The words after the bot mention or the slash, e.g. "/train backfill:500".

    Returns:
        The command name (lower case, leading "/" removed, aliases resolved; "" for empty text) and the
        arguments (none for a command nobody declared).
    """
    words = text.strip().split()
    if not words:
        return "", {}
    command = resolve(words[0].lstrip("/"))
    spec = COMMANDS.get(command)
    if spec is None:
        return command, {}
    args: dict[str, ArgValue] = {}
    bare: list[str] = []
    for word in words[1:]:
        match = _OPTION.match(word)
        option = spec.option(match.group(1).lower()) if match else None
        if match and option is not None and not option.rest:
            args[option.name] = match.group(2)
        else:
            bare.append(word)
    for option in spec.options:
        if not bare:
            break
        if not option.positional or option.name in args:
            continue
        if option.rest:
            args[option.name] = " ".join(bare)
            bare = []
        else:
            args[option.name] = bare.pop(0)
    return command, args


def command_for_slash(slash: str, text: str) -> tuple[str, dict[str, ArgValue]]:
    """A platform slash command (`/generate`, `/train`, `/chatsmith status`) as command and arguments.

    `/chatsmith` is the catch-all: its first word names the command.
    """
    name = slash.lstrip("/").lower()
    if name == CATCH_ALL:
        return parse_command_text(text)
    return parse_command_text(f"{name} {text}")
