"""Commands typed as text (Slack mentions and slash commands, the console) into a command and arguments.

`generate once upon a time length:80 temperature:0.9` -> ("generate", {"prompt": "once upon a time",
"length": "80", "temperature": "0.9"}). Options are `name:value` (or `name=value`) words the command knows;
every other word is positional.
"""

from __future__ import annotations

import re

from bot.core.request import ArgValue

# Each command's options, and the argument its positional words fill ("prompt" takes them all).
OPTIONS: dict[str, tuple[str, ...]] = {
    "generate": ("length", "temperature", "as"),
    "train": ("backfill", "scope"),
    "rollback": ("scope",),
    "models": ("scope",),
    "collect": ("state",),
}
POSITIONAL: dict[str, str] = {
    "generate": "prompt",
    "train": "scope",
    "rollback": "scope",
    "models": "scope",
    "collect": "state",
    "filter": "text",
    "imitate-me": "state",
}
ALIASES = {
    "forget": "forget-me",
    "forgetme": "forget-me",
    "forget_me": "forget-me",
    "gen": "generate",
    "imitate": "imitate-me",
    "imitate_me": "imitate-me",
    "mydata": "my-data",
    "my_data": "my-data",
}
_OPTION = re.compile(r"^([a-z_]+)[:=](.+)$", re.IGNORECASE)


def parse_command_text(text: str) -> tuple[str, dict[str, ArgValue]]:
    """Split a command line into its name and arguments (values stay text; handlers check them).

    Args:
        text: The words after the bot mention or the slash, e.g. "/train backfill:500".

    Returns:
        The command name (lower case, leading "/" removed, aliases resolved; "" for empty text) and the
        arguments.
    """
    words = text.strip().split()
    if not words:
        return "", {}
    command = words[0].lstrip("/").lower()
    command = ALIASES.get(command, command)
    options = OPTIONS.get(command, ())
    args: dict[str, ArgValue] = {}
    positional: list[str] = []
    for word in words[1:]:
        match = _OPTION.match(word)
        if match and match.group(1).lower() in options:
            args[match.group(1).lower()] = match.group(2)
        else:
            positional.append(word)
    target = POSITIONAL.get(command)
    if positional and target is not None and target not in args:
        # A prompt (and a filter's action with its words) keeps its words; others take the first word.
        args[target] = " ".join(positional) if target in ("prompt", "text") else positional[0]
    return command, args


def command_for_slash(slash: str, text: str) -> tuple[str, dict[str, ArgValue]]:
    """A platform slash command (`/generate`, `/train`, `/chatsmith status`) as command and arguments.

    `/chatsmith` is the catch-all: its first word names the command.
    """
    name = slash.lstrip("/").lower()
    if name == "chatsmith":
        return parse_command_text(text)
    return parse_command_text(f"{name} {text}")
