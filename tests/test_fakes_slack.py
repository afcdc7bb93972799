"""The fake Slack server against the real slack-bolt AsyncApp and slack-sdk clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import FakeSlack

T = TypeVar("T")


def run(scenario: Callable[[], Awaitable[T]], timeout: float = 15.0) -> T:
    """Run one async scenario on a fresh event loop, bounded so a hang fails instead of stalling CI."""

    async def bounded() -> T:
        return await asyncio.wait_for(scenario(), timeout)

    return asyncio.run(bounded())


@dataclass
class EchoApp:
    """A small Bolt app shaped like the project's adapter, plus what its listeners saw."""

    app: AsyncApp
    client: AsyncWebClient
    errors: list[Exception] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


def build_app(fake: FakeSlack) -> EchoApp:
    client = AsyncWebClient(token=FakeSlack.BOT_TOKEN, base_url=fake.api_base_url)
    app = AsyncApp(client=client, signing_secret=FakeSlack.SIGNING_SECRET)
    echo = EchoApp(app, client)

    @app.error
    async def record_error(error: Exception) -> None:
        echo.errors.append(error)

    @app.event("app_mention")
    async def mention(event: dict[str, Any], say: Any) -> None:
        await say(text=f"you said: {event['text']}", thread_ts=event["ts"])

    @app.event({"type": "message", "subtype": "message_changed"})
    async def changed(event: dict[str, Any]) -> None:
        echo.events.append(event)

    @app.event({"type": "message", "subtype": "message_deleted"})
    async def deleted(event: dict[str, Any]) -> None:
        echo.events.append(event)

    @app.command("/ask")
    async def ask(ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack(text="thinking")
        await respond(text=f"answer: {command['text']}")

    return echo


@asynccontextmanager
async def served(app: AsyncApp) -> AsyncIterator[str]:
    """Serve a Bolt app over HTTP on 127.0.0.1 (App.start() would bind 0.0.0.0); yield its events URL."""
    runner = web.AppRunner(app.web_app(path="/slack/events"), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    finally:
        await runner.cleanup()


def test_signed_app_mention_posts_a_reply() -> None:
    async def scenario() -> None:
        async with FakeSlack() as fake:
            echo = build_app(fake)
            async with served(echo.app) as url:
                mention = fake.app_mention("what's up?")
                result = await fake.post_signed_event(url, fake.event_callback(mention))
                assert result.status == 200
                assert result.ack_seconds < 1
                call = await fake.wait_for_call("chat.postMessage")
                assert call.params["channel"] == fake.general.id
                assert call.params["text"] == f"you said: <@{FakeSlack.BOT_USER_ID}> what's up?"
                assert call.params["thread_ts"] == mention["ts"]
                assert call.token == FakeSlack.BOT_TOKEN
                assert call.ok
                assert echo.errors == []

    run(scenario)


@pytest.mark.parametrize("tamper", ["forge", "stale"])
def test_bad_signature_is_refused_and_nothing_posted(tamper: str) -> None:
    async def scenario() -> None:
        async with FakeSlack() as fake:
            echo = build_app(fake)
            async with served(echo.app) as url:
                bad = fake.event_callback(fake.app_mention("bad"))
                result = await fake.post_signed_event(
                    url, bad, forge=tamper == "forge", stale=tamper == "stale"
                )
                assert result.status == 401
                # A good delivery after the bad one: once its reply is seen, the bad one had its chance.
                await fake.post_signed_event(url, fake.event_callback(fake.app_mention("good")))
                await fake.wait_for_call("chat.postMessage")
                texts = [c.params["text"] for c in fake.calls_to("chat.postMessage")]
                assert texts == [f"you said: <@{FakeSlack.BOT_USER_ID}> good"]

    run(scenario)


def test_signed_slash_command_acks_and_responds() -> None:
    async def scenario() -> None:
        async with FakeSlack() as fake:
            echo = build_app(fake)
            async with served(echo.app) as url:
                form = fake.slash_command_form("/ask", "why is the sky blue")
                result = await fake.post_signed_slash_command(url, form)
                assert result.status == 200
                assert result.body == "thinking"
                post = await fake.wait_for_response_post()
                assert form["response_url"].endswith(post.response_id)
                assert post.text == "answer: why is the sky blue"
                assert echo.errors == []

    run(scenario)


def test_socket_mode_envelopes_are_acked_and_handled() -> None:
    async def scenario() -> None:
        async with FakeSlack() as fake:
            echo = build_app(fake)
            handler = AsyncSocketModeHandler(echo.app, FakeSlack.APP_TOKEN)
            await handler.connect_async()
            try:
                await fake.wait_for_socket()
                opened = fake.calls_to("apps.connections.open")
                assert [c.token for c in opened] == [FakeSlack.APP_TOKEN]

                envelope = await fake.send_socket_event(fake.app_mention("over the socket"))
                assert await envelope.wait_for_ack() == {"envelope_id": envelope.envelope_id}
                call = await fake.wait_for_call("chat.postMessage")
                assert call.params["text"] == f"you said: <@{FakeSlack.BOT_USER_ID}> over the socket"

                command = await fake.send_socket_slash_command("/ask", "ping")
                ack = await command.wait_for_ack()
                assert ack["payload"] == {"text": "thinking"}
                post = await fake.wait_for_response_post()
                assert post.text == "answer: ping"

                stored = fake.add_message(fake.general.id, "first draft", user=fake.alice.id)
                await fake.send_socket_event(fake.message_changed(fake.general.id, stored["ts"], "final"))
                await fake.send_socket_event(fake.message_deleted(fake.general.id, stored["ts"]))
                for _ in range(200):
                    if len(echo.events) == 2:
                        break
                    await asyncio.sleep(0.01)
                assert [e["subtype"] for e in echo.events] == ["message_changed", "message_deleted"]
                assert echo.events[0]["message"]["text"] == "final"
                assert echo.events[1]["deleted_ts"] == stored["ts"]
                assert stored not in fake.messages_in(fake.general.id)
                assert echo.errors == []
            finally:
                await handler.close_async()

    run(scenario)


def test_conversations_history_pages_by_cursor() -> None:
    async def scenario() -> None:
        async with FakeSlack() as fake:
            texts = [f"line {i}" for i in range(25)]
            fake.add_history(fake.general.id, texts, user=fake.bob.id)
            client = AsyncWebClient(token=FakeSlack.BOT_TOKEN, base_url=fake.api_base_url)
            seen: list[str] = []
            cursor: str | None = None
            pages = 0
            while True:
                response = await client.conversations_history(
                    channel=fake.general.id, limit=10, cursor=cursor
                )
                seen += [m["text"] for m in response["messages"]]
                pages += 1
                cursor = response["response_metadata"]["next_cursor"]
                assert response["has_more"] == bool(cursor)
                if not cursor:
                    break
            assert pages == 3
            assert seen == list(reversed(texts))

            info = await client.conversations_info(channel=fake.general.id)
            assert info["channel"]["name"] == "general"
            user = await client.users_info(user=fake.alice.id)
            assert user["user"]["name"] == "alice" and not user["user"]["is_bot"]
            with pytest.raises(SlackApiError) as caught:
                await client.conversations_history(channel="C0NOSUCH00")
            assert caught.value.response["error"] == "channel_not_found"

    run(scenario)


def test_uploads_ephemeral_tokens_and_failures() -> None:
    async def scenario() -> None:
        async with FakeSlack() as fake:
            client = AsyncWebClient(token=FakeSlack.BOT_TOKEN, base_url=fake.api_base_url)
            await client.files_upload_v2(
                channel=fake.general.id, content="sample text", filename="sample.txt", title="Sample"
            )
            (upload,) = fake.uploads.values()
            assert upload["data"] == b"sample text" and upload["title"] == "Sample"
            shared = fake.messages_in(fake.general.id)[-1]
            assert shared["files"][0]["name"] == "sample.txt"

            with pytest.warns(UserWarning, match="files_upload_v2"):
                legacy = await client.files_upload(
                    channels=fake.random.id, content="old way", filename="old.txt"
                )
            assert fake.uploads[legacy["file"]["id"]]["data"] == b"old way"
            assert fake.messages_in(fake.random.id)[-1]["files"][0]["name"] == "old.txt"

            await client.chat_postEphemeral(channel=fake.general.id, user=fake.alice.id, text="only you")
            assert fake.calls_to("chat.postEphemeral")[0].params["user"] == fake.alice.id
            assert fake.messages_in(fake.general.id)[-1]["text"] != "only you"

            wrong = AsyncWebClient(token="xoxb-wrong", base_url=fake.api_base_url)
            with pytest.raises(SlackApiError) as caught:
                await wrong.auth_test()
            assert caught.value.response["error"] == "invalid_auth"

            fake.fail_next("chat.postMessage", error="ratelimited", status=429, headers={"Retry-After": "1"})
            with pytest.raises(SlackApiError) as limited:
                await client.chat_postMessage(channel=fake.general.id, text="hi")
            assert limited.value.response.status_code == 429
            await client.chat_postMessage(channel=fake.general.id, text="hi again")
            assert fake.messages_in(fake.general.id)[-1]["text"] == "hi again"

    run(scenario)
