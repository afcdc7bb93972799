"""The platform contract: the same scenarios, run against every adapter (the console, Discord against the fake
Discord, Slack against the fake Slack), and checked against the platform's registry entry (`db.platforms`).

Each platform is driven through a `ChatDriver`: a member (no admin rights) and an admin who type commands,
and what they saw. A new adapter gets these scenarios by adding its driver to `DRIVERS`.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.console import ConsoleChat
from bot.core import CommandCore, Services
from bot.core.platform import message_limit, platform_rules
from chatsmith.settings import Settings
from db.platforms import PLATFORMS, SERVED_PLATFORMS
from tests.bot.conftest import CHANNEL_LINES
from tests.bot.helpers import answers, eventually, run
from tests.bot.test_core_units import MENTION_BOMB
from tests.bot.test_discord_adapter import count_messages, running_bot
from tests.bot.test_slack_adapter import http_bot, message_event
from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import FakeSlack

# Words no neutralised reply may still contain, by markup: each would ping somebody.
PINGS = {
    "discord": ("@everyone", "@here", "<@123>", "<@!456>", "<@&789>"),
    "slack": ("<!everyone>", "<!here>", "<!channel>", "<@U0ALICE001>", "@everyone", "@here", "@channel"),
    "plain": (),
}


@dataclass
class Answer:
    """What the caller saw: the text, whether only they saw it, files by name, and the progress lines."""

    text: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    progress: list[str] = field(default_factory=list)


class ChatDriver(ABC):
    """One platform's channel with a member and an admin in it."""

    platform: str
    shows_progress = True

    @abstractmethod
    async def command(
        self, name: str, args: dict[str, Any] | None = None, *, admin: bool = False, expect_file: bool = False
    ) -> Answer:
        """Run command `name` as the member (or the admin) and return its final answer."""

    @abstractmethod
    async def say(self, text: str) -> None:
        """The member writes `text` in the channel (a chat message, not a command)."""

    @abstractmethod
    def channel_texts(self) -> list[str]:
        """Every message the whole channel can see."""

    async def add_history(self, lines: list[str]) -> None:
        """Past messages of the channel, written before the bot joined."""
        raise NotImplementedError


def command_text(name: str, args: dict[str, Any]) -> str:
    """A command as typed on Slack and the console: `generate to be length:12`."""
    words = [name]
    for key, value in args.items():
        words.append(str(value) if key in ("prompt", "state", "scope") else f"{key}:{value}")
    return " ".join(words)


class ConsoleDriver(ChatDriver):
    platform = "console"
    # The console prints the answer when it is done; it has no message to update.
    shows_progress = False

    def __init__(self, services: Services, files_dir: Path) -> None:
        core = CommandCore(services)
        self.member = ConsoleChat(core, "team", "general", "alice", admin=False, files_dir=files_dir)
        self.admin = ConsoleChat(core, "team", "general", "bob", admin=True, files_dir=files_dir)
        self.files_dir = files_dir

    async def command(
        self, name: str, args: dict[str, Any] | None = None, *, admin: bool = False, expect_file: bool = False
    ) -> Answer:
        chat = self.admin if admin else self.member
        await chat.say("/" + command_text(name, args or {}))
        reply = chat.replies[-1]
        files = {}
        if reply.file is not None:
            saved = self.files_dir / (reply.filename or "")
            files[saved.name] = saved.read_bytes()
        return Answer(reply.text, reply.ephemeral, files)

    async def say(self, text: str) -> None:
        await self.member.say(text)

    def channel_texts(self) -> list[str]:
        return []  # the console's channel is the operator's terminal: no one else reads it


class DiscordDriver(ChatDriver):
    platform = "discord"

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    async def command(
        self, name: str, args: dict[str, Any] | None = None, *, admin: bool = False, expect_file: bool = False
    ) -> Answer:
        fake = self.fake
        user = fake.bob if admin else fake.alice
        record = await fake.send_interaction(fake.guild.id, fake.channel.id, user.id, name, args or {})
        first = await record.wait_for_response(timeout=10)
        answer = first if first.type == 4 else await record.wait_for_followup(timeout=30)
        files = {upload.filename or "": upload.data for upload in answer.files}
        progress = [edit.content or "" for edit in record.edits if edit.content != "Posted."]
        return Answer(answer.content or "", answer.ephemeral, files, progress)

    async def say(self, text: str) -> None:
        await self.fake.dispatch_message_create(self.fake.channel.id, self.fake.alice.id, text)

    def channel_texts(self) -> list[str]:
        return [message.get("content") or "" for message in self.fake.messages_in(self.fake.channel.id)]

    async def add_history(self, lines: list[str]) -> None:
        self.fake.add_history(self.fake.channel.id, self.fake.alice.id, lines)


