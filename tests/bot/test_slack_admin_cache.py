"""Slack: admin answers from users.info are dropped once past their time, not kept for every user ever seen."""

from __future__ import annotations

from bot.core import Services
from bot.slack_app import ADMIN_CACHE_S
from chatsmith.settings import Settings
from tests.bot.helpers import run
from tests.bot.test_slack_adapter import chatsmith_slash, http_bot


def test_expired_admin_answers_are_pruned(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with http_bot(bot_settings, services) as (fake, bot, url):
            users = [fake.add_user(f"U0PRUNE{i:03d}", f"user{i}") for i in range(5)]

            async def ask(user: str) -> None:
                await chatsmith_slash(fake, url, "collect on", user)

            for user in users[:4]:
                await ask(user.id)
            assert bot.cached_admin_answers == 4
            for key, (cached_at, admin) in list(bot._admins.items()):
                bot._admins[key] = (cached_at - ADMIN_CACHE_S - 1, admin)  # a minute later
            bot._next_admin_prune = 0.0
            await ask(users[4].id)
            assert bot.cached_admin_answers == 1

    run(scenario)
