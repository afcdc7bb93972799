"""A reply never follows a message past the retention limit, even before the trainer's hourly pass deletes it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.core import Services
from bot.core.handlers.generate import conversation
from bot.core.request import Request
from chatsmith.wiring import bot_services
from db.messages import record_message
from db.models import utcnow
from db.scopes import get_or_create_channel, get_or_create_workspace
from tests.bot.conftest import make_settings


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = bot_services(make_settings(tmp_path / "data", None, retention_days=30), migrate_new_database=True)
    yield built
    built.close()


def test_the_conversation_a_reply_follows_leaves_out_messages_past_the_limit(services: Services) -> None:
    now = utcnow()
    with services.write_sessions.begin() as session:
        channel = get_or_create_channel(
            session, get_or_create_workspace(session, "console", "team"), "general"
        )
        channel.collecting = True
        record_message(session, channel, "m1", "ann", "said 40 days ago", now - timedelta(days=40))
        record_message(session, channel, "m2", "bob", "said 20 days ago", now - timedelta(days=20))
        record_message(session, channel, "m3", "ann", "said today", now - timedelta(minutes=1))
    request = Request("console", "team", "general", "carol", "generate")

    assert conversation(services, request) == ("said 20 days ago", "said today")
    # Imitating a member reads only their messages, within the limit too.
    assert conversation(services, request, author="ann") == ("said today",)