class SlackDriver(ChatDriver):
    platform = "slack"

    def __init__(self, fake: FakeSlack, url: str) -> None:
        self.fake = fake
        self.url = url

    async def command(
        self, name: str, args: dict[str, Any] | None = None, *, admin: bool = False, expect_file: bool = False
    ) -> Answer:
        fake = self.fake
        user = fake.bob if admin else fake.alice
        response_url = fake.new_response_url()
        form = fake.slash_command_form(
            "/chatsmith", command_text(name, args or {}), user=user.id, response_url=response_url
        )
        assert (await fake.post_signed_slash_command(self.url, form)).status == 200
        response_id = response_url.rsplit("/", 1)[1]
        answer = await fake.wait_for_response_post(
            lambda post: post.response_id == response_id and not post.body.get("replace_original"), timeout=30
        )
        progress = [
            post.text or ""
            for post in fake.response_posts
            if post.response_id == response_id and post.body.get("replace_original")
        ]
        files: dict[str, bytes] = {}
        if expect_file:
            await fake.wait_for_call("files.completeUploadExternal", timeout=10)
            files = {record["name"]: record["data"] for record in fake.uploads.values() if record["data"]}
        private = answer.body.get("response_type") == "ephemeral"
        return Answer(answer.text or "", private, files, progress)

    async def say(self, text: str) -> None:
        event = self.fake.event_callback(message_event(self.fake, text, self.fake.alice.id))
        assert (await self.fake.post_signed_event(self.url, event)).status == 200

    def channel_texts(self) -> list[str]:
        texts = []
        for message in self.fake.messages_in(self.fake.general.id):
            texts.append(message.get("text") or "")
            texts.extend(str(f.get("name")) for f in message.get("files") or [])
        return texts

    async def add_history(self, lines: list[str]) -> None:
        self.fake.add_history(self.fake.general.id, lines, user=self.fake.alice.id)


@asynccontextmanager
async def console_driver(settings: Settings, services: Services) -> AsyncIterator[ChatDriver]:
    yield ConsoleDriver(services, settings.data_dir / "console-files")


@asynccontextmanager
async def discord_driver(settings: Settings, services: Services) -> AsyncIterator[ChatDriver]:
    async with running_bot(settings, services) as (fake, _):
        yield DiscordDriver(fake)


@asynccontextmanager
async def slack_driver(settings: Settings, services: Services) -> AsyncIterator[ChatDriver]:
    async with http_bot(settings, services) as (fake, _, url):
        yield SlackDriver(fake, url)


DRIVERS: dict[str, Callable[[Settings, Services], AbstractAsyncContextManager[ChatDriver]]] = {
    "console": console_driver,
    "discord": discord_driver,
    "slack": slack_driver,
}


@pytest.fixture(params=sorted(DRIVERS))
def on_platform(
    request: pytest.FixtureRequest, bot_settings: Settings, services: Services
) -> Callable[[Callable[[ChatDriver], Awaitable[None]]], None]:
    """Runs a scenario against one platform's adapter (each test runs once per platform)."""

    def run_on(scenario: Callable[[ChatDriver], Awaitable[None]]) -> None:
        async def connected() -> None:
            async with DRIVERS[request.param](bot_settings, services) as chat:
                await scenario(chat)

        run(connected, timeout=90)

    return run_on


def generating(services: Services, text: str) -> None:
    """Every `generate` continues its prompt with `text`, whatever the model would have written."""

    async def generate(*args: Any, **kwargs: Any) -> str:
        return text

    services.generation.generate = generate  # type: ignore[method-assign]


def test_every_platform_of_the_registry_has_an_adapter_under_contract() -> None:
    assert set(DRIVERS) == set(PLATFORMS)
    for name in SERVED_PLATFORMS:
        assert name.islower() and len(name) <= 16  # stored in workspaces.platform, String(16)


def test_the_cli_serves_configures_and_checks_every_platform_of_the_registry(bot_settings: Settings) -> None:
    from chatsmith.commands.config_commands import ROLES
    from chatsmith.settings import FIELD_GROUPS
    from chatsmith.wiring import platform_adapter, platform_config

    for name in SERVED_PLATFORMS:
        adapter = platform_adapter(name)
        config = platform_config(bot_settings, name)
        assert isinstance(config, adapter.config_type)
        assert name in ROLES and FIELD_GROUPS[name], name
        # Every field is a setting of the platform's own, but the shared data directory.
        fields = {field for field in vars(config) if field != "data_dir"}
        assert {f"{name}_{field}" for field in fields} <= set(FIELD_GROUPS[name])


