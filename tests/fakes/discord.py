"""A fake Discord (REST v10 + gateway) on 127.0.0.1 that the real discord.py client can run against.

Usage::

    async with FakeDiscord() as fake, fake.install():
        client = MyClient(intents=...)
        task = asyncio.create_task(client.start(FakeDiscord.TOKEN))
        await fake.wait_until_ready()
        record = await fake.send_interaction(fake.guild.id, fake.channel.id, fake.alice.id, "ask", {"q": "hi"})
        reply = await record.wait_for_response()
        assert reply.content == "..."

The fake seeds one guild ("Test Guild") with text channels "general" and "random" and two members,
alice (ordinary permissions) and bob (administrator), unless `seed=False`. Everything the client sends
is kept in `fake.calls`; channel messages live in a store that `GET /channels/{id}/messages` pages
through, newest first, as Discord does.

Wire facts this relies on are in docs/platform-fakes.md (shared docs). Not modelled: rate limits (unless
injected with `fail_next`), zlib-compressed frames, voice, threads, resolved user/role options.
"""

from __future__ import annotations

import bisect
import fnmatch
import itertools
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yarl
from aiohttp import WSMsgType, web

from tests.fakes._shared import EventLog, UploadedFile, read_multipart

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1420070400000

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_APPLICATION_COMMANDS = 1 << 31
MEMBER_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | ADD_REACTIONS
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_APPLICATION_COMMANDS
)
ALL_PERMISSIONS = (1 << 50) - 1

# Message flags.
EPHEMERAL = 1 << 6
LOADING = 1 << 7

# Interaction callback types.
CHANNEL_MESSAGE_WITH_SOURCE = 4
DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7

# Real Discord answers a callback only within 3 s of dispatch; after that the token is "unknown".
INTERACTION_RESPONSE_WINDOW_S = 3.0


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    # discord.py parses JSON only when Content-Type is exactly "application/json"; aiohttp's
    # json_response appends "; charset=utf-8", after which login fails.
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(body=json.dumps(payload).encode(), status=status, headers=all_headers)


def _error(status: int, message: str, code: int = 0) -> web.Response:
    return _json_response({"message": message, "code": code}, status=status)


@dataclass
class RestCall:
    """One REST request the client made. `path` is relative to /api/v10, e.g. "/channels/1/messages".

    `json` is the JSON body, or the parsed `payload_json` part of a multipart body; `files` holds the
    file parts. The Authorization header is not kept.
    """

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[UploadedFile]
    at: float
    status: int = 0

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


@dataclass
class InteractionReply:
    """A message-shaped reply to an interaction: a callback, a follow-up, or an edit of a message.

    `kind` is "callback", "followup" or "edit"; `type` is the callback type (4 message, 5 defer, ...)
    for callbacks and None otherwise; `data` is the message payload the client sent.
    """

    kind: str
    type: int | None
    data: dict[str, Any]
    files: list[UploadedFile]
    at: float
    message_id: str | None = None

    @property
    def content(self) -> str | None:
        return self.data.get("content")

    @property
    def flags(self) -> int:
        return int(self.data.get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def allowed_mentions(self) -> dict[str, Any] | None:
        return self.data.get("allowed_mentions")

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return list(self.data.get("embeds") or [])

    @property
    def attachments(self) -> list[dict[str, Any]]:
        return list(self.data.get("attachments") or [])

    def __str__(self) -> str:
        return f"{self.kind}(type={self.type}, content={self.content!r}, flags={self.flags})"


@dataclass
class InteractionRecord:
    """An interaction the fake dispatched, and everything the client sent back for it.

    Times are `time.monotonic()` seconds: `dispatched_at` when INTERACTION_CREATE was written to the
    socket, `first_response_at` when the first callback arrived (None until then).
    """

    id: str
    token: str
    guild_id: str | None
    channel_id: str
    user_id: str
    name: str
    payload: dict[str, Any]
    dispatched_at: float
    responses: EventLog[InteractionReply] = field(default_factory=lambda: EventLog(str))
    followups: EventLog[InteractionReply] = field(default_factory=lambda: EventLog(str))
    edits: EventLog[InteractionReply] = field(default_factory=lambda: EventLog(str))
    original_message: dict[str, Any] | None = None

    @property
    def first_response_at(self) -> float | None:
        return self.responses[0].at if len(self.responses) else None

    @property
    def response_delay(self) -> float | None:
        """Seconds from dispatch to the first callback; Discord requires under 3."""
        first = self.first_response_at
        return None if first is None else first - self.dispatched_at

    async def wait_for_response(self, timeout: float = 2.0) -> InteractionReply:
        """The first callback (`POST /interactions/{id}/{token}/callback`)."""
        return await self.responses.wait_for(None, timeout, what=f"callback for /{self.name}")

    async def wait_for_followup(
        self, predicate: Callable[[InteractionReply], bool] | None = None, timeout: float = 2.0
    ) -> InteractionReply:
        """The first follow-up (`POST /webhooks/{app}/{token}`) matching `predicate`."""
        return await self.followups.wait_for(predicate, timeout, what=f"follow-up for /{self.name}")

    async def wait_for_edit(
        self, predicate: Callable[[InteractionReply], bool] | None = None, timeout: float = 2.0
    ) -> InteractionReply:
        """The first edit (`PATCH /webhooks/{app}/{token}/messages/{id or @original}`) matching `predicate`."""
        return await self.edits.wait_for(predicate, timeout, what=f"edit for /{self.name}")


@dataclass
class FakeChannel:
    """A guild text channel; `messages` is its history, oldest first (ascending snowflake)."""

    id: str
    guild_id: str
    name: str
    position: int
    type: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    permission_overwrites: list[dict[str, Any]] = field(default_factory=list)

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "guild_id": self.guild_id,
            "name": self.name,
            "position": self.position,
            "permission_overwrites": list(self.permission_overwrites),
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": self.messages[-1]["id"] if self.messages else None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }


@dataclass
class FakeMember:
    """A guild member. `permissions` is what interactions from them carry (`member.permissions`)."""

    id: str
    username: str
    permissions: int
    role_ids: list[str]
    bot: bool = False

    @property
    def user(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "discriminator": "0",
            "global_name": self.username.title(),
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
        }

    def to_payload(self, *, with_permissions: bool = False) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "user": self.user,
            "roles": list(self.role_ids),
            "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "nick": None,
            "avatar": None,
            "flags": 0,
            "pending": False,
            "premium_since": None,
        }
        if with_permissions:
            payload["permissions"] = str(self.permissions)
        return payload


