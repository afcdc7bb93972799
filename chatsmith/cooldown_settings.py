"""`CHATSMITH_COOLDOWNS`: per-command cooldowns written as text, `my-data:300/0, status:10/2`."""

from __future__ import annotations

from bot import defaults as bot_defaults

EXAMPLE = "my-data:300/0, status:10/2"


def parse_cooldowns(text: str) -> dict[str, tuple[float, float]]:
    """Seconds per user and per channel for each command named in `text` (`command:user/channel`, comma
    separated); an empty text names none.

    Raises:
        ValueError: An entry is not `command:user/channel` with two numbers of at least 0, or names a
            command chatsmith does not have; the message names the entry and the fix.
    """
    waits: dict[str, tuple[float, float]] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        command, _, seconds = entry.partition(":")
        command = command.strip().lower()
        if command not in bot_defaults.COOLDOWNS:
            known = ", ".join(bot_defaults.COOLDOWNS)
            raise ValueError(f"received {entry!r}: {command!r} is not a command; expected one of {known}")
        user, slash, channel = seconds.partition("/")
        try:
            pair = (float(user), float(channel))
        except ValueError:
            pair = (-1.0, -1.0)
        if not slash or min(pair) < 0:
            raise ValueError(
                f"received {entry!r}, expected COMMAND:USER_SECONDS/CHANNEL_SECONDS (e.g. {EXAMPLE})"
            )
        waits[command] = pair
    return waits
