"""The Slack adapter with the real slack-bolt AsyncApp against the fake Slack (HTTP mode and Socket Mode)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest
from pydantic import SecretStr
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from sqlalchemy import select

from bot.core import AdminPolicy, ConfigurationError, Services
from bot.core.catalog import COMMANDS
from bot.core.safety import EMPTY_GENERATION
from bot.slack_app import ADMIN_CACHE_S, SlackBot, build_slack_app, check_slack_config, serve_http
from chatsmith.settings import Settings
from chatsmith.wiring import slack_config
from db.models import Message, UserOptOut
from tests.bot.conftest import CHANNEL_LINES
from tests.bot.helpers import (
    LOOP_BLOCKED_S,
    LoopLagProbe,
    answers,
    eventually,
    record_commands,
    run,
    run_trainer_once,
)
from tests.bot.test_core_units import MENTION_BOMB
from tests.fakes.slack import FakeSlack

PINGS = ("<!everyone>", "<!here>", "<!channel>", "<@U")


def slack_settings(settings: Settings, services: Services, fake: FakeSlack) -> Settings:
    """Settings pointing at the fake; bob is an admin by user id (Slack's users.info says nobody is)."""
    services.config = replace(services.config, policy=AdminPolicy(user_ids=frozenset({fake.bob.id})))
    return settings.model_copy(
        update={
            "slack_bot_token": SecretStr(FakeSlack.BOT_TOKEN),
            "slack_app_token": SecretStr(FakeSlack.APP_TOKEN),
            "slack_signing_secret": SecretStr(FakeSlack.SIGNING_SECRET),
            "slack_api_url": fake.api_base_url,
            "admin_user_ids": [fake.bob.id],
        }
    )


def message_event(fake: FakeSlack, text: str, user: str) -> dict:
    # FakeSlack.message() leaves out the event's "type" (a gap in the fake), which Slack always sends.
    return {**fake.message(text, user=user), "type": "message"}


def stored_messages(services: Services) -> dict[str, Message]:
    with services.sessions() as session:
        return {m.platform_message_id: m for m in session.scalars(select(Message))}


async def chatsmith_slash(fake: FakeSlack, url: str, text: str, user: str) -> str:
    """Send `/chatsmith <text>` as `user` to the bot at `url`; the text of its answer."""
    response_url = fake.new_response_url()
    form = fake.slash_command_form("/chatsmith", text, user=user, response_url=response_url)
    assert (await fake.post_signed_slash_command(url, form)).status == 200
    response_id = response_url.rsplit("/", 1)[1]
    answer = await fake.wait_for_response_post(lambda p: p.response_id == response_id, timeout=10)
    return answer.text or ""


@asynccontextmanager
async def http_bot(settings: Settings, services: Services) -> AsyncIterator[tuple[FakeSlack, SlackBot, str]]:
    """The fake Slack and the bot served in HTTP mode on 127.0.0.1; yields the request URL."""
    async with FakeSlack() as fake:
        bot = build_slack_app(slack_config(slack_settings(settings, services, fake)), services)
        runner = await serve_http(bot, "127.0.0.1", 0)
        try:
            port = runner.addresses[0][1]
            yield fake, bot, f"http://127.0.0.1:{port}/slack/events"
            assert bot.errors == [], f"listener errors: {bot.errors!r}"
        finally:
            await runner.cleanup()


@asynccontextmanager
async def socket_bot(settings: Settings, services: Services) -> AsyncIterator[tuple[FakeSlack, SlackBot]]:
    """The fake Slack and the bot connected over Socket Mode."""
    async with FakeSlack() as fake:
        bot = build_slack_app(slack_config(slack_settings(settings, services, fake)), services)
        handler = AsyncSocketModeHandler(bot.app, FakeSlack.APP_TOKEN)
        await handler.connect_async()
        try:
            await fake.wait_for_socket()
            yield fake, bot
            assert bot.errors == [], f"listener errors: {bot.errors!r}"
        finally:
            await handler.client.close()


def test_missing_tokens_name_the_variable(bot_settings: Settings) -> None:
    with pytest.raises(ConfigurationError, match="SLACK_BOT_TOKEN"):
        check_slack_config(slack_config(bot_settings))
    with pytest.raises(ConfigurationError, match="SLACK_APP_TOKEN"):
        check_slack_config(
            slack_config(bot_settings.model_copy(update={"slack_bot_token": SecretStr("xoxb-1")}))
        )
    http = bot_settings.model_copy(update={"slack_bot_token": SecretStr("xoxb-1"), "slack_mode": "http"})
    with pytest.raises(ConfigurationError, match="SLACK_SIGNING_SECRET"):
        check_slack_config(slack_config(http))


def test_mention_generate_and_non_admin_refused_slash_train(
    bot_settings: Settings, services: Services
) -> None:
    async def scenario() -> None:
        async with http_bot(bot_settings, services) as (fake, bot, url):
            result = await fake.post_signed_event(
                url, fake.event_callback(fake.app_mention("generate to be"))
            )
            assert result.status == 200 and result.ack_seconds < 3
            post = await fake.wait_for_call("chat.postMessage", timeout=30)
            assert answers(post.params["text"], "to be") and post.params["channel"] == fake.general.id

            form = fake.slash_command_form("/train", "", user=fake.alice.id)
            result = await fake.post_signed_slash_command(url, form)
            assert result.status == 200 and result.ack_seconds < 3
            refusal = await fake.wait_for_response_post(timeout=10)
            assert "is for admins" in refusal.text and refusal.body["response_type"] == "ephemeral"
            assert [c.params["user"] for c in fake.calls_to("users.info")] == [fake.alice.id]

    run(scenario)


@pytest.mark.parametrize("tamper", ["forge", "stale"])
def test_bad_signature_is_refused_and_nothing_collected(
    tamper: str, bot_settings: Settings, services: Services
) -> None:
    async def scenario() -> None:
        async with http_bot(bot_settings, services) as (fake, bot, url):
            opt_in = fake.slash_command_form("/chatsmith", "collect on", user=fake.bob.id)
            assert (await fake.post_signed_slash_command(url, opt_in)).status == 200
            assert "Collection is on" in (await fake.wait_for_response_post(timeout=10)).text
            bad = fake.event_callback(message_event(fake, "forged words", fake.alice.id))
            result = await fake.post_signed_event(url, bad, forge=tamper == "forge", stale=tamper == "stale")
            assert result.status == 401
            good = fake.event_callback(message_event(fake, "genuine words", fake.alice.id))
            assert (await fake.post_signed_event(url, good)).status == 200
            await eventually(lambda: len(stored_messages(services)) == 1, what="the genuine message")
            await asyncio.sleep(0.2)
            assert [m.text for m in stored_messages(services).values()] == ["genuine words"]

    run(scenario)


def test_collect_edit_delete_backfill_train_and_serve(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with socket_bot(bot_settings, services) as (fake, bot):
            general = fake.general.id
            old = fake.add_history(general, CHANNEL_LINES[:30], user=fake.alice.id)
            fake.add_message(general, "a post by another app", user=fake.other_bot.id)

            envelope = await fake.send_socket_slash_command(
                "/chatsmith",
                "collect on",
                form=fake.slash_command_form("/chatsmith", "collect on", user=fake.bob.id),
            )
            await envelope.wait_for_ack()
            assert "Collection is on in #" in (await fake.wait_for_response_post(timeout=10)).text

            sent = []
            for line in CHANNEL_LINES[30:36]:
                event = message_event(fake, line, fake.alice.id)
                fake.add_message(general, line, user=fake.alice.id, ts=event["ts"])
                sent.append(event)
                await fake.send_socket_event(event)
            await fake.send_socket_event(message_event(fake, "a bot says hi", fake.other_bot.id))
            await fake.send_socket_event(fake.app_mention("help", user=fake.alice.id) | {"type": "message"})
            await fake.send_socket_event(
                fake.message_changed(general, sent[0]["ts"], "an edited line about the cat")
            )
            await fake.send_socket_event(fake.message_deleted(general, sent[1]["ts"]))
            await eventually(
                lambda: (
                    len(stored_messages(services)) == 6 and stored_messages(services)[sent[1]["ts"]].deleted
                ),
                what="collection",
            )
            rows = stored_messages(services)
            assert rows[sent[0]["ts"]].text == "an edited line about the cat"
            assert {m.author_id for m in rows.values()} == {fake.alice.id}

            mention = await fake.send_socket_event(fake.app_mention("train backfill:100", user=fake.bob.id))
            await mention.wait_for_ack()
            done = await fake.wait_for_call(
                "chat.postEphemeral", lambda c: "Training queued" in c.params["text"], timeout=20
            )
            assert "Training queued for #" in done.params["text"] and "on 35 messages" in done.params["text"]
            assert "added 30 new ones" in done.params["text"], done.params["text"]
            assert done.params["user"] == fake.bob.id
            assert fake.calls_to("chat.update") or fake.calls_to("chat.postMessage")  # progress was shown
            assert {m["ts"] for m in old} <= set(stored_messages(services))
            pages = fake.calls_to("conversations.history")
            assert pages and pages[0].params["channel"] == general

            await run_trainer_once()

            status = await fake.send_socket_slash_command(
                "/chatsmith",
                "status",
                form=fake.slash_command_form("/chatsmith", "status", user=fake.alice.id),
            )
            await status.wait_for_ack()
            answer = await fake.wait_for_response_post(lambda p: "answers" in (p.text or ""), timeout=10)
            assert "the channel model v1 answers" in answer.text

            generate = await fake.send_socket_slash_command(
                "/generate",
                "the cat",
                form=fake.slash_command_form("/generate", "the cat", user=fake.alice.id),
            )
            assert (await generate.wait_for_ack())["envelope_id"] == generate.envelope_id
            reply = await fake.wait_for_response_post(lambda p: answers(p.text or "", "the cat"), timeout=30)
            assert reply.body["response_type"] == "in_channel"
            assert any("channel-" in str(path) for path in services.models.loaded_paths())

    run(scenario, timeout=180)


def test_forget_me_and_mention_bomb(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with http_bot(bot_settings, services) as (fake, bot, url):
            await fake.post_signed_slash_command(
                url, fake.slash_command_form("/chatsmith", "collect on", user=fake.bob.id)
            )
            await fake.wait_for_response_post(timeout=10)
            for text, user in (
                ("alice one", fake.alice.id),
                ("alice two", fake.alice.id),
                ("bob one", fake.bob.id),
            ):
                await fake.post_signed_event(url, fake.event_callback(message_event(fake, text, user)))
            await eventually(lambda: len(stored_messages(services)) == 3, what="collection")

            form = fake.slash_command_form("/chatsmith", "forget-me", user=fake.alice.id)
            await fake.post_signed_slash_command(url, form)
            post = await fake.wait_for_response_post(lambda p: "Deleted" in (p.text or ""), timeout=10)
            assert "Deleted 2 of your messages" in post.text
            assert [m.author_id for m in stored_messages(services).values()] == [fake.bob.id]
            with services.sessions() as session:
                assert session.scalars(select(UserOptOut.user_id)).all() == [fake.alice.id]

            bomb = fake.app_mention(f"generate {MENTION_BOMB}", user=fake.alice.id)
            await fake.post_signed_event(url, fake.event_callback(bomb))
            reply = await fake.wait_for_call("chat.postMessage", timeout=30)
            assert all(markup not in reply.params["text"] for markup in PINGS), reply.params["text"]
            assert "@here" not in reply.params["text"] and "@everyone" not in reply.params["text"]

    run(scenario)


def test_fifty_concurrent_generates_are_acked_in_time(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with socket_bot(bot_settings, services) as (fake, bot):
            warm = await fake.send_socket_slash_command("/generate", "warm up")
            await warm.wait_for_ack()
            await fake.wait_for_response_post(timeout=30)
            async with LoopLagProbe() as probe:
                envelopes = [
                    await fake.send_socket_slash_command(
                        "/generate",
                        f"req{i:02d} length:16",
                        form=fake.slash_command_form("/generate", f"req{i:02d} length:16"),
                    )
                    for i in range(50)
                ]
                await asyncio.gather(*(e.wait_for_ack(timeout=10) for e in envelopes))
                await eventually(lambda: len(fake.response_posts) == 51, timeout=60, what="50 answers")
            assert all(e.ack_seconds is not None and e.ack_seconds < 3.0 for e in envelopes)
            texts = [p.text or "" for p in list(fake.response_posts)[1:]]
            answered = sorted(t[:5] for t in texts if t != EMPTY_GENERATION)
            assert len(texts) == 50 and set(answered) <= {f"req{i:02d}" for i in range(50)}
            assert len(set(answered)) == len(answered) == 50 - texts.count(EMPTY_GENERATION)
            assert probe.worst < LOOP_BLOCKED_S, f"event loop blocked for {probe.worst * 1000:.0f} ms"

    run(scenario, timeout=120)


def test_every_declared_command_reaches_the_core(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with http_bot(bot_settings, services) as (fake, bot, url):
            ran = record_commands(bot.core)
            for name in COMMANDS:
                assert await chatsmith_slash(fake, url, name, fake.bob.id) == f"ran {name}"
            assert ran == list(COMMANDS)

    run(scenario)


def test_manifest_matches_the_adapter() -> None:
    from pathlib import Path

    import yaml

    from bot.slack_app import SLASH_COMMANDS

    manifest = yaml.safe_load((Path(__file__).parents[2] / "bot" / "slack_manifest.yaml").read_text())
    assert sorted(c["command"] for c in manifest["features"]["slash_commands"]) == sorted(SLASH_COMMANDS)
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"app_mention", "message.channels"} <= set(events)
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {
        "app_mentions:read",
        "channels:history",
        "chat:write",
        "commands",
        "files:write",
        "users:read",
        "channels:read",  # whether a channel is private
        "groups:read",
        "im:write",  # my-data goes to a direct message
    } <= scopes


def test_replies_are_masked(bot_settings: Settings, services: Services) -> None:
    from tests.bot.test_discord_adapter import MASKED_PROMPT, UNMASKED_PROMPT

    async def scenario() -> None:
        async with http_bot(bot_settings, services) as (fake, bot, url):
            mention = fake.app_mention(f"generate {UNMASKED_PROMPT}", user=fake.alice.id)
            await fake.post_signed_event(url, fake.event_callback(mention))
            post = await fake.wait_for_call("chat.postMessage", timeout=30)
            assert post.params["text"].startswith(MASKED_PROMPT)
            assert "ann@example.org" not in post.params["text"]

    run(scenario)


def test_only_admins_of_this_workspace_get_admin_rights_and_not_for_long(
    bot_settings: Settings, services: Services
) -> None:
    async def scenario() -> None:
        async with http_bot(bot_settings, services) as (fake, bot, url):
            outsider = fake.add_user("U0OUTSIDE1", "olga", is_admin=True, home_team_id="T0OTHERORG")
            owner = fake.add_user("U0OWNER001", "oscar", is_admin=True)

            async def collect(user: str) -> str:
                return await chatsmith_slash(fake, url, "collect on", user)

            # An admin of another organisation, met in a shared channel, is nobody's admin here.
            assert "is for admins" in await collect(outsider.id)
            assert "Collection is on" in await collect(owner.id)

            # Demoted: the cached answer lasts a minute at most.
            owner.is_admin = False
            assert "Collection" in await collect(owner.id)  # still cached
            assert ADMIN_CACHE_S <= 60
            for key, (cached_at, admin) in list(bot._admins.items()):
                bot._admins[key] = (cached_at - ADMIN_CACHE_S - 1, admin)  # a minute later
            assert "is for admins" in await collect(owner.id)

    run(scenario)


def test_a_retried_delivery_is_answered_once(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with http_bot(bot_settings, services) as (fake, bot, url):
            delivery = fake.event_callback(fake.app_mention("help", user=fake.alice.id))
            assert (await fake.post_signed_event(url, delivery)).status == 200
            await fake.wait_for_call("chat.postEphemeral", timeout=10)
            assert (await fake.post_signed_event(url, delivery, retry=1)).status == 200
            await asyncio.sleep(0.5)
            assert len(fake.calls_to("chat.postEphemeral")) == 1

    run(scenario)


def test_a_private_slack_channel_is_known_as_private(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with http_bot(bot_settings, services) as (fake, bot, url):
            secret = fake.add_channel("C0SECRET01", "secret", private=True)
            form = fake.slash_command_form("/chatsmith", "collect on", user=fake.bob.id, channel=secret.id)
            assert (await fake.post_signed_slash_command(url, form)).status == 200
            answer = await fake.wait_for_response_post(timeout=10)
            assert "is private: its messages train only its own model" in (answer.text or "")

    run(scenario)


def test_backfill_skips_commands_to_the_bot_as_live_collection_does(
    bot_settings: Settings, services: Services
) -> None:
    async def scenario() -> None:
        async with http_bot(bot_settings, services) as (fake, bot, url):
            general = fake.general.id
            fake.add_history(general, CHANNEL_LINES[:6], user=fake.alice.id)
            fake.add_history(general, [f"<@{FakeSlack.BOT_USER_ID}> generate the cat"], user=fake.alice.id)
            form = fake.slash_command_form("/chatsmith", "collect on", user=fake.bob.id)
            assert (await fake.post_signed_slash_command(url, form)).status == 200
            # Slack acknowledges a command before the bot has run it: two sent back to back may run in
            # either order, so the backfill waits for the opt-in, as a person would.
            assert "Collection is on" in ((await fake.wait_for_response_post(timeout=10)).text or "")
            form = fake.slash_command_form("/train", "backfill:50", user=fake.bob.id)
            assert (await fake.post_signed_slash_command(url, form)).status == 200
            done = await fake.wait_for_response_post(lambda p: "Backfill read" in (p.text or ""), timeout=20)
            assert "added 6 new ones" in (done.text or ""), done.text
            assert sorted(m.text for m in stored_messages(services).values()) == sorted(CHANNEL_LINES[:6])

    run(scenario)


def test_my_data_goes_to_the_callers_direct_messages(bot_settings: Settings, services: Services) -> None:
    async def scenario() -> None:
        async with http_bot(bot_settings, services) as (fake, bot, url):
            form = fake.slash_command_form("/chatsmith", "collect on", user=fake.bob.id)
            assert (await fake.post_signed_slash_command(url, form)).status == 200
            await fake.wait_for_response_post(timeout=10)
            event = fake.event_callback(message_event(fake, "alice's only words", fake.alice.id))
            assert (await fake.post_signed_event(url, event)).status == 200
            await eventually(lambda: len(stored_messages(services)) == 1, what="collection")

            form = fake.slash_command_form("/chatsmith", "my-data", user=fake.alice.id)
            assert (await fake.post_signed_slash_command(url, form)).status == 200
            await fake.wait_for_call("files.completeUploadExternal", timeout=10)
            [dm] = [c for c in fake.channels.values() if c.id.startswith("D")]
            [shared] = [m for m in dm.messages if m.get("files")]
            assert re.fullmatch(r"chatsmith-my-data-\d{8}-\d{6}\.json", shared["files"][0]["name"])
            assert all(not m.get("files") for m in fake.messages_in(fake.general.id))

    run(scenario)