@dataclass
class FakeGuild:
    """A guild; its @everyone role has the guild's id, as on Discord."""

    id: str
    name: str
    everyone_permissions: int
    roles: list[dict[str, Any]] = field(default_factory=list)
    channels: dict[str, FakeChannel] = field(default_factory=dict)
    members: dict[str, FakeMember] = field(default_factory=dict)

    def to_payload(self, owner_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": owner_id,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "features": [],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "large": False,
            "unavailable": False,
            "nsfw": False,
            "member_count": len(self.members),
            "roles": list(self.roles),
            "channels": [channel.to_payload() for channel in self.channels.values()],
            "members": [member.to_payload() for member in self.members.values()],
            "emojis": [],
            "stickers": [],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "incidents_data": None,
        }


@dataclass
class _GatewaySession:
    ws: web.WebSocketResponse
    session_id: str
    shard: list[int] | None = None
    sequence: int = 0
    ready: bool = False


@dataclass
class _Failure:
    method: str
    path: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    remaining: int


class _Installation:
    """Points discord.py at the fake; restores the old targets on exit or `restore()`."""

    def __init__(self, base_url: str, gateway_url: str) -> None:
        from discord.gateway import DiscordWebSocket
        from discord.http import Route

        self._saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
        Route.BASE = base_url
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
        self._active = True

    def restore(self) -> None:
        if not self._active:
            return
        from discord.gateway import DiscordWebSocket
        from discord.http import Route

        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._saved
        self._active = False

    def __enter__(self) -> _Installation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.restore()

    # Also async, so that `async with FakeDiscord() as fake, fake.install():` reads as one line.
    async def __aenter__(self) -> _Installation:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.restore()


