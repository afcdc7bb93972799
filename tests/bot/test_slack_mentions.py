"""Slack: a mention that is not a command is answered with the conversation's next message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core import Services
from chatsmith.settings import Settings
from chatsmith.wiring import bot_services
from tests.bot.conftest import make_settings
from tests.bot.helpers import eventually, run
from tests.bot.test_slack_adapter import http_bot
from tests.shared_models import CallAndResponse


@pytest.fixture
def calls_settings(tmp_path: Path, call_and_response: CallAndResponse) -> Settings:
    return make_settings(tmp_path / "data", call_and_response.bundle, generate_temperature=0.3)


@pytest.fixture
def calls_services(calls_settings: Settings) -> Iterator[Services]:
    services = bot_services(calls_settings, migrate_new_database=True)
    yield services
    services.close()


def test_a_mention_that_is_not_a_command_is_answered_in_context(
    calls_settings: Settings, calls_services: Services
) -> None:
    async def scenario() -> None:
        async with http_bot(calls_settings, calls_services) as (fake, _, url):
            for count, (call, response) in enumerate((("knock?", "who"), ("ping?", "pong")), start=1):
                mention = fake.app_mention(call, user=fake.alice.id)
                await fake.post_signed_event(url, fake.event_callback(mention))
                await eventually(
                    lambda n=count: len(fake.calls_to("chat.postMessage")) >= n, timeout=30, what="an answer"
                )
                text = fake.calls_to("chat.postMessage")[count - 1].params["text"]
                assert text.strip() == response, (call, text)

    run(scenario)
