"""`filter`: the workspace's output filter, shown and set by admins.

filter                      show the policy, the workspace's own words and what the filter did
filter off|mask|block       set what happens to profanity in replies (slurs are always blocked)
filter add WORD [WORD ...]  words of the workspace's own to mask (or block, under `block`)
filter remove WORD [...]    take own words off again
"""

from __future__ import annotations

from bot.core.errors import CommandError
from bot.core.places import channel_row
from bot.core.request import Reply, Request
from bot.core.safety import safe_reply
from bot.core.services import Services
from db.filters import MAX_WORD_CHARS, FilterSettings, change_words, filter_settings, set_policy
from db.models import FILTER_POLICIES

USAGE = "`filter`, `filter off|mask|block`, `filter add WORD ...` or `filter remove WORD ...`"
POLICY_MEANING = {
    "off": "profanity is left as the model wrote it",
    "mask": "profanity is masked (first letter and stars)",
    "block": "a reply with profanity is written again",
}


def _words_shown(words: tuple[str, ...]) -> str:
    # Own words are shown masked like in replies: the list may hold words nobody wants to read in chat.
    if not words:
        return "none"
    return ", ".join(word[0] + "*" * (len(word) - 1) for word in words)


def describe(services: Services, request: Request, settings: FilterSettings) -> str:
    """The `filter` answer: policy, own words, and the counts."""
    return "\n".join(
        [
            f"Profanity policy here: {settings.policy} ({POLICY_MEANING[settings.policy]}). "
            "Slurs are always blocked, and emails, phone and card numbers, keys and tokens in links are masked.",
            f"Words of this workspace's own ({len(settings.words)}): {_words_shown(settings.words)}.",
            services.filter_stats.describe(request.platform, request.workspace, settings.policy),
            f"Change it with {USAGE}.",
        ]
    )


def _parse(request: Request) -> tuple[str, tuple[str, ...]]:
    """The action and its words; words are separated by spaces or commas."""
    action = str(request.args.get("action") or "show").lower()
    words = str(request.args.get("words") or "").replace(",", " ").split()
    return action, tuple(words)


async def filter_command(services: Services, request: Request) -> Reply:
    """Show or change the workspace's output filter (admins)."""
    action, words = _parse(request)
    if action in ("show", ""):
        settings = await services.run_db(_settings, services, request)
        return safe_reply(request, describe(services, request, settings), ephemeral=True)
    if action in FILTER_POLICIES:
        if words:
            raise CommandError(f"`filter {action}` takes no words; to add words use `filter add WORD ...`")

        def change(services: Services, request: Request) -> FilterSettings:
            with services.write_sessions.begin() as session:
                channel = channel_row(session, request, services)
                session.flush()
                return set_policy(session, channel.workspace_id, action, by=request.user)

    elif action in ("add", "remove"):
        if not words:
            raise CommandError(f"`filter {action}` needs words, e.g. `filter {action} WORD`")
        too_long = [word for word in words if len(word) > MAX_WORD_CHARS]
        if too_long:
            raise CommandError(
                f"words are at most {MAX_WORD_CHARS} characters; shorten or leave out the long one"
            )

        def change(services: Services, request: Request) -> FilterSettings:
            with services.write_sessions.begin() as session:
                channel = channel_row(session, request, services)
                session.flush()
                if action == "add":
                    return change_words(session, channel.workspace_id, add=words, by=request.user)
                return change_words(session, channel.workspace_id, remove=words, by=request.user)

    else:
        raise CommandError(f"Unknown filter action `{action}`; use {USAGE}")
    settings = await services.run_db(change, services, request)
    services.filter_settings.put((request.platform, request.workspace), settings)
    return safe_reply(request, describe(services, request, settings), ephemeral=True)


def _settings(services: Services, request: Request) -> FilterSettings:
    with services.sessions() as session:
        return filter_settings(session, request.platform, request.workspace)
