"""`chatsmith console` and `chatsmith bot discord|slack`: talk to the command core locally, or serve it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from chatsmith.errors import EXIT_BAD_INPUT


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

    bot = subparsers.add_parser("bot", help="run the Discord or Slack bot", description=__doc__)
    platforms = bot.add_subparsers(dest="platform", metavar="PLATFORM", required=True)
    discord = platforms.add_parser(
        "discord",
        help="run the Discord bot (DISCORD_TOKEN)",
        description="Connect to Discord with DISCORD_TOKEN and serve slash commands. "
        "CHATSMITH_DISCORD_SHARDED=true runs an AutoShardedClient.",
    )
    discord.set_defaults(handler=run_discord)
    slack = platforms.add_parser(
        "slack",
        help="run the Slack bot (SLACK_BOT_TOKEN, and SLACK_APP_TOKEN or SLACK_SIGNING_SECRET)",
        description="Connect to Slack in Socket Mode (SLACK_BOT_TOKEN, SLACK_APP_TOKEN), or serve the "
        "Events API over HTTP with CHATSMITH_SLACK_MODE=http (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET).",
    )
    slack.set_defaults(handler=run_slack)


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


def run_discord(args: argparse.Namespace) -> int:
    """Run the Discord bot until interrupted."""
    from bot.core import ConfigurationError
    from bot.discord_bot import check_discord_config, run_discord_bot
    from chatsmith.settings import load_settings
    from chatsmith.wiring import bot_services, discord_config

    settings = load_settings()
    config = discord_config(settings)
    try:
        check_discord_config(config)
    except ConfigurationError as error:
        return _fail(str(error))
    services = bot_services(settings)
    try:
        asyncio.run(run_discord_bot(config, services))
    except ConfigurationError as error:
        return _fail(str(error))
    finally:
        services.close()
    return 0


def run_slack(args: argparse.Namespace) -> int:
    """Run the Slack bot until interrupted."""
    from bot.core import ConfigurationError
    from bot.slack_app import check_slack_config, run_slack_bot
    from chatsmith.settings import load_settings
    from chatsmith.wiring import bot_services, slack_config

    settings = load_settings()
    config = slack_config(settings)
    try:
        check_slack_config(config)
    except ConfigurationError as error:
        return _fail(str(error))
    services = bot_services(settings)
    try:
        asyncio.run(run_slack_bot(config, services))
    except ConfigurationError as error:
        return _fail(str(error))
    finally:
        services.close()
    return 0
