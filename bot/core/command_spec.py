"""What a command is: its declaration (`CommandSpec`) and its typed options (`Option`).

Every command is declared once, in `bot.core.catalog`; dispatch, typed-text parsing, `help`, the console,
the Discord command tree and Slack's slash commands are all read from those declarations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from bot.core.request import ArgValue, Reply, Request

if TYPE_CHECKING:
    from bot.core.services import Services

# What starts a command in chat; such messages are never training data.
COMMAND_PREFIXES = ("/",)

# What an option holds: free text, a whole number, a number, or a member of the workspace (a mention).
OptionKind = Literal["text", "whole", "number", "member"]
Handler = Callable[["Services", Request], Awaitable[Reply]]


def is_command(text: str) -> bool:
    """Whether a chat message is a command to the bot."""
    return text.lstrip().startswith(COMMAND_PREFIXES)


@dataclass(frozen=True)
class Option:
    """One argument of a command, typed so that platforms with typed options (Discord) can offer it.

    Attributes:
        name: The argument the handler reads (`request.args[name]`) and the option's name everywhere.
        description: What it does, shown beside it (Discord: at most 100 characters).
        kind: What it holds; handlers still check the value (typed text arrives as text).
        choices: The values it may take, offered as a list where a platform can.
        low: Smallest number a platform may let through (whole and number kinds).
        high: Largest number a platform may let through.
        default: What a platform with typed options sends when it is left out; None sends nothing.
        positional: In typed text, bare words fill it (as well as `name:value`).
        rest: In typed text, it takes every bare word left, joined (a prompt); never `name:value`.
    """

    name: str
    description: str
    kind: OptionKind = "text"
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    default: ArgValue | None = None
    positional: bool = False
    rest: bool = False


@dataclass(frozen=True)
class CommandSpec:
    """One command, declared once.

    Attributes:
        name: The command's name, lower case (`forget-me`).
        handler: The coroutine that answers it (`bot.core.handlers`).
        usage: How it is typed, shown by `help` (`train [channel|workspace] [backfill:N]`).
        summary: What it does, shown by `help` after the usage.
        description: One line for platform command menus (Discord: at most 100 characters).
        admin: Only admins may run it.
        public: Its answer is for the whole channel; every other command answers the caller only.
        options: Its arguments, in the order typed text fills the positional ones.
        aliases: Other names typed text accepts (`forget` for `forget-me`).
        cooldown: Default seconds between two uses, by one user and in one channel (`bot.defaults.COOLDOWNS`);
            required, so that no command is declared without one. The settings may override them
            (`CHATSMITH_COOLDOWNS`, and `<name>_user_cooldown`, `<name>_channel_cooldown` for some).
        own_slash: Also a slash command of its own where slash commands are registered by hand (Slack's
            manifest: `/generate`); every command is `/chatsmith <name>` there.
    """

    name: str
    handler: Handler
    usage: str
    summary: str
    description: str
    admin: bool = False
    public: bool = False
    options: tuple[Option, ...] = ()
    aliases: tuple[str, ...] = ()
    cooldown: tuple[float, float] = field(kw_only=True)
    own_slash: bool = False

    def option(self, name: str) -> Option | None:
        """The option called `name` (lower case), or None."""
        return next((option for option in self.options if option.name == name), None)

    def help_line(self) -> str:
        """The command's line in `help`."""
        return f"• `{self.usage}`: {self.summary}" + (" (admins)" if self.admin else "")