class FakeDiscord:
    """A Discord REST + gateway server on an ephemeral 127.0.0.1 port, for one test.

    Args:
        seed: create the default guild, channels and members (`fake.guild`, `fake.channel`,
            `fake.other_channel`, `fake.alice`, `fake.bob`).
        bot_permissions: permissions of the bot's own role in seeded and added guilds.
        response_window: seconds after dispatch within which an interaction callback is accepted;
            later callbacks get 404 "Unknown interaction" (code 10062), as on Discord.
    """

    TOKEN = "fake-bot-token"
    BOT_USERNAME = "chatsmith"

    def __init__(
        self,
        *,
        seed: bool = True,
        bot_permissions: int = MEMBER_PERMISSIONS,
        response_window: float = INTERACTION_RESPONSE_WINDOW_S,
    ) -> None:
        self._snowflake_counter = itertools.count()
        self._last_snowflake = 0
        self.application_id = self.snowflake()
        self.bot = FakeMember(self.application_id, self.BOT_USERNAME, bot_permissions, [], bot=True)
        self.owner = FakeMember(self.snowflake(), "owner", ALL_PERMISSIONS, [])
        self.bot_permissions = bot_permissions
        self.response_window = response_window
        self.guilds: dict[str, FakeGuild] = {}
        self.calls: EventLog[RestCall] = EventLog(str)
        self.interactions: dict[str, InteractionRecord] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[str, list[dict[str, Any]]] = {}
        self.gateway_frames: EventLog[dict[str, Any]] = EventLog(lambda frame: f"op {frame.get('op')}")
        self._sessions: list[_GatewaySession] = []
        self._ready_sessions: EventLog[_GatewaySession] = EventLog(lambda s: s.session_id)
        self._failures: list[_Failure] = []
        self._runner: web.AppRunner | None = None
        self._installation: _Installation | None = None
        self.port = 0
        if seed:
            self.guild = self.add_guild("Test Guild")
            self.channel = self.add_channel(self.guild.id, "general")
            self.other_channel = self.add_channel(self.guild.id, "random")
            self.alice = self.add_member(self.guild.id, "alice")
            self.bob = self.add_member(self.guild.id, "bob", permissions=ADMINISTRATOR | MEMBER_PERMISSIONS)

    # ----------------------------------------------------------------- lifetime

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._route_rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._installation is not None:
            self._installation.restore()
        for session in list(self._sessions):
            await session.ws.close(code=1001, message=b"fake shutting down")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        """The value for `discord.http.Route.BASE`, e.g. "http://127.0.0.1:PORT/api/v10"."""
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """The value for `discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY` (wrap it in `yarl.URL`)."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    def install(self) -> _Installation:
        """Point discord.py (class attributes, process-wide) at this fake.

        Use as `with fake.install():` (or `async with`), or call it and let the fake's exit restore the old values.
        """
        self._installation = _Installation(self.base_url, self.gateway_url)
        return self._installation

    # ----------------------------------------------------------------- world

    def snowflake(self, at: datetime | None = None) -> str:
        """A fresh id; ids from `at=None` increase monotonically, like Discord's."""
        moment = at.timestamp() if at is not None else time.time()
        millis = int(moment * 1000) - DISCORD_EPOCH_MS
        value = (millis << 22) | (next(self._snowflake_counter) & 0x3FFFFF)
        if at is None:
            value = max(value, self._last_snowflake + 1)
            self._last_snowflake = value
        return str(value)

    def add_guild(self, name: str, *, everyone_permissions: int = MEMBER_PERMISSIONS) -> FakeGuild:
        """Add a guild with its @everyone role and the bot as a member (with a role of `bot_permissions`)."""
        guild = FakeGuild(self.snowflake(), name, everyone_permissions)
        guild.roles.append(self._role(guild.id, "@everyone", everyone_permissions, position=0))
        bot_role = self._role(
            self.snowflake(), self.BOT_USERNAME, self.bot_permissions, position=1, managed=True
        )
        guild.roles.append(bot_role)
        guild.members[self.bot.id] = FakeMember(
            self.bot.id, self.bot.username, self.bot_permissions, [bot_role["id"]], bot=True
        )
        self.guilds[guild.id] = guild
        return guild

    def add_channel(self, guild_id: str, name: str, *, private: bool = False) -> FakeChannel:
        """Add a text channel; a private one denies @everyone (whose role id is the guild's) the view."""
        guild = self.guilds[guild_id]
        channel = FakeChannel(self.snowflake(), guild_id, name, position=len(guild.channels))
        if private:
            channel.permission_overwrites.append(
                {"id": guild_id, "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)}
            )
        guild.channels[channel.id] = channel
        return channel

    def add_member(
        self, guild_id: str, username: str, *, permissions: int = MEMBER_PERMISSIONS, bot: bool = False
    ) -> FakeMember:
        """Add a member. Permissions beyond @everyone's come from a role made for the member, so that
        discord.py's own permission maths (`member.guild_permissions`) agrees with the interaction payload."""
        guild = self.guilds[guild_id]
        role_ids: list[str] = []
        if permissions & ~guild.everyone_permissions:
            role = self._role(self.snowflake(), f"{username}-role", permissions, position=len(guild.roles))
            guild.roles.append(role)
            role_ids.append(role["id"])
        member = FakeMember(self.snowflake(), username, permissions, role_ids, bot=bot)
        guild.members[member.id] = member
        return member

    def channel_by_id(self, channel_id: str) -> FakeChannel:
        for guild in self.guilds.values():
            if str(channel_id) in guild.channels:
                return guild.channels[str(channel_id)]
        raise KeyError(f"Received channel id {channel_id}, expected one of the fake's channels")

    def add_message(
        self,
        channel_id: str,
        author_id: str,
        content: str,
        *,
        at: datetime | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Store a message in a channel's history (no gateway event). `at` back-dates it (id included)."""
        channel = self.channel_by_id(channel_id)
        message = self._message(channel, self._member(channel.guild_id, author_id), content, at=at, **extra)
        self._store(channel, message)
        return message

    def add_history(self, channel_id: str, author_id: str, contents: Sequence[str]) -> list[dict[str, Any]]:
        """Store many messages, oldest first, a minute apart, ending a minute before now."""
        start = time.time() - 60 * (len(contents) + 1)
        return [
            self.add_message(channel_id, author_id, text, at=datetime.fromtimestamp(start + 60 * i, UTC))
            for i, text in enumerate(contents)
        ]

    def messages_in(self, channel_id: str) -> list[dict[str, Any]]:
        """The channel's stored messages, oldest first."""
        return list(self.channel_by_id(channel_id).messages)

    def fail_next(
        self,
        method: str,
        path: str,
        *,
        status: int = 500,
        message: str = "Internal Server Error",
        code: int = 0,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` requests matching `method` and glob `path` (e.g. "/channels/*/messages")
        fail with `status` and a Discord error body. discord.py retries 5xx itself, so use 4xx to see an
        error reach the caller."""
        body = {"message": message, "code": code}
        self._failures.append(_Failure(method.upper(), path, status, body, dict(headers or {}), times))

    async def wait_for_call(
        self,
        method: str,
        path: str,
        predicate: Callable[[RestCall], bool] | None = None,
        timeout: float = 2.0,
    ) -> RestCall:
        """The first recorded REST call matching `method` and glob `path` (and `predicate`)."""

        def matches(call: RestCall) -> bool:
            return (
                call.method == method.upper()
                and fnmatch.fnmatchcase(call.path, path)
                and (predicate is None or predicate(call))
            )

        return await self.calls.wait_for(matches, timeout, what=f"{method} {path}")

    def calls_to(self, method: str, path: str) -> list[RestCall]:
        return [c for c in self.calls if c.method == method.upper() and fnmatch.fnmatchcase(c.path, path)]

    # ----------------------------------------------------------------- gateway events

    async def wait_until_ready(self, timeout: float = 5.0) -> None:
        """Wait until a client has identified and been sent READY and its GUILD_CREATEs."""
        await self._ready_sessions.wait_for(None, timeout, what="identified gateway session")

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH (op 0) frame to every identified gateway session.

        Raises:
            RuntimeError: no client has identified yet.
        """
        sessions = [s for s in self._sessions if s.ready and not s.ws.closed]
        if not sessions:
            raise RuntimeError(f"Received dispatch of {event} with no identified gateway session")
        for session in sessions:
            await self._send_dispatch(session, event, data)

    async def dispatch_message_create(
        self, channel_id: str, author_id: str, content: str, **extra: Any
    ) -> dict[str, Any]:
        """Store a message from `author_id` and dispatch MESSAGE_CREATE; returns the message payload.

        `<@id>` mentions in `content` fill the `mentions` list, as Discord does.
        """
        channel = self.channel_by_id(channel_id)
        member = self._member(channel.guild_id, author_id)
        message = self._message(channel, member, content, **extra)
        self._store(channel, message)
        await self.dispatch("MESSAGE_CREATE", {**message, "member": self._partial_member(member)})
        return message

    async def dispatch_message_update(self, channel_id: str, message_id: str, content: str) -> dict[str, Any]:
        """Edit a stored message and dispatch MESSAGE_UPDATE with the whole new message."""
        channel = self.channel_by_id(channel_id)
        message = self._find_message(channel, message_id)
        if message is None:
            raise KeyError(f"Received message id {message_id}, expected one stored in #{channel.name}")
        message["content"] = content
        message["edited_timestamp"] = _now_iso()
        message["mentions"] = self._mentions(channel.guild_id, content)
        author = self._member(channel.guild_id, message["author"]["id"])
        await self.dispatch("MESSAGE_UPDATE", {**message, "member": self._partial_member(author)})
        return message

    async def dispatch_message_delete(self, channel_id: str, message_id: str) -> None:
        """Remove a stored message (if present) and dispatch MESSAGE_DELETE."""
        channel = self.channel_by_id(channel_id)
        message = self._find_message(channel, message_id)
        if message is not None:
            channel.messages.remove(message)
        payload = {"id": str(message_id), "channel_id": channel.id, "guild_id": channel.guild_id}
        await self.dispatch("MESSAGE_DELETE", payload)

    async def send_interaction(
        self,
        guild_id: str,
        channel_id: str,
        user_id: str,
        name: str,
        options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        permissions: int | None = None,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """Dispatch a slash-command INTERACTION_CREATE (type 2) and return its record.

        Args:
            options: `{"name": value}` (types inferred: str 3, int 4, bool 5, float 10) or the raw
                option list for subcommands.
            permissions: the member's permissions in the channel; defaults to the member's own.
        """
        guild = self.guilds[guild_id]
        channel = guild.channels[channel_id]
        member = self._member(guild_id, user_id)
        member_payload = member.to_payload(with_permissions=True)
        if permissions is not None:
            member_payload["permissions"] = str(permissions)
        command_id = next(
            (c["id"] for c in self._commands_for(guild_id) if c["name"] == name), self.snowflake()
        )
        interaction_id = self.snowflake()
        token = f"interaction-{uuid.uuid4().hex}"
        payload: dict[str, Any] = {
            "id": interaction_id,
            "application_id": self.application_id,
            "type": 2,
            "token": token,
            "version": 1,
            "data": {
                "id": command_id,
                "name": name,
                "type": 1,
                "options": self._options(options),
                "guild_id": guild_id,
            },
            "guild_id": guild_id,
            "guild": {"id": guild_id, "locale": "en-US", "features": []},
            "channel_id": channel_id,
            "channel": channel.to_payload(),
            "member": member_payload,
            "app_permissions": str(self.bot_permissions),
            "locale": locale,
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": guild_id},
            "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        record = InteractionRecord(
            id=interaction_id,
            token=token,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            name=name,
            payload=payload,
            dispatched_at=time.monotonic(),
        )
        self.interactions[interaction_id] = record
        await self.dispatch("INTERACTION_CREATE", payload)
        return record

    # ----------------------------------------------------------------- payload helpers

    @staticmethod
    def _role(
        role_id: str, name: str, permissions: int, *, position: int, managed: bool = False
    ) -> dict[str, Any]:
        return {
            "id": role_id,
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": managed,
            "mentionable": False,
            "flags": 0,
        }

    def _member(self, guild_id: str, user_id: str) -> FakeMember:
        guild = self.guilds[guild_id]
        if str(user_id) not in guild.members:
            raise KeyError(f"Received user id {user_id}, expected a member of guild {guild.name}")
        return guild.members[str(user_id)]

    @staticmethod
    def _partial_member(member: FakeMember) -> dict[str, Any]:
        # MESSAGE_CREATE carries the member without its user (the user is `author`).
        payload = member.to_payload()
        del payload["user"]
        return payload

    def _mentions(self, guild_id: str, content: str) -> list[dict[str, Any]]:
        guild = self.guilds[guild_id]
        ids = dict.fromkeys(re.findall(r"<@!?(\d+)>", content))
        return [guild.members[i].user for i in ids if i in guild.members]

    def _message(
        self,
        channel: FakeChannel,
        author: FakeMember,
        content: str,
        *,
        at: datetime | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        moment = at or datetime.now(UTC)
        return {
            "id": self.snowflake(at),
            "type": 0,
            "channel_id": channel.id,
            "guild_id": channel.guild_id,
            "author": author.user,
            "content": content,
            "timestamp": moment.isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": "@everyone" in content,
            "mentions": self._mentions(channel.guild_id, content),
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "reactions": [],
            "pinned": False,
            "flags": 0,
            **extra,
        }

    @staticmethod
    def _store(channel: FakeChannel, message: dict[str, Any]) -> None:
        keys = [int(m["id"]) for m in channel.messages]
        channel.messages.insert(bisect.bisect(keys, int(message["id"])), message)

    @staticmethod
    def _find_message(channel: FakeChannel, message_id: str) -> dict[str, Any] | None:
        return next((m for m in channel.messages if m["id"] == str(message_id)), None)

    def _commands_for(self, guild_id: str | None) -> list[dict[str, Any]]:
        return self.guild_commands.get(guild_id or "", []) + self.global_commands

    @staticmethod
    def _options(options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
        if options is None:
            return []
        if not isinstance(options, Mapping):
            return [dict(option) for option in options]
        result = []
        for name, value in options.items():
            # bool before int: bool is a subclass of int.
            if isinstance(value, bool):
                kind = 5
            elif isinstance(value, int):
                kind = 4
            elif isinstance(value, float):
                kind = 10
            else:
                kind = 3
            result.append({"name": name, "type": kind, "value": value})
        return result

    def _bot_message(self, channel: FakeChannel, data: Mapping[str, Any], files: list[UploadedFile]) -> dict:
        extra_keys = ("embeds", "components", "flags", "tts", "message_reference", "nonce", "sticker_ids")
        extra = {k: data[k] for k in extra_keys if k in data and k != "sticker_ids"}
        message = self._message(channel, self.bot, str(data.get("content") or ""), **extra)
        message["flags"] = int(data.get("flags") or 0)
        message["attachments"] = self._attachments(data, files)
        reference = data.get("message_reference")
        if reference:
            message["type"] = 19
            message["referenced_message"] = self._find_message(channel, reference.get("message_id", ""))
        return message

    def _attachments(self, data: Mapping[str, Any], files: list[UploadedFile]) -> list[dict[str, Any]]:
        by_index = {f.field: f for f in files}
        result = []
        for attachment in data.get("attachments") or []:
            upload = by_index.get(f"files[{attachment.get('id')}]")
            attachment_id = self.snowflake()
            filename = attachment.get("filename") or (upload.filename if upload else "file")
            result.append(
                {
                    "id": attachment_id,
                    "filename": filename,
                    "description": attachment.get("description"),
                    "size": len(upload.data) if upload else 0,
                    "url": f"http://127.0.0.1:{self.port}/attachments/{attachment_id}/{filename}",
                    "proxy_url": f"http://127.0.0.1:{self.port}/attachments/{attachment_id}/{filename}",
                    "content_type": upload.content_type if upload else None,
                    "flags": 0,
                }
            )
        return result

    # ----------------------------------------------------------------- gateway server

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        session = _GatewaySession(ws, session_id=uuid.uuid4().hex)
        self._sessions.append(session)
        try:
            await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(frame.data)
                self.gateway_frames.append(payload)
                await self._handle_gateway_frame(session, payload)
        finally:
            self._sessions.remove(session)
        return ws

    async def _handle_gateway_frame(self, session: _GatewaySession, payload: dict[str, Any]) -> None:
        op, data = payload.get("op"), payload.get("d") or {}
        if op == 1:  # heartbeat
            await session.ws.send_json({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:  # identify
            session.shard = data.get("shard")
            await self._send_ready(session)
        elif op == 6:  # resume: nothing was missed, so say so
            session.ready = True
            await self._send_dispatch(session, "RESUMED", {})
        elif op == 8:  # request guild members
            guild = self.guilds.get(str(data.get("guild_id")))
            if guild is not None:
                chunk = {
                    "guild_id": guild.id,
                    "members": [m.to_payload() for m in guild.members.values()],
                    "chunk_index": 0,
                    "chunk_count": 1,
                    "not_found": [],
                    "nonce": data.get("nonce"),
                }
                await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _send_ready(self, session: _GatewaySession) -> None:
        guilds = self._guilds_for_shard(session.shard)
        ready: dict[str, Any] = {
            "v": 10,
            "user": {**self.bot.user, "verified": True, "mfa_enabled": False},
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "guilds": [{"id": g.id, "unavailable": True} for g in guilds],
            "application": {"id": self.application_id, "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "_trace": ["fake-discord"],
        }
        if session.shard is not None:
            ready["shard"] = session.shard
        await self._send_dispatch(session, "READY", ready)
        for guild in guilds:
            await self._send_dispatch(session, "GUILD_CREATE", guild.to_payload(self.owner.id))
        session.ready = True
        self._ready_sessions.append(session)

    def _guilds_for_shard(self, shard: list[int] | None) -> list[FakeGuild]:
        if not shard:
            return list(self.guilds.values())
        shard_id, shard_count = shard
        return [g for g in self.guilds.values() if (int(g.id) >> 22) % shard_count == shard_id]

    async def _send_dispatch(self, session: _GatewaySession, event: str, data: dict[str, Any]) -> None:
        session.sequence += 1
        await session.ws.send_json({"op": 0, "t": event, "s": session.sequence, "d": data})

    # ----------------------------------------------------------------- REST server

    def _injected_failure(self, call: RestCall) -> web.Response | None:
        for failure in self._failures:
            if failure.method == call.method and fnmatch.fnmatchcase(call.path, failure.path):
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
                return _json_response(failure.body, failure.status, failure.headers)
        return None

    async def _route_rest(self, request: web.Request) -> web.StreamResponse:
        body, files = await _read_body(request)
        call = RestCall(
            method=request.method,
            path=request.path[len(API_PREFIX) :],
            query=dict(request.query),
            json=body,
            files=files,
            at=time.monotonic(),
        )
        response = self._injected_failure(call) or await self._dispatch_rest(call)
        call.status = response.status
        self.calls.append(call)
        return response

    async def _dispatch_rest(self, call: RestCall) -> web.Response:
        for method, pattern, handler in self._routes():
            if method != call.method:
                continue
            match = re.fullmatch(pattern, call.path)
            if match:
                return await handler(call, *match.groups())
        return _error(404, "404: Not Found")

    def _routes(self) -> Iterator[tuple[str, str, Callable[..., Any]]]:
        snowflake = r"(\d+)"
        token = r"([^/]+)"
        yield "GET", r"/users/@me", self._get_me
        yield "GET", r"/oauth2/applications/@me", self._get_application
        yield "GET", r"/gateway", self._get_gateway
        yield "GET", r"/gateway/bot", self._get_gateway_bot
        yield "GET", rf"/users/{snowflake}", self._get_user
        yield "PUT", rf"/applications/{snowflake}/commands", self._put_commands
        yield "GET", rf"/applications/{snowflake}/commands", self._get_commands
        yield "PUT", rf"/applications/{snowflake}/guilds/{snowflake}/commands", self._put_commands
        yield "GET", rf"/applications/{snowflake}/guilds/{snowflake}/commands", self._get_commands
        yield "POST", rf"/interactions/{snowflake}/{token}/callback", self._interaction_callback
        yield "POST", rf"/webhooks/{snowflake}/{token}", self._followup
        yield "GET", rf"/webhooks/{snowflake}/{token}/messages/(@original|\d+)", self._get_webhook_message
        yield "PATCH", rf"/webhooks/{snowflake}/{token}/messages/(@original|\d+)", self._edit_webhook_message
        yield (
            "DELETE",
            rf"/webhooks/{snowflake}/{token}/messages/(@original|\d+)",
            self._delete_webhook_message,
        )
        yield "GET", rf"/guilds/{snowflake}", self._get_guild
        yield "GET", rf"/guilds/{snowflake}/members/{snowflake}", self._get_member
        yield "GET", rf"/channels/{snowflake}", self._get_channel
        yield "GET", rf"/channels/{snowflake}/messages", self._get_messages
        yield "GET", rf"/channels/{snowflake}/messages/{snowflake}", self._get_message
        yield "POST", rf"/channels/{snowflake}/messages", self._post_message
        yield "PATCH", rf"/channels/{snowflake}/messages/{snowflake}", self._edit_message
        yield "DELETE", rf"/channels/{snowflake}/messages/{snowflake}", self._delete_message
        yield "POST", rf"/channels/{snowflake}/typing", self._typing

    async def _get_me(self, call: RestCall) -> web.Response:
        return _json_response({**self.bot.user, "verified": True, "mfa_enabled": False, "locale": "en-US"})

    async def _get_application(self, call: RestCall) -> web.Response:
        return _json_response(
            {
                "id": self.application_id,
                "name": self.BOT_USERNAME,
                "description": "",
                "icon": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "owner": self.owner.user,
                "flags": 0,
                "team": None,
                "rpc_origins": [],
            }
        )

    async def _get_gateway(self, call: RestCall) -> web.Response:
        return _json_response({"url": self.gateway_url})

    async def _get_gateway_bot(self, call: RestCall) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return _json_response({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _get_user(self, call: RestCall, user_id: str) -> web.Response:
        for guild in self.guilds.values():
            if user_id in guild.members:
                return _json_response(guild.members[user_id].user)
        return _error(404, "Unknown User", 10013)

    async def _put_commands(
        self, call: RestCall, application_id: str, guild_id: str | None = None
    ) -> web.Response:
        registered = []
        previous = {c["name"]: c["id"] for c in self._commands_for(guild_id)}
        for command in call.json or []:
            entry = {
                "type": 1,
                "description": "",
                "options": [],
                "default_member_permissions": None,
                "dm_permission": True,
                "nsfw": False,
                **command,
                "id": previous.get(command["name"]) or self.snowflake(),
                "application_id": application_id,
                "version": self.snowflake(),
            }
            if guild_id is not None:
                entry["guild_id"] = guild_id
            registered.append(entry)
        if guild_id is None:
            self.global_commands = registered
        else:
            self.guild_commands[guild_id] = registered
        return _json_response(registered)

    async def _get_commands(
        self, call: RestCall, application_id: str, guild_id: str | None = None
    ) -> web.Response:
        commands = self.global_commands if guild_id is None else self.guild_commands.get(guild_id, [])
        return _json_response(commands)

    async def _interaction_callback(self, call: RestCall, interaction_id: str, token: str) -> web.Response:
        record = self.interactions.get(interaction_id)
        if record is None or record.token != token:
            return _error(404, "Unknown interaction", 10062)
        if len(record.responses):
            return _error(400, "Interaction has already been acknowledged.", 40060)
        if time.monotonic() - record.dispatched_at > self.response_window:
            return _error(404, "Unknown interaction", 10062)
        body = call.json or {}
        callback_type = int(body.get("type", 0))
        data = dict(body.get("data") or {})
        if callback_type == DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            data["flags"] = int(data.get("flags") or 0) | LOADING
        reply = InteractionReply("callback", callback_type, data, call.files, call.at)
        message = None
        if callback_type in (CHANNEL_MESSAGE_WITH_SOURCE, DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE):
            message = self._interaction_message(record, data, call.files)
            record.original_message = message
            reply.message_id = message["id"]
        record.responses.append(reply)
        result: dict[str, Any] = {
            "interaction": {
                "id": record.id,
                "type": 2,
                "response_message_id": message["id"] if message else None,
                "response_message_loading": callback_type == DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE,
                "response_message_ephemeral": reply.ephemeral,
            }
        }
        if message is not None:
            result["resource"] = {"type": callback_type, "message": message}
        return _json_response(result)

    def _interaction_message(
        self, record: InteractionRecord, data: Mapping[str, Any], files: list[UploadedFile]
    ) -> dict[str, Any]:
        channel = self.channel_by_id(record.channel_id)
        message = self._bot_message(channel, data, files)
        message["webhook_id"] = self.application_id
        message["application_id"] = self.application_id
        message["type"] = 20  # chat input command
        message["interaction_metadata"] = {
            "id": record.id,
            "type": 2,
            "name": record.name,
            "user": self._member(channel.guild_id, record.user_id).user,
            "authorizing_integration_owners": {"0": channel.guild_id},
        }
        # Ephemeral messages are seen only by the invoker, never in channel history.
        if not message["flags"] & EPHEMERAL:
            self._store(channel, message)
        return message

    def _record_for_token(self, application_id: str, token: str) -> InteractionRecord | None:
        if application_id != self.application_id:
            return None
        return next((r for r in self.interactions.values() if r.token == token), None)

    async def _followup(self, call: RestCall, application_id: str, token: str) -> web.Response:
        record = self._record_for_token(application_id, token)
        # Discord knows the webhook only once the interaction has been acknowledged.
        if record is None or not len(record.responses):
            return _error(404, "Unknown Webhook", 10015)
        data = dict(call.json or {})
        original = record.original_message
        if original is not None and original["flags"] & LOADING:
            # After a defer, Discord turns the first follow-up into an edit of the "thinking" message;
            # the ephemeral flag of the defer is kept and the follow-up's own flag is ignored.
            self._apply_edit(original, {k: v for k, v in data.items() if k != "flags"}, call.files)
            message = original
        else:
            message = self._interaction_message(record, data, call.files)
            message["type"] = 0
        record.followups.append(InteractionReply("followup", None, data, call.files, call.at, message["id"]))
        return _json_response(message)

    def _webhook_message(self, record: InteractionRecord, message_id: str) -> dict[str, Any] | None:
        if message_id == "@original":
            return record.original_message
        channel = self.channel_by_id(record.channel_id)
        return self._find_message(channel, message_id)

    async def _get_webhook_message(
        self, call: RestCall, application_id: str, token: str, message_id: str
    ) -> web.Response:
        record = self._record_for_token(application_id, token)
        message = self._webhook_message(record, message_id) if record else None
        if message is None:
            return _error(404, "Unknown Message", 10008)
        return _json_response(message)

    async def _edit_webhook_message(
        self, call: RestCall, application_id: str, token: str, message_id: str
    ) -> web.Response:
        record = self._record_for_token(application_id, token)
        if record is None or not len(record.responses):
            return _error(404, "Unknown Webhook", 10015)
        message = self._webhook_message(record, message_id)
        if message is None:
            return _error(404, "Unknown Message", 10008)
        data = dict(call.json or {})
        self._apply_edit(message, data, call.files)
        record.edits.append(InteractionReply("edit", None, data, call.files, call.at, message["id"]))
        return _json_response(message)

    async def _delete_webhook_message(
        self, call: RestCall, application_id: str, token: str, message_id: str
    ) -> web.Response:
        record = self._record_for_token(application_id, token)
        message = self._webhook_message(record, message_id) if record else None
        if message is None:
            return _error(404, "Unknown Message", 10008)
        channel = self.channel_by_id(message["channel_id"])
        if message in channel.messages:
            channel.messages.remove(message)
        return web.Response(status=204)

    def _apply_edit(
        self, message: dict[str, Any], data: Mapping[str, Any], files: list[UploadedFile]
    ) -> None:
        for key in ("content", "embeds", "components", "allowed_mentions"):
            if key in data:
                message[key] = data[key]
        if "attachments" in data:
            message["attachments"] = self._attachments(data, files)
        # An edit of a deferred response replaces the "thinking" placeholder.
        message["flags"] = int(data.get("flags", message.get("flags") or 0)) & ~LOADING
        message["edited_timestamp"] = _now_iso()

    async def _get_guild(self, call: RestCall, guild_id: str) -> web.Response:
        guild = self.guilds.get(guild_id)
        if guild is None:
            return _error(404, "Unknown Guild", 10004)
        payload = guild.to_payload(self.owner.id)
        for key in ("channels", "members", "threads", "presences", "voice_states"):
            payload.pop(key)
        return _json_response(payload)

    async def _get_member(self, call: RestCall, guild_id: str, user_id: str) -> web.Response:
        guild = self.guilds.get(guild_id)
        if guild is None or user_id not in guild.members:
            return _error(404, "Unknown Member", 10007)
        return _json_response(guild.members[user_id].to_payload())

    async def _get_channel(self, call: RestCall, channel_id: str) -> web.Response:
        try:
            return _json_response(self.channel_by_id(channel_id).to_payload())
        except KeyError:
            return _error(404, "Unknown Channel", 10003)

    async def _get_messages(self, call: RestCall, channel_id: str) -> web.Response:
        try:
            channel = self.channel_by_id(channel_id)
        except KeyError:
            return _error(404, "Unknown Channel", 10003)
        limit = int(call.query.get("limit", 50))
        if not 1 <= limit <= 100:
            return _error(400, f"Invalid Form Body: limit {limit}, expected 1 to 100", 50035)
        messages = channel.messages  # oldest first
        if "before" in call.query:
            before = int(call.query["before"])
            page = [m for m in messages if int(m["id"]) < before][-limit:]
        elif "after" in call.query:
            # The `limit` messages just after the id, still returned newest first.
            after = int(call.query["after"])
            page = [m for m in messages if int(m["id"]) > after][:limit]
        elif "around" in call.query:
            around = int(call.query["around"])
            older = [m for m in messages if int(m["id"]) <= around][-(limit - limit // 2) :]
            newer = [m for m in messages if int(m["id"]) > around][: limit // 2]
            page = older + newer
        else:
            page = messages[-limit:]
        return _json_response(list(reversed(page)))

    async def _get_message(self, call: RestCall, channel_id: str, message_id: str) -> web.Response:
        try:
            message = self._find_message(self.channel_by_id(channel_id), message_id)
        except KeyError:
            return _error(404, "Unknown Channel", 10003)
        if message is None:
            return _error(404, "Unknown Message", 10008)
        return _json_response(message)

    async def _post_message(self, call: RestCall, channel_id: str) -> web.Response:
        try:
            channel = self.channel_by_id(channel_id)
        except KeyError:
            return _error(404, "Unknown Channel", 10003)
        data = dict(call.json or {})
        if not (data.get("content") or data.get("embeds") or call.files or data.get("sticker_ids")):
            return _error(400, "Cannot send an empty message", 50006)
        if len(str(data.get("content") or "")) > 2000:
            return _error(400, "Invalid Form Body: content must be 2000 or fewer in length.", 50035)
        message = self._bot_message(channel, data, call.files)
        self._store(channel, message)
        return _json_response(message)

    async def _edit_message(self, call: RestCall, channel_id: str, message_id: str) -> web.Response:
        try:
            message = self._find_message(self.channel_by_id(channel_id), message_id)
        except KeyError:
            return _error(404, "Unknown Channel", 10003)
        if message is None:
            return _error(404, "Unknown Message", 10008)
        self._apply_edit(message, dict(call.json or {}), call.files)
        return _json_response(message)

    async def _delete_message(self, call: RestCall, channel_id: str, message_id: str) -> web.Response:
        try:
            channel = self.channel_by_id(channel_id)
        except KeyError:
            return _error(404, "Unknown Channel", 10003)
        message = self._find_message(channel, message_id)
        if message is None:
            return _error(404, "Unknown Message", 10008)
        channel.messages.remove(message)
        return web.Response(status=204)

    async def _typing(self, call: RestCall, channel_id: str) -> web.Response:
        return web.Response(status=204)


async def _read_body(request: web.Request) -> tuple[Any, list[UploadedFile]]:
    """Parse a JSON, form or multipart body. For multipart, `payload_json` becomes the JSON body."""
    if not request.body_exists:
        return None, []
    content_type = request.content_type
    if content_type.startswith("multipart/"):
        fields, files = await read_multipart(request)
        payload_json = fields.pop("payload_json", None)
        body: Any = json.loads(payload_json) if payload_json is not None else {}
        body.update({name: value.decode() for name, value in fields.items()})
        return body, files
    raw = await request.read()
    if content_type == "application/json":
        return (json.loads(raw) if raw else None), []
    if content_type == "application/x-www-form-urlencoded":
        return dict(await request.post()), []
    return raw, []
