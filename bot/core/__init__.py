"""The platform-neutral command core: requests in, replies out; adapters translate and render."""

from bot.core.catalog import ADMIN_COMMANDS, COMMANDS
from bot.core.commands import CommandCore
from bot.core.errors import BotError, CommandError, ConfigurationError, user_message
from bot.core.parsing import command_for_slash, parse_command_text
from bot.core.request import (
    ADMINISTRATOR,
    MANAGE_SERVER,
    AdminPolicy,
    HistoryMessage,
    IncomingMessage,
    Reply,
    Request,
)
from bot.core.safety import cut_to_limit, make_safe, neutralise_mentions
from bot.core.services import BotConfig, Services, build_services
from bot.core.serving import AnsweringModel

__all__ = [
    "ADMINISTRATOR",
    "ADMIN_COMMANDS",
    "COMMANDS",
    "MANAGE_SERVER",
    "AdminPolicy",
    "AnsweringModel",
    "BotConfig",
    "BotError",
    "CommandCore",
    "CommandError",
    "ConfigurationError",
    "HistoryMessage",
    "IncomingMessage",
    "Reply",
    "Request",
    "Services",
    "build_services",
    "command_for_slash",
    "cut_to_limit",
    "make_safe",
    "neutralise_mentions",
    "parse_command_text",
    "user_message",
]
