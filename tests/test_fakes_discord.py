"""The fake Discord server against the real discord.py client: login, gateway, slash commands, history."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp
import discord
import pytest
from discord import app_commands

from tests.fakes.discord import ADMINISTRATOR, EPHEMERAL, LOADING, FakeDiscord

T = TypeVar("T")


def run(scenario: Callable[[], Awaitable[T]], timeout: float = 15.0) -> T:
    """Run one async scenario on a fresh event loop, bounded so a hang fails instead of stalling CI."""

    async def bounded() -> T:
        return await asyncio.wait_for(scenario(), timeout)

    return asyncio.run(bounded())


class RecordingTree(app_commands.CommandTree):
    """A tree that keeps handler errors, which discord.py would otherwise only log."""

    def __init__(self, client: discord.Client) -> None:
        super().__init__(client)
        self.errors: list[BaseException] = []

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        self.errors.append(error)


class EchoClient(discord.Client):
    """A small bot shaped like the project's adapter: owns its tree and syncs it in `setup_hook`."""

    def __init__(self) -> None:
        intents = discord.Intents.default()
        intents.members = False  # with it on, the client would wait for member chunks
        intents.message_content = True
        super().__init__(intents=intents, guild_ready_timeout=0.05)
        self.tree = RecordingTree(self)
        self.ready = asyncio.Event()
        self.messages: asyncio.Queue[discord.Message] = asyncio.Queue()
        self.raw_edits: asyncio.Queue[discord.RawMessageUpdateEvent] = asyncio.Queue()
        self.raw_deletes: asyncio.Queue[discord.RawMessageDeleteEvent] = asyncio.Queue()
        self._add_commands()

    def _add_commands(self) -> None:
        @self.tree.command()
        async def ask(interaction: discord.Interaction, question: str) -> None:
            """Echo the question back."""
            await interaction.response.send_message(
                f"echo: {question}", allowed_mentions=discord.AllowedMentions.none()
            )

        @self.tree.command()
        async def slow(interaction: discord.Interaction) -> None:
            """Defer, then answer with a follow-up carrying a file, then edit the original."""
            await interaction.response.defer(ephemeral=True, thinking=True)
            await interaction.followup.send(
                "done", file=discord.File(io.BytesIO(b"sample text"), "sample.txt")
            )
            await interaction.edit_original_response(content="finished")

        @self.tree.command()
        async def boom(interaction: discord.Interaction) -> None:
            """Fail, to prove the tree records handler errors."""
            raise RuntimeError("handler failed")

    async def setup_hook(self) -> None:
        await self.tree.sync()

    async def on_ready(self) -> None:
        self.ready.set()

    async def on_message(self, message: discord.Message) -> None:
        await self.messages.put(message)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        await self.raw_edits.put(payload)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        await self.raw_deletes.put(payload)


@asynccontextmanager
async def running(client: discord.Client, fake: FakeDiscord) -> AsyncIterator[asyncio.Task[None]]:
    """Start `client` against `fake`, wait for on_ready, and yield its start() task; close on exit."""
    task = asyncio.create_task(client.start(FakeDiscord.TOKEN))
    try:
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait({task, ready}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        # A payload the client cannot parse kills start(): surface that instead of a bare timeout.
        if task in done:
            task.result()
        assert ready in done, "client never became ready"
        yield task
        assert not task.done(), "the client's start() task died"
    finally:
        await client.close()
        await asyncio.gather(task, return_exceptions=True)


def test_login_gateway_and_command_sync() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, fake.install():
            client = EchoClient()
            async with running(client, fake):
                assert client.user is not None and str(client.user.id) == fake.bot.id
                guild = client.get_guild(int(fake.guild.id))
                assert guild is not None and guild.name == "Test Guild"
                assert guild.default_role.id == guild.id
                assert {c.name for c in guild.text_channels} == {"general", "random"}
                assert guild.me is not None
                assert {c["name"] for c in fake.global_commands} == {"ask", "slow", "boom"}
                assert fake.calls_to("PUT", f"/applications/{fake.application_id}/commands")
                synced = await client.tree.sync(guild=guild)
                assert synced == [] and fake.guild_commands[fake.guild.id] == []
                client.tree.copy_global_to(guild=guild)
                synced = await client.tree.sync(guild=guild)
                assert sorted(c.name for c in synced) == ["ask", "boom", "slow"]
                assert all(c["guild_id"] == fake.guild.id for c in fake.guild_commands[fake.guild.id])
                # heartbeat answered, identify seen
                assert any(frame.get("op") == 2 for frame in fake.gateway_frames)

    run(scenario)


def test_install_restores_targets() -> None:
    before = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)

    async def scenario() -> None:
        async with FakeDiscord() as fake:
            with fake.install():
                assert fake.base_url == discord.http.Route.BASE
                assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == fake.gateway_url
            assert before[0] == discord.http.Route.BASE
            fake.install()  # left installed: the fake's exit restores it
        assert before == (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)

    run(scenario)


