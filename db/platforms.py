"""The chat platforms chatsmith speaks: one entry each, the one list the database, the bots and the CLI read.

It lives in `db` because `db` is the lowest package every other one may import: the database stores a
platform's name with each workspace, the command core reads its message limit and markup, and the CLI
finds the adapter module that `chatsmith bot NAME` runs and the settings that configure it
(`CHATSMITH_<NAME>_...`, one per field of the adapter's config).

Adding a platform is one entry here, one adapter (`bot/<name>_bot.py`, the contract of
`bot.core.platform`), and its settings in `chatsmith.settings`: the checklist is in `docs/packages.md`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from db.errors import DatabaseError

# How a platform writes mentions, which decides how replies are made unable to ping
# (`bot.core.safety.neutralise_mentions`): "discord" (<@id>, @everyone), "slack" (<...> markup, escaped),
# "plain" (no markup to break).
Markup = Literal["discord", "slack", "plain"]


@dataclass(frozen=True)
class PlatformEntry:
    """One chat platform.

    Attributes:
        name: Stored in `workspaces.platform` and used in settings names; lower case, at most 16 characters.
        title: How people write it ("Discord").
        message_limit: Most characters of one reply (longer ones are cut at a word).
        markup: How it writes mentions (see `Markup`).
        adapter: The module `chatsmith bot NAME` runs (it defines `ADAPTER`, a `bot.core.runner.Adapter`);
            None for a platform with no server to connect to (the console has a command of its own).
    """

    name: str
    title: str
    message_limit: int
    markup: Markup
    adapter: str | None = None


PLATFORMS: dict[str, PlatformEntry] = {
    entry.name: entry
    for entry in (
        PlatformEntry("discord", "Discord", 2000, "discord", adapter="bot.discord_bot"),
        # Slack allows 40000 characters, but long walls of text read badly in chat.
        PlatformEntry("slack", "Slack", 3000, "slack", adapter="bot.slack_app"),
        PlatformEntry("console", "the console", 4000, "plain"),
    )
}
PLATFORM_NAMES = tuple(PLATFORMS)
# The platforms `chatsmith bot NAME` serves.
SERVED_PLATFORMS = tuple(name for name, entry in PLATFORMS.items() if entry.adapter is not None)


def platform_entry(name: str) -> PlatformEntry:
    """The entry of platform `name`.

    Raises:
        DatabaseError: `name` is not a platform chatsmith knows.
    """
    entry = PLATFORMS.get(name)
    if entry is None:
        raise DatabaseError(f"unknown platform {name!r}; use one of {', '.join(PLATFORM_NAMES)}")
    return entry
