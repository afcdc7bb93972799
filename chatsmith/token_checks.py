"""Checks of each platform's settings: token shapes, and what each Slack mode needs; messages never contain
a token.

A platform without checks of its own here is checked by its adapter's `check_config` when its role is asked
for (`chatsmith config check --role NAME`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

from chatsmith.check_report import CheckReport
from chatsmith.settings import secret_text
from db.platforms import SERVED_PLATFORMS

# A Discord bot token is three base64url parts: the bot's user id, a timestamp, an HMAC.
DISCORD_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{18,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}$")
# A Slack signing secret is 32 hexadecimal characters (Basic Information -> App Credentials).
SLACK_SIGNING_SECRET_SHAPE = re.compile(r"^[0-9a-f]{32}$")


def check_discord(settings: Any, report: CheckReport, *, required: bool) -> None:
    """The Discord token has the shape of a bot token (three dot-separated parts)."""
    token = settings.discord_token.get_secret_value() if settings.discord_token else ""
    if not token:
        if required:
            report.problem(
                "DISCORD_TOKEN",
                "not set; set it to the bot token from the Discord developer portal (Bot -> Reset Token)",
            )
        if settings.discord_shard_count is not None and not settings.discord_sharded:
            report.problem(
                "CHATSMITH_DISCORD_SHARD_COUNT",
                "is set but CHATSMITH_DISCORD_SHARDED is not true; set CHATSMITH_DISCORD_SHARDED=true",
            )
        return
    problem = discord_token_problem(token)
    if problem:
        report.problem("DISCORD_TOKEN", problem)
    else:
        report.ok("DISCORD_TOKEN has the shape of a bot token")
    if settings.discord_shard_count is not None and not settings.discord_sharded:
        report.problem(
            "CHATSMITH_DISCORD_SHARD_COUNT",
            "is set but CHATSMITH_DISCORD_SHARDED is not true; set CHATSMITH_DISCORD_SHARDED=true",
        )


def discord_token_problem(token: str) -> str | None:
    """What is wrong with the shape of a Discord bot token, with the fix; None when it looks right.

    The message never contains the token.
    """
    fix = "copy the token again from the Discord developer portal (Bot -> Reset Token)"
    if token != token.strip():
        return "has spaces or a line break around it; remove them"
    if token[:1] in "\"'" and token[-1:] == token[:1]:
        return "is wrapped in quotes; remove them"
    if token.lower().startswith("bot "):
        return "starts with 'Bot '; set only the token (discord.py adds the prefix)"
    if token.isdigit():
        return f"is a number (an application or user id), not the bot token; {fix}"
    if "." not in token and len(token) == 32:
        return f"looks like the OAuth2 client secret, not the bot token; {fix}"
    if not DISCORD_TOKEN_SHAPE.match(token):
        return f"does not look like a Discord bot token (three parts separated by dots); {fix}"
    return None


def check_slack(settings: Any, report: CheckReport, *, required: bool) -> None:
    """Slack tokens have their prefixes, and the mode has what it needs (app token, or signing secret)."""
    bot_token = secret_text(settings.slack_bot_token)
    app_token = secret_text(settings.slack_app_token)
    signing_secret = secret_text(settings.slack_signing_secret)
    used = required or bool(bot_token or app_token or signing_secret) or settings.slack_mode == "http"
    if not used:
        return
    failed = len(report.problems)
    if not bot_token:
        report.problem("SLACK_BOT_TOKEN", "not set; set it to the app's Bot User OAuth Token (xoxb-...)")
    elif bot_token.startswith("xoxp-"):
        report.problem(
            "SLACK_BOT_TOKEN",
            "is a user token (xoxp-); use the Bot User OAuth Token (xoxb-...) from OAuth & Permissions",
        )
    elif not bot_token.startswith("xoxb-"):
        report.problem(
            "SLACK_BOT_TOKEN",
            "does not start with xoxb-; copy the Bot User OAuth Token from OAuth & Permissions",
        )
    if settings.slack_mode == "socket":
        if not app_token:
            report.problem(
                "SLACK_APP_TOKEN",
                "Socket Mode needs an app-level token: set SLACK_APP_TOKEN (xapp-..., scope "
                "connections:write), or CHATSMITH_SLACK_MODE=http with SLACK_SIGNING_SECRET",
            )
        elif not app_token.startswith("xapp-"):
            report.problem(
                "SLACK_APP_TOKEN",
                "does not start with xapp-; create an App-Level Token under Basic Information",
            )
    else:
        if not signing_secret:
            report.problem(
                "SLACK_SIGNING_SECRET",
                "HTTP mode (CHATSMITH_SLACK_MODE=http) needs the signing secret to check requests; set it "
                "from Basic Information -> App Credentials",
            )
        elif not SLACK_SIGNING_SECRET_SHAPE.match(signing_secret):
            report.problem(
                "SLACK_SIGNING_SECRET",
                "is not 32 hexadecimal characters; copy the Signing Secret (not a token) from Basic "
                "Information -> App Credentials",
            )
        if not settings.slack_http_path.startswith("/"):
            report.problem("CHATSMITH_SLACK_HTTP_PATH", "must start with /, e.g. /slack/events")
    if len(report.problems) == failed:
        report.ok(f"Slack settings for {settings.slack_mode} mode")


# Checks that know a platform's token formats, by platform name.
PLATFORM_CHECKS: dict[str, Callable[..., None]] = {"discord": check_discord, "slack": check_slack}


def check_platforms(settings: Any, report: CheckReport, *, required: Collection[str] = ()) -> None:
    """Check every platform's settings; the platforms named in `required` must be fully configured."""
    for name in SERVED_PLATFORMS:
        check = PLATFORM_CHECKS.get(name)
        if check is not None:
            check(settings, report, required=name in required)
        elif name in required:
            _check_with_adapter(settings, report, name)


def _check_with_adapter(settings: Any, report: CheckReport, name: str) -> None:
    """What the adapter itself refuses to start without (its `check_config`), as one problem."""
    from bot.core.errors import ConfigurationError
    from chatsmith.wiring import platform_adapter, platform_config

    try:
        platform_adapter(name).check_config(platform_config(settings, name))
    except ConfigurationError as error:
        report.problem(name.upper(), str(error))
    else:
        report.ok(f"{name} settings")