def test_slash_command_reply() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, fake.install():
            client = EchoClient()
            async with running(client, fake):
                record = await fake.send_interaction(
                    fake.guild.id, fake.channel.id, fake.alice.id, "ask", {"question": "hi there"}
                )
                reply = await record.wait_for_response(timeout=2)
                assert reply.type == 4
                assert reply.content == "echo: hi there"
                assert reply.allowed_mentions == {"parse": []}
                assert not reply.ephemeral
                assert record.response_delay is not None and 0 <= record.response_delay < 1
                # The public reply is now part of the channel's history.
                assert fake.messages_in(fake.channel.id)[-1]["content"] == "echo: hi there"
                # A second callback for the same interaction is refused, as Discord does.
                async with aiohttp.ClientSession() as http:
                    url = f"{fake.base_url}/interactions/{record.id}/{record.token}/callback"
                    async with http.post(url, json={"type": 4, "data": {"content": "again"}}) as response:
                        assert response.status == 400
                        assert response.headers["Content-Type"] == "application/json"
                        assert (await response.json())["code"] == 40060
                assert client.tree.errors == []

    run(scenario)


def test_defer_followup_with_file_and_edit() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, fake.install():
            client = EchoClient()
            async with running(client, fake):
                record = await fake.send_interaction(
                    fake.guild.id, fake.channel.id, fake.bob.id, "slow", permissions=ADMINISTRATOR
                )
                reply = await record.wait_for_response()
                assert reply.type == 5
                assert reply.flags == EPHEMERAL | LOADING
                followup = await record.wait_for_followup()
                assert followup.content == "done"
                assert [(f.filename, f.data) for f in followup.files] == [("sample.txt", b"sample text")]
                # After a defer, the first follow-up replaces the "thinking" message instead of adding one.
                assert record.original_message is not None
                assert followup.message_id == record.original_message["id"]
                assert record.original_message["attachments"][0]["filename"] == "sample.txt"
                edit = await record.wait_for_edit()
                assert edit.content == "finished"
                assert record.original_message["content"] == "finished"
                assert record.original_message["flags"] == EPHEMERAL
                # Ephemeral replies never reach channel history.
                assert fake.messages_in(fake.channel.id) == []
                assert client.tree.errors == []

    run(scenario)


def test_handler_errors_are_recorded() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, fake.install():
            client = EchoClient()
            async with running(client, fake):
                await fake.send_interaction(fake.guild.id, fake.channel.id, fake.alice.id, "boom")
                for _ in range(100):
                    if client.tree.errors:
                        break
                    await asyncio.sleep(0.01)
                assert len(client.tree.errors) == 1
                assert "handler failed" in str(client.tree.errors[0])

    run(scenario)


