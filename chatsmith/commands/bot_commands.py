"""`chatsmith console` and `chatsmith bot PLATFORM`: talk to the command core locally, or serve it on a chat
platform (one of `db.platforms.SERVED_PLATFORMS`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from chatsmith.errors import EXIT_BAD_INPUT
from db.platforms import PLATFORMS, SERVED_PLATFORMS


def register(subparsers: Any) -> None:
    """Add the `console` and `bot` commands."""
    console = subparsers.add_parser(
        "console",
        help="chat with the bot in the terminal (no tokens needed)",
        description="A terminal chat with the command core on the configured database (default: SQLite "
        "in CHATSMITH_DATA_DIR, created and migrated on first use). Lines starting with / are commands "
        "(/help lists them); other lines are chat messages, kept when collection is on. Reads standard "
        "input to the end when it is not a terminal.",
    )
    console.add_argument("--workspace", default="console", help="workspace name (default: console)")
    console.add_argument("--channel", default="general", help="channel name (default: general)")
    console.add_argument("--user", default="me", help="your user name (default: me)")
    console.add_argument("--admin", action="store_true", help="hold admin rights (collect, train, ...)")
    console.set_defaults(handler=run_console)

    bot = subparsers.add_parser(
        "bot",
        help="run the bot on a chat platform",
        description="Connect to a chat platform with its tokens and serve chatsmith's commands until SIGTERM "
        "or Ctrl-C, which let running commands finish (or tell their callers to try again).",
    )
    platforms = bot.add_subparsers(dest="platform", metavar="PLATFORM", required=True)
    for name in SERVED_PLATFORMS:
        title = PLATFORMS[name].title
        tokens = ", ".join(_token_variables(name))
        parser = platforms.add_parser(
            name,
            help=f"run the {title} bot ({tokens})",
            description=f"Connect to {title} and serve chatsmith's commands. Its settings are the variables "
            f"of the {name} group of `chatsmith config show`; `chatsmith config check --role {name}` checks them.",
        )
        parser.set_defaults(handler=run_bot)


def _token_variables(platform: str) -> list[str]:
    """The variables of a platform's secrets (its tokens), as its docs name them."""
    from chatsmith.settings import Settings

    prefix = f"{platform}_"
    return [
        Settings.env_names(name)[0]
        for name in Settings.model_fields
        if name.startswith(prefix) and name in Settings.secret_fields()
    ]


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run_console(args: argparse.Namespace) -> int:
    """Run the console chat until the end of input."""
    from bot.console import ConsoleChat
    from bot.core import CommandCore
    from chatsmith.settings import load_settings
    from chatsmith.wiring import bot_services

    settings = load_settings()
    # A brand-new embedded database is created on the spot: the console must work on a fresh clone.
    services = bot_services(settings, migrate_new_database=True)
    try:
        chat = ConsoleChat(
            CommandCore(services),
            args.workspace,
            args.channel,
            args.user,
            admin=args.admin,
            files_dir=settings.data_dir / "console-files",
        )
        asyncio.run(chat.run())
    finally:
        services.close()
    return 0


def run_bot(args: argparse.Namespace) -> int:
    """Run platform `args.platform`'s bot until SIGTERM or SIGINT stops it (`bot.core.runner`)."""
    from bot.core import ConfigurationError
    from bot.core.runner import run_adapter
    from chatsmith.settings import load_settings
    from chatsmith.wiring import bot_services, platform_adapter, platform_config

    settings = load_settings()
    adapter = platform_adapter(args.platform)
    config = platform_config(settings, args.platform)
    try:
        adapter.check_config(config)
    except ConfigurationError as error:
        return _fail(str(error))
    services = bot_services(settings)
    try:
        asyncio.run(run_adapter(adapter, config, services))
    except ConfigurationError as error:
        return _fail(str(error))
    finally:
        services.close()
    return 0
