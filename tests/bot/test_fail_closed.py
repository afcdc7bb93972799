"""Privacy fails closed: a channel whose privacy Slack cannot tell counts as private, and the lookup is made
only for admitted commands, at most once a minute per channel."""

from __future__ import annotations

from sqlalchemy import select

from bot.core import Services
from chatsmith.settings import Settings
from db.models import Channel
from tests.bot.helpers import run
from tests.bot.test_slack_adapter import chatsmith_slash, http_bot


def stored_privacy(services: Services, channel: str) -> bool | None:
    with services.sessions() as session:
        row = session.scalars(select(Channel).where(Channel.external_id == channel)).one_or_none()
        return None if row is None else row.private


def test_collect_on_is_refused_while_slack_cannot_tell(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with http_bot(bot_settings, services) as (fake, bot, url):
            fake.fail_next("conversations.info", error="channel_not_found")
            answer = await chatsmith_slash(fake, url, "collect on", fake.bob.id)
            assert "cannot tell whether" in answer and "Invite the bot" in answer
            with services.sessions() as session:
                rows = session.scalars(select(Channel).where(Channel.collecting)).all()
                assert rows == []

    run(scenario)


def test_a_new_channel_of_unknown_privacy_is_stored_private(
    bot_settings: Settings, services: Services
) -> None:
    async def scenario() -> None:
        async with http_bot(bot_settings, services) as (fake, bot, url):
            fake.fail_next("conversations.info", error="ratelimited")
            answer = await chatsmith_slash(fake, url, "collect", fake.bob.id)
            assert "is private" in answer
            assert stored_privacy(services, fake.general.id) is True

    run(scenario)


def test_privacy_is_asked_only_for_admitted_commands_and_cached(
    bot_settings: Settings, services: Services
) -> None:
    async def scenario() -> None:
        async with http_bot(bot_settings, services) as (fake, bot, url):
            for _ in range(3):
                answer = await chatsmith_slash(fake, url, "collect on", fake.alice.id)
                assert "is for admins" in answer
            assert fake.calls_to("conversations.info") == []
            await chatsmith_slash(fake, url, "collect", fake.bob.id)
            await chatsmith_slash(fake, url, "collect off", fake.bob.id)
            assert len(fake.calls_to("conversations.info")) == 1
            assert stored_privacy(services, fake.general.id) is False

    run(scenario)
