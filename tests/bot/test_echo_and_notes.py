"""What a member sees never hides a link or names a server path; forget-me ends imitation consent; a
Discord message said to the bot is not kept."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.core import Services
from bot.core.formatting import describe_job, describe_version
from bot.core.safety import make_safe
from chatsmith.settings import Settings
from db.models import ImitationConsent, Message, ModelVersion, TrainingJob
from tests.bot.conftest import Chat
from tests.bot.helpers import eventually, run
from tests.bot.test_discord_adapter import running_bot


def test_masked_links_in_echoed_text_show_where_they_go() -> None:
    discord = make_safe("win [Free Nitro](https://evil.example/x) now", "discord")
    assert "](" not in discord and "Free Nitro" in discord and "https://evil.example/x" in discord
    slack = make_safe("win <https://evil.example/x|Free Nitro> now", "slack")
    assert "<" not in slack and "|Free Nitro" in slack


def test_notes_and_job_errors_name_no_server_path() -> None:
    now = datetime.now(UTC)
    version = ModelVersion(
        note="job 7 from the base model /opt/chatsmith/base-model", metrics={}, corpus_stats={}
    )
    assert "/opt" not in describe_version(version, now) and "base-model" in describe_version(version, now)
    job = TrainingJob(
        status="failed",
        error="PermissionError: [Errno 13] Permission denied: '/data/models/.staging/w1/v3'",
        finished_at=now,
    )
    text = describe_job(job, "#general", None, now)
    assert "/data" not in text and ".staging" not in text and "Permission denied" in text


def test_forget_me_deletes_the_imitation_consent(chat: Chat) -> None:
    ann = chat.user("ann")
    ann.say("/imitate-me on")
    with chat.services.sessions() as session:
        assert [c.user_id for c in session.scalars(select(ImitationConsent))] == ["ann"]
    ann.say("/forget-me")
    with chat.services.sessions() as session:
        assert session.scalars(select(ImitationConsent)).all() == []


def test_a_discord_message_said_to_the_bot_is_not_collected(
    bot_settings: Settings, services: Services
) -> None:
    async def scenario() -> None:
        async with running_bot(bot_settings, services) as (fake, _):
            general, guild = fake.channel.id, fake.guild.id
            opt_in = await fake.send_interaction(guild, general, fake.bob.id, "collect", {"state": "on"})
            await opt_in.wait_for_followup(timeout=10)
            await fake.dispatch_message_create(general, fake.alice.id, f"<@{fake.bot.id}> my secret question")
            await fake.wait_for_call("POST", "/channels/*/messages", timeout=30)
            await fake.dispatch_message_create(general, fake.alice.id, "a plain message")

            def texts() -> list[str]:
                with services.sessions() as session:
                    return list(session.scalars(select(Message.text)))

            await eventually(lambda: "a plain message" in texts(), timeout=10, what="plain message kept")
            assert not any("secret question" in text for text in texts())

    run(scenario)
