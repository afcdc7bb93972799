"""Scrubbing personal details out of training text: mentions, emails and URLs become placeholders.

A model trained on raw chat learns people's handles and addresses and repeats them; replacing each with a
fixed placeholder keeps the shape of the sentence ("ask @user, see <url>") without the person.
"""

from __future__ import annotations

import re
from collections.abc import Callable

USER_PLACEHOLDER = "@user"
EMAIL_PLACEHOLDER = "<email>"
URL_PLACEHOLDER = "<url>"
CHANNEL_PLACEHOLDER = "#channel"

# Sentence punctuation glued to the end of a URL belongs to the sentence, not the URL.
_URL_TRAILING = re.compile(r"[.,;:!?)\]]+$")


def _url_keeping_punctuation(match: re.Match[str]) -> str:
    trailing = _URL_TRAILING.search(match.group(0))
    return URL_PLACEHOLDER + (trailing.group(0) if trailing else "")


# Order matters: platform markup first (a Slack link holds a URL, a mention holds digits), then URLs
# (which may contain "@" and so look like emails), then emails (which contain "@name"), then bare @names.
_PATTERNS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # Discord <@123>, <@!123>; Slack <@U123ABC> and <@U123ABC|name>.
    (re.compile(r"<@!?[A-Za-z0-9]+(?:\|[^>]*)?>"), USER_PLACEHOLDER),
    # Discord roles <@&123> and Slack groups <!subteam^S123|@team>: they ping many people.
    (re.compile(r"<@&\d+>|<!subteam\^[A-Za-z0-9]+(?:\|[^>]*)?>"), USER_PLACEHOLDER),
    # Slack broadcasts <!here>, <!channel>, <!everyone>; Discord's bare @everyone and @here.
    (re.compile(r"<!(?:here|channel|everyone)(?:\|[^>]*)?>|@(?:everyone|here)\b"), USER_PLACEHOLDER),
    # Channel links: Discord <#123>, Slack <#C123|general>.
    (re.compile(r"<#[A-Za-z0-9]+(?:\|[^>]*)?>"), CHANNEL_PLACEHOLDER),
    # Slack's link markup <https://x|label> and <mailto:a@b|a@b>, then bare URLs.
    (re.compile(r"<mailto:[^>]+>"), EMAIL_PLACEHOLDER),
    (re.compile(r"<(?:https?|ftp)://[^>]+>"), URL_PLACEHOLDER),
    (
        re.compile(r"\b(?:https?|ftp)://[^\s<>\"']+|\bwww\.[^\s<>\"']+", re.IGNORECASE),
        _url_keeping_punctuation,
    ),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}"), EMAIL_PLACEHOLDER),
    # A bare @name (not inside a word, so "a@b" leftovers and "foo@" are left alone).
    (re.compile(r"(?<![\w@])@[\w.-]*\w"), USER_PLACEHOLDER),
)


def scrub_text(text: str) -> str:
    """Replace user mentions, channel links, emails and URLs in `text` with placeholders.

    Args:
        text: One chat message, in Discord or Slack markup or plain text.

    Returns:
        The message with `<@123>`, `<@U123>`, `@name`, `@everyone` and `<!here>` as "@user", emails as
        "<email>", URLs as "<url>" and channel links as "#channel". Everything else is unchanged.
    """
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
