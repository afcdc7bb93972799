"""Output safety: generated (and echoed) text never pings anyone and fits the platform's message limit."""

from __future__ import annotations

import re

from bot.core.platform import message_limit, platform_rules
from bot.core.request import Reply, Request

ZERO_WIDTH_SPACE = "\u200b"
ELLIPSIS = "…"
EMPTY_GENERATION = "The model had nothing to say this time. Try again, or give it a prompt to continue."

# Discord: @everyone/@here and <@id>, <@!id>, <@&role> mentions. A zero-width space after "@" (or "<")
# keeps the text readable and breaks the markup, so the text stays safe even where allowed_mentions is
# not honoured (a forwarded or copied message).
# No word boundary after the name: Discord pings on "@everyone_x" and "@here2" too.
_DISCORD_BROADCAST = re.compile(r"@(everyone|here)", re.IGNORECASE)
_DISCORD_MENTION = re.compile(r"<(@[!&]?\w+)>")
# Discord: a masked link "[Free Nitro](https://evil)" shows only its text; a zero-width space between "]"
# and "(" leaves both halves visible, so an echoed prompt cannot hide where a link goes.
_DISCORD_MASKED_LINK = re.compile(r"\]\s*\(")
# Slack: every <...> is markup (mentions, <!here>, links). Slack asks apps to escape &, < and > in text,
# which turns any markup the model or a prompt produced into plain characters.
_SLACK_BROADCAST = re.compile(r"@(everyone|here|channel)", re.IGNORECASE)
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}…$")


def neutralise_mentions(text: str, platform: str) -> str:
    """Make `text` unable to ping or hide a link: broadcasts, user/role mentions and masked links
    (`[text](url)` on Discord; `<url|text>` on Slack, where every `<...>` is escaped) become inert look-alikes.

    Args:
        text: Any text bound for a chat message.
        platform: A platform name; its markup (`db.platforms`) says what to break ("plain": nothing).

    Returns:
        The text with mention markup broken up.
    """
    markup = platform_rules(platform).markup
    if markup == "discord":
        text = _DISCORD_MENTION.sub(lambda m: f"<{ZERO_WIDTH_SPACE}{m.group(1)}>", text)
        text = _DISCORD_MASKED_LINK.sub(f"]{ZERO_WIDTH_SPACE}(", text)
        return _DISCORD_BROADCAST.sub(lambda m: f"@{ZERO_WIDTH_SPACE}{m.group(1)}", text)
    if markup == "slack":
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return _SLACK_BROADCAST.sub(lambda m: f"@{ZERO_WIDTH_SPACE}{m.group(1)}", text)
    return text


def cut_to_limit(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters at a word boundary, ending with an ellipsis when cut.

    A text without any space in its last stretch is cut mid-word rather than not at all.
    """
    if limit < 2:
        raise ValueError(f"Received limit {limit}, expected at least 2 characters")
    if len(text) <= limit:
        return text
    room = text[: limit - len(ELLIPSIS)]
    boundary = max(room.rfind(" "), room.rfind("\n"))
    # A boundary far back would throw away most of the message; cut mid-word then.
    if boundary >= len(room) // 2:
        room = room[:boundary]
    return room.rstrip() + ELLIPSIS


def make_safe(text: str, platform: str, limit: int | None = None) -> str:
    """Neutralise mentions, then fit the platform limit (escaping can only lengthen the text)."""
    safe = neutralise_mentions(text, platform)
    cut = cut_to_limit(safe, limit or message_limit(platform))
    # A cut through an escape ("&l…") would show as garbage: drop the partial entity.
    return _PARTIAL_ENTITY.sub(ELLIPSIS, cut) if platform_rules(platform).markup == "slack" else cut


def generated_or_friendly(text: str) -> str:
    """The generated text, or a friendly line when the model produced nothing visible."""
    return text if text.strip() else EMPTY_GENERATION


def safe_reply(
    request: Request,
    text: str,
    *,
    ephemeral: bool = False,
    model: str | None = None,
    file: bytes | None = None,
    filename: str | None = None,
) -> Reply:
    """A reply to `request` whose text is safe on its platform (`make_safe`): how every command answers."""
    return Reply(
        make_safe(text, request.platform), file=file, filename=filename, ephemeral=ephemeral, model=model
    )