def test_generate_is_answered_for_the_whole_channel(on_platform: Any) -> None:
    async def scenario(chat: ChatDriver) -> None:
        answer = await chat.command("generate", {"prompt": "to be", "length": 12})
        assert answers(answer.text, "to be") and not answer.private, answer

    on_platform(scenario)


def test_an_admin_command_is_refused_to_a_member_privately(on_platform: Any, services: Services) -> None:
    async def scenario(chat: ChatDriver) -> None:
        answer = await chat.command("collect", {"state": "on"})
        assert "is for admins" in answer.text and answer.private, answer
        assert not any("is for admins" in text for text in chat.channel_texts())
        assert "Collection is on" in (await chat.command("collect", {"state": "on"}, admin=True)).text

    on_platform(scenario)


def test_a_long_reply_is_cut_to_the_platform_limit(on_platform: Any, services: Services) -> None:
    generating(services, " ".join(f"word{i}" for i in range(3000)))

    async def scenario(chat: ChatDriver) -> None:
        answer = await chat.command("generate", {"prompt": "to be"})
        limit = message_limit(chat.platform)
        assert limit - 20 < len(answer.text) <= limit and answer.text.endswith("…"), len(answer.text)
        assert answer.text.startswith("to be word0 word1")

    on_platform(scenario)


def test_mentions_in_a_reply_never_ping(on_platform: Any, services: Services) -> None:
    generating(services, MENTION_BOMB)

    async def scenario(chat: ChatDriver) -> None:
        answer = await chat.command("generate", {"prompt": "hello"})
        markup = platform_rules(chat.platform).markup
        assert answer.text.startswith("hello") and "hi" in answer.text, answer
        assert not [ping for ping in PINGS[markup] if ping in answer.text], answer.text
        if markup == "plain":
            assert MENTION_BOMB in answer.text  # nothing to break where nothing pings

    on_platform(scenario)


def test_private_answers_stay_with_the_caller(on_platform: Any) -> None:
    async def scenario(chat: ChatDriver) -> None:
        before = list(chat.channel_texts())
        answer = await chat.command("status")
        assert answer.private and "answers" in answer.text, answer
        assert chat.channel_texts() == before

    on_platform(scenario)


def test_my_data_is_a_file_only_the_caller_gets(on_platform: Any, services: Services) -> None:
    async def scenario(chat: ChatDriver) -> None:
        await chat.command("collect", {"state": "on"}, admin=True)
        await chat.say("alice's only words")
        await eventually(lambda: count_messages(services) == 1, what="collection")

        answer = await chat.command("my-data", expect_file=True)

        assert answer.private, answer
        [(name, data)] = answer.files.items()
        assert re.fullmatch(r"chatsmith-my-data-\d{8}-\d{6}\.json", name)
        assert "alice's only words" in json.dumps(json.loads(data))
        assert not any("chatsmith-my-data" in text for text in chat.channel_texts())

    on_platform(scenario)


def test_a_long_command_shows_its_progress(on_platform: Any) -> None:
    async def scenario(chat: ChatDriver) -> None:
        if not chat.shows_progress:
            pytest.skip(f"{chat.platform} answers when done (no message to update)")
        await chat.add_history(CHANNEL_LINES[:30])
        await chat.command("collect", {"state": "on"}, admin=True)

        answer = await chat.command("train", {"backfill": 30}, admin=True)

        assert answer.private and "backfill" in answer.text.lower(), answer
        assert any(
            line.startswith("Backfilling") and "30 past messages read" in line for line in answer.progress
        )
        assert all(len(line) <= message_limit(chat.platform) for line in answer.progress)

    on_platform(scenario)


def test_progress_is_throttled_cut_to_the_limit_and_never_fails_the_command() -> None:
    from bot.core.platform import ThrottledProgress

    shown: list[str] = []

    async def show(text: str) -> None:
        if text == "boom":
            raise RuntimeError("the platform refused the edit")
        shown.append(text)

    async def scenario() -> None:
        progress = ThrottledProgress(show, limit=5, interval=60)
        await progress("first and long")
        await progress("too soon")
        fast = ThrottledProgress(show, limit=5, interval=0)
        await fast("boom")  # logged, not raised
        await fast("after")

    run(scenario)
    assert shown == ["first", "after"]
