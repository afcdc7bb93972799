"""The commands chatsmith knows: usage, the help line users see, and which ones need admin rights."""

from __future__ import annotations

from dataclasses import dataclass

# What starts a command in chat; such messages are never training data.
COMMAND_PREFIXES = ("/",)


@dataclass(frozen=True)
class CommandInfo:
    """A command's help line and whether it needs admin rights."""

    usage: str
    summary: str
    admin: bool = False


COMMANDS: dict[str, CommandInfo] = {
    "generate": CommandInfo(
        "generate [prompt] [length:N] [temperature:T] [as:@member]",
        "write something in this channel's voice (without a prompt: the conversation's next message; "
        "as:@member: like a member who turned on imitate-me)",
    ),
    "imitate-me": CommandInfo(
        "imitate-me on|off", "let `generate as:@you` write like you in this workspace, or stop it"
    ),
    "status": CommandInfo("status", "which model answers here, its scores, and training progress"),
    "stats": CommandInfo("stats", "chart of the model's loss per epoch and the messages collected"),
    "forget-me": CommandInfo("forget-me", "delete your collected messages here and stop collecting yours"),
    "my-data": CommandInfo("my-data", "get, privately, a file of everything collected from you here"),
    "help": CommandInfo("help", "this list"),
    "train": CommandInfo(
        "train [channel|workspace] [backfill:N]",
        "queue training; backfill first reads up to N past messages",
        admin=True,
    ),
    "collect": CommandInfo(
        "collect on|off|share|unshare",
        "opt this channel in or out of collection; share lets a private channel train the workspace model",
        admin=True,
    ),
    "models": CommandInfo("models [channel|workspace]", "list model versions and their scores", admin=True),
    "rollback": CommandInfo(
        "rollback [channel|workspace]", "serve the previous good model version again", admin=True
    ),
    "filter": CommandInfo(
        "filter [off|mask|block] | filter add|remove WORD ...",
        "what replies may say here: the profanity policy and words of your own",
        admin=True,
    ),
}
ADMIN_COMMANDS = frozenset(name for name, info in COMMANDS.items() if info.admin)


def is_command(text: str) -> bool:
    """Whether a chat message is a command to the bot."""
    return text.lstrip().startswith(COMMAND_PREFIXES)


def help_text() -> str:
    """The `help` answer: every command with its usage and summary."""
    lines = ["Commands:"]
    for info in COMMANDS.values():
        lines.append(f"• `{info.usage}`: {info.summary}" + (" (admins)" if info.admin else ""))
    return "\n".join(lines)