def test_late_callback_gets_unknown_interaction() -> None:
    async def scenario() -> None:
        async with FakeDiscord(response_window=0.0) as fake, fake.install():
            client = EchoClient()
            async with running(client, fake):
                record = await fake.send_interaction(
                    fake.guild.id, fake.channel.id, fake.alice.id, "ask", {"question": "late"}
                )
                call = await fake.wait_for_call("POST", f"/interactions/{record.id}/*/callback")
                assert call.status == 404
                assert len(record.responses) == 0
                for _ in range(100):
                    if client.tree.errors:
                        break
                    await asyncio.sleep(0.01)
                assert isinstance(client.tree.errors[0].__cause__, discord.NotFound)

    run(scenario)


def test_message_events_reach_the_client() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, fake.install():
            client = EchoClient()
            async with running(client, fake):
                sent = await fake.dispatch_message_create(
                    fake.channel.id, fake.alice.id, f"hello <@{fake.bot.id}>"
                )
                message = await asyncio.wait_for(client.messages.get(), 2)
                assert message.content == f"hello <@{fake.bot.id}>"
                assert message.author.id == int(fake.alice.id)
                assert client.user in message.mentions
                assert isinstance(message.author, discord.Member)

                await fake.dispatch_message_update(fake.channel.id, sent["id"], "edited")
                edit = await asyncio.wait_for(client.raw_edits.get(), 2)
                assert edit.message_id == int(sent["id"]) and edit.message.content == "edited"

                await fake.dispatch_message_delete(fake.channel.id, sent["id"])
                deleted = await asyncio.wait_for(client.raw_deletes.get(), 2)
                assert deleted.message_id == int(sent["id"])
                assert fake.messages_in(fake.channel.id) == []

                channel = client.get_channel(int(fake.channel.id))
                assert isinstance(channel, discord.TextChannel)
                await channel.send("reply", file=discord.File(io.BytesIO(b"xyz"), "r.txt"))
                call = await fake.wait_for_call("POST", f"/channels/{fake.channel.id}/messages")
                assert call.json["content"] == "reply"
                assert call.files[0].data == b"xyz"

    run(scenario)


def test_history_pages_newest_first() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, fake.install():
            texts = [f"line {i}" for i in range(130)]
            fake.add_history(fake.channel.id, fake.alice.id, texts)
            client = EchoClient()
            async with running(client, fake):
                channel = client.get_channel(int(fake.channel.id))
                assert isinstance(channel, discord.TextChannel)
                got = [m.content async for m in channel.history(limit=120)]
                assert got == list(reversed(texts))[:120]
                pages = fake.calls_to("GET", f"/channels/{fake.channel.id}/messages")
                assert [p.query.get("limit") for p in pages] == ["100", "20"]
                assert "before" not in pages[0].query
                assert pages[1].query["before"] == fake.messages_in(fake.channel.id)[30]["id"]

                oldest = [m.content async for m in channel.history(limit=5, oldest_first=True)]
                assert oldest == texts[:5]

    run(scenario)


def test_auto_sharded_client_uses_gateway_bot() -> None:
    async def scenario() -> None:
        async with FakeDiscord() as fake, fake.install():
            intents = discord.Intents.default()
            intents.members = False
            client = discord.AutoShardedClient(intents=intents, guild_ready_timeout=0.05)
            async with running(client, fake):
                assert fake.calls_to("GET", "/gateway/bot")
                assert client.get_guild(int(fake.guild.id)) is not None

    run(scenario)


@pytest.mark.parametrize("status", [403, 404])
def test_injected_failure_reaches_the_caller(status: int) -> None:
    async def scenario() -> Any:
        async with FakeDiscord() as fake, fake.install():
            client = EchoClient()
            async with running(client, fake):
                fake.fail_next("POST", "/channels/*/messages", status=status, message="Missing Permissions")
                channel = client.get_channel(int(fake.channel.id))
                assert isinstance(channel, discord.TextChannel)
                with pytest.raises(discord.HTTPException) as caught:
                    await channel.send("hello")
                assert caught.value.status == status
                await channel.send("second try")
                assert fake.messages_in(fake.channel.id)[-1]["content"] == "second try"

    run(scenario)
