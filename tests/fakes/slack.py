"""A fake Slack (Web API, Socket Mode, response_url, signed HTTP delivery) on 127.0.0.1 for tests.

Usage with slack-bolt in HTTP mode::

    async with FakeSlack() as fake:
        app = AsyncApp(
            client=AsyncWebClient(token=FakeSlack.BOT_TOKEN, base_url=fake.api_base_url),
            signing_secret=FakeSlack.SIGNING_SECRET,
        )
        ...serve app.web_app() on 127.0.0.1, then:
        result = await fake.post_signed_event(app_url, fake.event_callback(fake.app_mention("hi")))
        call = await fake.wait_for_call("chat.postMessage")

The fake seeds channels #general and #random and users alice, bob (humans) and otherbot (another
app's bot). Their ids differ from the app's own (`BOT_USER_ID`, `BOT_ID`), because Bolt drops events
from itself. Web API calls are kept in `fake.calls`; messages live in per-channel history that
`conversations.history` pages through by cursor, newest first.

Wire facts this relies on are in docs/platform-fakes.md (shared docs). Not modelled: OAuth, Events API
retries, rate limits (unless injected with `fail_next`), Block Kit validation.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import itertools
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlencode

import aiohttp
from aiohttp import WSMsgType, web

from tests.fakes._shared import EventLog, UploadedFile, read_multipart

# Slack refuses a request whose timestamp is more than five minutes from now.
STALE_AFTER_S = 60 * 5


class SignedPostResult(NamedTuple):
    """What the app answered to a signed delivery, and how long it took to answer (the ack)."""

    status: int
    body: str
    ack_seconds: float


@dataclass
class ApiCall:
    """One Web API call. `params` merges query string, form, JSON and multipart fields as sent."""

    method: str
    params: dict[str, Any]
    files: list[UploadedFile]
    token: str | None
    http_method: str
    at: float
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))

    def __str__(self) -> str:
        shown = {k: v for k, v in self.params.items() if k != "token"}
        return f"{self.method}({shown}) -> {self.response.get('ok')}/{self.response.get('error', '')}"


@dataclass
class ResponseUrlPost:
    """A post to a `response_url` the fake handed out (what Bolt's `respond()` sends)."""

    response_id: str
    body: dict[str, Any]
    at: float

    @property
    def text(self) -> str | None:
        return self.body.get("text")

    def __str__(self) -> str:
        return f"response {self.response_id}: {self.body}"


@dataclass
class SocketEnvelope:
    """A Socket Mode envelope the fake sent, and the app's ack for it."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    sent_at: float
    acks: EventLog[dict[str, Any]] = field(default_factory=EventLog)
    acked_at: float | None = None

    @property
    def ack_seconds(self) -> float | None:
        return None if self.acked_at is None else self.acked_at - self.sent_at

    async def wait_for_ack(self, timeout: float = 2.0) -> dict[str, Any]:
        """The ack frame: `{"envelope_id": ...}`, plus `"payload"` when the app answered with one."""
        return await self.acks.wait_for(None, timeout, what=f"ack of {self.type} envelope")


@dataclass
class FakeUser:
    id: str
    name: str
    is_bot: bool = False
    bot_id: str | None = None
    is_admin: bool = False
    # Set for a user of another organisation (a Slack Connect shared channel); None: the fake's team.
    home_team_id: str | None = None

    def to_payload(self, team_id: str) -> dict[str, Any]:
        team_id = self.home_team_id or team_id
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": False,
            "real_name": self.name.title(),
            "tz": "Europe/London",
            "is_bot": self.is_bot,
            "is_app_user": False,
            "is_admin": self.is_admin,
            "profile": {
                "real_name": self.name.title(),
                "display_name": self.name,
                "bot_id": self.bot_id,
                "team": team_id,
            },
        }


@dataclass
class FakeSlackChannel:
    """A public channel; `messages` is its top-level history, oldest first."""

    id: str
    name: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    replies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    is_private: bool = False

    def to_payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": True,
            "is_group": False,
            "is_im": False,
            "is_private": self.is_private,
            "is_archived": False,
            "is_general": self.name == "general",
            "is_member": True,
            "created": 1700000000,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "num_members": 4,
        }


@dataclass
class _Failure:
    method: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    remaining: int


class FakeSlack:
    """A Slack Web API + Socket Mode server on an ephemeral 127.0.0.1 port, for one test.

    Args:
        seed: create #general, #random, alice, bob and otherbot (`fake.general`, `fake.random`,
            `fake.alice`, `fake.bob`, `fake.other_bot`).
        bot_token, app_token, signing_secret: the credentials the fake accepts and signs with.
    """

    BOT_TOKEN = "xoxb-fake-bot-token"
    APP_TOKEN = "xapp-fake-app-token"
    SIGNING_SECRET = "fake-signing-secret"
    TEAM_ID = "T0FAKETEAM"
    APP_ID = "A0FAKEAPP1"
    BOT_USER_ID = "U0APPBOT01"
    BOT_ID = "B0APPBOT01"

    def __init__(
        self,
        *,
        seed: bool = True,
        bot_token: str = BOT_TOKEN,
        app_token: str = APP_TOKEN,
        signing_secret: str = SIGNING_SECRET,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.users: dict[str, FakeUser] = {}
        self.channels: dict[str, FakeSlackChannel] = {}
        self.calls: EventLog[ApiCall] = EventLog(str)
        self.response_posts: EventLog[ResponseUrlPost] = EventLog(str)
        self.envelopes: EventLog[SocketEnvelope] = EventLog(lambda e: e.envelope_id)
        self.socket_connections: EventLog[web.WebSocketResponse] = EventLog(lambda ws: "socket")
        self.uploads: dict[str, dict[str, Any]] = {}
        self._tickets: set[str] = set()
        self._sockets: list[web.WebSocketResponse] = []
        self._failures: list[_Failure] = []
        self._last_micros = 0
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.port = 0
        self.bot_user = self.add_user(self.BOT_USER_ID, "chatsmith", is_bot=True, bot_id=self.BOT_ID)
        if seed:
            self.general = self.add_channel("C0GENERAL1", "general")
            self.random = self.add_channel("C0RANDOM01", "random")
            self.alice = self.add_user("U0ALICE001", "alice")
            self.bob = self.add_user("U0BOB00001", "bob")
            self.other_bot = self.add_user("U0OTHERBOT", "otherbot", is_bot=True, bot_id="B0OTHERBOT")

    # ----------------------------------------------------------------- lifetime

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/link/", self._socket)
        app.router.add_post("/response/{response_id}", self._response_url)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._http = aiohttp.ClientSession()

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"fake shutting down")
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base_url(self) -> str:
        """The `base_url` for `AsyncWebClient`/`WebClient`; it ends in "/api/"."""
        return f"{self.base_url}/api/"

    # ----------------------------------------------------------------- world

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        is_bot: bool = False,
        bot_id: str | None = None,
        is_admin: bool = False,
        home_team_id: str | None = None,
    ) -> FakeUser:
        user = FakeUser(user_id, name, is_bot, bot_id, is_admin, home_team_id)
        self.users[user_id] = user
        return user

    def add_channel(self, channel_id: str, name: str, *, private: bool = False) -> FakeSlackChannel:
        channel = FakeSlackChannel(channel_id, name, is_private=private)
        self.channels[channel_id] = channel
        return channel

    def new_ts(self, at: float | None = None) -> str:
        """A message timestamp ("seconds.micros"); without `at`, strictly increasing."""
        micros = int((at if at is not None else time.time()) * 1_000_000)
        if at is None:
            micros = max(micros, self._last_micros + 1)
            self._last_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def add_message(
        self, channel_id: str, text: str, *, user: str | None = None, ts: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        """Store a message in a channel's history (thread replies, with `thread_ts`, go to the thread)."""
        channel = self.channels[channel_id]
        author = self.users[user or self._default_user_id()]
        message: dict[str, Any] = {
            "type": "message",
            "user": author.id,
            "text": text,
            "ts": ts or self.new_ts(),
            "team": self.TEAM_ID,
            **extra,
        }
        if author.bot_id:
            message["bot_id"] = author.bot_id
        self._store(channel, message)
        return message

    def add_history(self, channel_id: str, texts: Sequence[str], *, user: str | None = None) -> list[dict]:
        """Store many messages, oldest first, a minute apart, ending a minute before now."""
        start = time.time() - 60 * (len(texts) + 1)
        return [
            self.add_message(channel_id, text, user=user, ts=self.new_ts(start + 60 * i))
            for i, text in enumerate(texts)
        ]

    def messages_in(self, channel_id: str) -> list[dict[str, Any]]:
        """Top-level messages of a channel, oldest first."""
        return list(self.channels[channel_id].messages)

    def fail_next(
        self,
        method: str,
        *,
        error: str = "internal_error",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of Web API `method` (glob, e.g. "chat.*") answer `{"ok": false,
        "error": error}` with HTTP `status` (Slack reports most errors with 200; use 429 and a
        Retry-After header for rate limits)."""
        body = {"ok": False, "error": error}
        self._failures.append(_Failure(method, status, body, dict(headers or {}), times))

    async def wait_for_call(
        self, method: str, predicate: Callable[[ApiCall], bool] | None = None, timeout: float = 2.0
    ) -> ApiCall:
        """The first recorded Web API call of `method` (glob) that satisfies `predicate`."""

        def matches(call: ApiCall) -> bool:
            return fnmatch.fnmatchcase(call.method, method) and (predicate is None or predicate(call))

        return await self.calls.wait_for(matches, timeout, what=f"{method} call")

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if fnmatch.fnmatchcase(call.method, method)]

    async def wait_for_response_post(
        self, predicate: Callable[[ResponseUrlPost], bool] | None = None, timeout: float = 2.0
    ) -> ResponseUrlPost:
        """The first post to a fake-hosted `response_url` satisfying `predicate`."""
        return await self.response_posts.wait_for(predicate, timeout, what="response_url post")

    # ----------------------------------------------------------------- payload builders

    def new_response_url(self) -> str:
        return f"{self.base_url}/response/{uuid.uuid4().hex}"

    def event_callback(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Wrap an inner event in the `event_callback` envelope Slack delivers (HTTP or Socket Mode)."""
        now = int(time.time())
        return {
            "token": "fake-verification-token",
            "team_id": self.TEAM_ID,
            "api_app_id": self.APP_ID,
            "event": dict(event),
            "type": "event_callback",
            "event_id": f"Ev{next(self._ids):010d}",
            "event_time": now,
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.TEAM_ID,
                    "user_id": self.BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-fake-{uuid.uuid4().hex[:12]}",
        }

    def app_mention(
        self,
        text: str,
        *,
        user: str | None = None,
        channel: str | None = None,
        ts: str | None = None,
        thread_ts: str | None = None,
    ) -> dict[str, Any]:
        """An `app_mention` event. `<@BOT_USER_ID> ` is put in front of `text` unless it is there."""
        mention = f"<@{self.BOT_USER_ID}>"
        full_text = text if mention in text else f"{mention} {text}"
        event = self._message_fields(full_text, user, channel, ts, thread_ts)
        event["type"] = "app_mention"
        return event

    def message(
        self,
        text: str,
        *,
        user: str | None = None,
        channel: str | None = None,
        ts: str | None = None,
        thread_ts: str | None = None,
    ) -> dict[str, Any]:
        """A plain `message` event (channel_type "channel"). A bot author adds `bot_id` and subtype
        "bot_message", as Slack does for other apps' posts."""
        event = self._message_fields(text, user, channel, ts, thread_ts)
        event["channel_type"] = "channel"
        author = self.users[event["user"]]
        if author.bot_id:
            event["bot_id"] = author.bot_id
            event["subtype"] = "bot_message"
        return event

    def message_changed(self, channel: str, ts: str, new_text: str) -> dict[str, Any]:
        """A `message` event with subtype `message_changed`; edits the stored message if there is one."""
        stored = self._find(channel, ts)
        previous = (
            dict(stored)
            if stored
            else {"type": "message", "user": self._default_user_id(), "text": "", "ts": ts}
        )
        event_ts = self.new_ts()
        edited = {**previous, "text": new_text, "edited": {"user": previous.get("user"), "ts": event_ts}}
        if stored is not None:
            stored.update(edited)
        return {
            "type": "message",
            "subtype": "message_changed",
            "hidden": True,
            "channel": channel,
            "channel_type": "channel",
            "ts": event_ts,
            "event_ts": event_ts,
            "message": edited,
            "previous_message": previous,
        }

    def message_deleted(self, channel: str, ts: str) -> dict[str, Any]:
        """A `message` event with subtype `message_deleted`; removes the stored message if there is one."""
        stored = self._find(channel, ts)
        if stored is not None:
            self.channels[channel].messages.remove(stored)
        event_ts = self.new_ts()
        event: dict[str, Any] = {
            "type": "message",
            "subtype": "message_deleted",
            "hidden": True,
            "channel": channel,
            "channel_type": "channel",
            "ts": event_ts,
            "event_ts": event_ts,
            "deleted_ts": ts,
        }
        if stored is not None:
            event["previous_message"] = stored
        return event

    def slash_command_form(
        self,
        command: str,
        text: str = "",
        *,
        user: str | None = None,
        channel: str | None = None,
        response_url: str | None = None,
    ) -> dict[str, str]:
        """The form fields of a slash command, with a fresh fake-hosted `response_url`."""
        channel_id = channel or self._default_channel_id()
        user_id = user or self._default_user_id()
        return {
            "token": "fake-verification-token",
            "team_id": self.TEAM_ID,
            "team_domain": "fake",
            "channel_id": channel_id,
            "channel_name": self.channels[channel_id].name,
            "user_id": user_id,
            "user_name": self.users[user_id].name,
            "command": command,
            "text": text,
            "api_app_id": self.APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url or self.new_response_url(),
            "trigger_id": f"{next(self._ids)}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:16]}",
        }

    def _default_user_id(self) -> str:
        # The first human user: alice when seeded.
        for user in self.users.values():
            if not user.is_bot:
                return user.id
        raise ValueError("Received no user, expected one: add a user or pass user=")

    def _default_channel_id(self) -> str:
        # The first channel: #general when seeded.
        for channel_id in self.channels:
            return channel_id
        raise ValueError("Received no channel, expected one: add a channel or pass channel=")

    def _message_fields(
        self, text: str, user: str | None, channel: str | None, ts: str | None, thread_ts: str | None
    ) -> dict[str, Any]:
        message_ts = ts or self.new_ts()
        event: dict[str, Any] = {
            "user": user or self._default_user_id(),
            "text": text,
            "ts": message_ts,
            "channel": channel or self._default_channel_id(),
            "event_ts": message_ts,
            "team": self.TEAM_ID,
        }
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        return event

    # ----------------------------------------------------------------- HTTP-mode delivery

    def sign(self, body: str, timestamp: str, secret: str | None = None) -> str:
        """`v0=` + HMAC-SHA256 of `v0:{timestamp}:{body}`, as Slack signs requests."""
        key = (secret if secret is not None else self.signing_secret).encode()
        digest = hmac.new(key, f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
        return f"v0={digest}"

    async def post_signed(
        self,
        app_url: str,
        body: str,
        content_type: str,
        *,
        secret: str | None = None,
        forge: bool = False,
        stale: bool = False,
        retry: int = 0,
    ) -> SignedPostResult:
        """POST a raw body to the app the way Slack does, signed with `secret` (default the fake's).

        Args:
            forge: sign with a wrong secret; the app must answer 401.
            stale: date the request ten minutes back (and sign that); the app must answer 401.
            retry: Slack's retry number of this delivery (sent as `X-Slack-Retry-Num` when not 0).
        """
        assert self._http is not None, "FakeSlack is not started"
        timestamp = str(int(time.time()) - (2 * STALE_AFTER_S if stale else 0))
        signing_secret = secret if secret is not None else self.signing_secret
        signature = self.sign(body, timestamp, signing_secret + "-forged" if forge else signing_secret)
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        }
        if retry:
            headers["X-Slack-Retry-Num"] = str(retry)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        started = time.monotonic()
        async with self._http.post(app_url, data=body.encode(), headers=headers) as response:
            text = await response.text()
            return SignedPostResult(response.status, text, time.monotonic() - started)

    async def post_signed_event(
        self,
        app_url: str,
        payload: Mapping[str, Any],
        secret: str | None = None,
        *,
        forge: bool = False,
        stale: bool = False,
        retry: int = 0,
    ) -> SignedPostResult:
        """Deliver an Events API payload (JSON), e.g. `fake.event_callback(fake.app_mention("hi"))`."""
        return await self.post_signed(
            app_url,
            json.dumps(payload),
            "application/json",
            secret=secret,
            forge=forge,
            stale=stale,
            retry=retry,
        )

    async def post_signed_slash_command(
        self,
        app_url: str,
        form: Mapping[str, str] | None = None,
        secret: str | None = None,
        *,
        command: str = "/ask",
        text: str = "",
        forge: bool = False,
        stale: bool = False,
    ) -> SignedPostResult:
        """Deliver a slash command (form-encoded). Without `form`, one is built from `command`/`text`;
        build it yourself with `slash_command_form` to know its `response_url`."""
        fields = form if form is not None else self.slash_command_form(command, text)
        return await self.post_signed(
            app_url,
            urlencode(fields),
            "application/x-www-form-urlencoded",
            secret=secret,
            forge=forge,
            stale=stale,
        )

    # ----------------------------------------------------------------- Socket Mode delivery

    async def wait_for_socket(self, timeout: float = 2.0) -> None:
        """Wait until an app has connected over Socket Mode and been sent `hello`."""
        await self.socket_connections.wait_for(
            lambda ws: not ws.closed, timeout, what="Socket Mode connection"
        )

    async def send_socket_envelope(
        self,
        envelope_type: str,
        payload: Mapping[str, Any],
        *,
        accepts_response_payload: bool = False,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> SocketEnvelope:
        """Send an envelope on the newest open Socket Mode connection.

        Raises:
            RuntimeError: no app is connected.
        """
        sockets = [ws for ws in self._sockets if not ws.closed]
        if not sockets:
            raise RuntimeError(f"Received a {envelope_type} envelope to send with no Socket Mode connection")
        envelope = SocketEnvelope(str(uuid.uuid4()), envelope_type, dict(payload), time.monotonic())
        self.envelopes.append(envelope)
        frame = {
            "envelope_id": envelope.envelope_id,
            "type": envelope_type,
            "payload": envelope.payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        await sockets[-1].send_str(json.dumps(frame))
        return envelope

    async def send_socket_event(self, event: Mapping[str, Any], **options: Any) -> SocketEnvelope:
        """Send an `events_api` envelope. `event` is an inner event (wrapped with `event_callback`)
        or an already wrapped payload."""
        payload = event if event.get("type") == "event_callback" else self.event_callback(event)
        return await self.send_socket_envelope("events_api", payload, **options)

    async def send_socket_slash_command(
        self, command: str = "/ask", text: str = "", *, form: Mapping[str, str] | None = None, **options: Any
    ) -> SocketEnvelope:
        """Send a `slash_commands` envelope; its `payload` holds the form fields, `response_url` included."""
        payload = form if form is not None else self.slash_command_form(command, text)
        return await self.send_socket_envelope(
            "slash_commands", payload, accepts_response_payload=True, **options
        )

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        try:
            hello = {
                "type": "hello",
                "num_connections": len(self._sockets),
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.APP_ID},
            }
            await ws.send_str(json.dumps(hello))
            self.socket_connections.append(ws)
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    self._record_ack(json.loads(frame.data))
        finally:
            self._sockets.remove(ws)
        return ws

    def _record_ack(self, ack: dict[str, Any]) -> None:
        envelope = next((e for e in self.envelopes if e.envelope_id == ack.get("envelope_id")), None)
        if envelope is None:
            return
        if envelope.acked_at is None:
            envelope.acked_at = time.monotonic()
        envelope.acks.append(ack)

    # ----------------------------------------------------------------- response_url and uploads

    async def _response_url(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw) if raw else {}
        self.response_posts.append(ResponseUrlPost(request.match_info["response_id"], body, time.monotonic()))
        return web.Response(text="ok", content_type="text/plain")

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id not in self.uploads:
            return web.Response(status=404, text="unknown upload", content_type="text/plain")
        data = await request.read()
        self.uploads[file_id]["data"] = data
        # The real upload host answers in text/plain; slack_sdk checks for that content type.
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    # ----------------------------------------------------------------- Web API

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, files = await _read_params(request)
        token = _bearer(request) or params.pop("token", None)
        call = ApiCall(method, params, files, token, request.method, time.monotonic())
        status, headers = 200, {}
        failure = next((f for f in self._failures if fnmatch.fnmatchcase(method, f.method)), None)
        if failure is not None:
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._failures.remove(failure)
            call.response, status, headers = dict(failure.body), failure.status, failure.headers
        else:
            call.response = self._answer(call)
        self.calls.append(call)
        return web.json_response(call.response, status=status, headers=headers)

    def _answer(self, call: ApiCall) -> dict[str, Any]:
        handler = getattr(self, "_api_" + call.method.replace(".", "_"), None)
        if handler is None:
            return {"ok": False, "error": "unknown_method"}
        if not call.token:
            return {"ok": False, "error": "not_authed"}
        if call.method == "apps.connections.open":
            if call.token != self.app_token:
                return {"ok": False, "error": "not_allowed_token_type" if call.token else "invalid_auth"}
        elif call.token == self.app_token:
            return {"ok": False, "error": "not_allowed_token_type"}
        elif call.token != self.bot_token:
            return {"ok": False, "error": "invalid_auth"}
        try:
            return handler(call.params, call.files)
        except _ApiError as error:
            return {"ok": False, "error": str(error)}

    def _channel(self, params: Mapping[str, Any], key: str = "channel") -> FakeSlackChannel:
        channel_id = params.get(key)
        if channel_id not in self.channels:
            raise _ApiError("channel_not_found")
        return self.channels[channel_id]

    def _api_auth_test(self, params: dict[str, Any], files: list[UploadedFile]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": self.bot_user.name,
            "team_id": self.TEAM_ID,
            "user_id": self.BOT_USER_ID,
            "bot_id": self.BOT_ID,
            "is_enterprise_install": False,
        }

    def _api_apps_connections_open(self, params: dict[str, Any], files: list[UploadedFile]) -> dict[str, Any]:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}"}

    def _bot_message(self, params: Mapping[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "text": params.get("text") or "",
            "user": self.BOT_USER_ID,
            "bot_id": self.BOT_ID,
            "app_id": self.APP_ID,
            "ts": self.new_ts(),
            "team": self.TEAM_ID,
            "bot_profile": {"id": self.BOT_ID, "app_id": self.APP_ID, "name": self.bot_user.name},
        }
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if params.get(key):
                message[key] = params[key]
        return message

    def _api_chat_postMessage(self, params: dict[str, Any], files: list[UploadedFile]) -> dict[str, Any]:
        channel = self._channel(params)
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            raise _ApiError("no_text")
        if len(str(params.get("text") or "")) > 40000:
            raise _ApiError("msg_too_long")
        message = self._bot_message(params)
        self._store(channel, message)
        return {"ok": True, "channel": channel.id, "ts": message["ts"], "message": message}

    def _api_chat_postEphemeral(self, params: dict[str, Any], files: list[UploadedFile]) -> dict[str, Any]:
        self._channel(params)
        if params.get("user") not in self.users:
            raise _ApiError("user_not_found")
        if not (params.get("text") or params.get("blocks") or params.get("attachments")):
            raise _ApiError("no_text")
        # Ephemeral messages are seen only by `user` and never appear in history.
        return {"ok": True, "message_ts": self.new_ts()}

    def _api_chat_update(self, params: dict[str, Any], files: list[UploadedFile]) -> dict[str, Any]:
        channel = self._channel(params)
        message = self._find(channel.id, str(params.get("ts")))
        if message is None:
            raise _ApiError("message_not_found")
        if message.get("user") != self.BOT_USER_ID:
            raise _ApiError("cant_update_message")
        for key in ("text", "blocks", "attachments"):
            if key in params:
                message[key] = params[key]
        message["edited"] = {"user": self.BOT_USER_ID, "ts": self.new_ts()}
        return {
            "ok": True,
            "channel": channel.id,
            "ts": message["ts"],
            "text": message["text"],
            "message": message,
        }

    def _api_chat_delete(self, params: dict[str, Any], files: list[UploadedFile]) -> dict[str, Any]:
        channel = self._channel(params)
        message = self._find(channel.id, str(params.get("ts")))
        if message is None:
            raise _ApiError("message_not_found")
        if message in channel.messages:
            channel.messages.remove(message)
        return {"ok": True, "channel": channel.id, "ts": message["ts"]}

    def _api_reactions_add(self, params: dict[str, Any], files: list[UploadedFile]) -> dict[str, Any]:
        channel = self._channel(params)
        message = self._find(channel.id, str(params.get("timestamp")))
        if message is None:
            raise _ApiError("message_not_found")
        reactions = message.setdefault("reactions", [])
        reaction = next((r for r in reactions if r["name"] == params.get("name")), None)
        if reaction is None:
            reactions.append({"name": params.get("name"), "users": [self.BOT_USER_ID], "count": 1})
        elif self.BOT_USER_ID in reaction["users"]:
            raise _ApiError("already_reacted")
        else:
            reaction["users"].append(self.BOT_USER_ID)
            reaction["count"] += 1
        return {"ok": True}

    def _api_conversations_history(self, params: dict[str, Any], files: list[UploadedFile]) -> dict[str, Any]:
        channel = self._channel(params)
        limit = max(1, min(int(params.get("limit") or 100), 999))
        inclusive = str(params.get("inclusive", "")).lower() in ("1", "true")
        latest = _ts_key(params.get("latest")) if params.get("latest") else None
        oldest = _ts_key(params.get("oldest")) if params.get("oldest") else None
        newest_first = list(reversed(channel.messages))
        selected = [
            m
            for m in newest_first
            if (latest is None or _ts_key(m["ts"]) < latest or (inclusive and _ts_key(m["ts"]) == latest))
            and (oldest is None or _ts_key(m["ts"]) > oldest or (inclusive and _ts_key(m["ts"]) == oldest))
        ]
        start = 0
        if params.get("cursor"):
            try:
                next_ts = base64.b64decode(str(params["cursor"])).decode().removeprefix("next_ts:")
                start = next(i for i, m in enumerate(selected) if m["ts"] == next_ts)
            except (ValueError, StopIteration, UnicodeDecodeError):
                raise _ApiError("invalid_cursor") from None
        page = selected[start : start + limit]
        has_more = start + limit < len(selected)
        # Slack's cursors are base64 of "next_ts:<ts of the first message of the next page>".
        next_cursor = (
            base64.b64encode(f"next_ts:{selected[start + limit]['ts']}".encode()).decode() if has_more else ""
        )
        return {
            "ok": True,
            "messages": page,
            "has_more": has_more,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _api_conversations_replies(self, params: dict[str, Any], files: list[UploadedFile]) -> dict[str, Any]:
        channel = self._channel(params)
        parent = self._find(channel.id, str(params.get("ts")))
        if parent is None:
            raise _ApiError("thread_not_found")
        replies = channel.replies.get(parent["ts"], [])
        return {"ok": True, "messages": [parent, *replies], "has_more": False}

    def _api_conversations_info(self, params: dict[str, Any], files: list[UploadedFile]) -> dict[str, Any]:
        return {"ok": True, "channel": self._channel(params).to_payload()}

    def _api_conversations_open(self, params: dict[str, Any], files: list[UploadedFile]) -> dict[str, Any]:
        """A direct message channel with the user(s), made on first use (ids "D" + the user id's tail)."""
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if len(users) != 1 or users[0] not in self.users:
            raise _ApiError("user_not_found")
        channel_id = f"D{users[0][1:]}"
        if channel_id not in self.channels:
            self.channels[channel_id] = FakeSlackChannel(channel_id, users[0], is_private=True)
        return {"ok": True, "channel": {"id": channel_id}}

    def _api_users_info(self, params: dict[str, Any], files: list[UploadedFile]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user")))
        if user is None:
            raise _ApiError("user_not_found")
        return {"ok": True, "user": user.to_payload(self.TEAM_ID)}

    def _new_file(self, name: str, title: str | None, data: bytes | None) -> dict[str, Any]:
        file_id = f"F{next(self._ids):09d}"
        record = {"id": file_id, "name": name, "title": title or name, "data": data}
        self.uploads[file_id] = record
        return record

    def _file_payload(self, record: Mapping[str, Any]) -> dict[str, Any]:
        data = record.get("data") or b""
        return {
            "id": record["id"],
            "name": record["name"],
            "title": record["title"],
            "mimetype": "text/plain",
            "filetype": "text",
            "size": len(data),
            "user": self.BOT_USER_ID,
            "url_private": f"{self.base_url}/files/{record['id']}/{record['name']}",
        }

    def _share_files(
        self, channel_ids: Sequence[str], records: Sequence[Mapping[str, Any]], comment: str
    ) -> None:
        for channel_id in channel_ids:
            channel = self.channels.get(channel_id)
            if channel is None:
                raise _ApiError("channel_not_found")
            message = self._bot_message({"text": comment})
            message["files"] = [self._file_payload(r) for r in records]
            message["upload"] = True
            self._store(channel, message)

    def _api_files_upload(self, params: dict[str, Any], files: list[UploadedFile]) -> dict[str, Any]:
        upload = next((f for f in files if f.field == "file"), None)
        if upload is None and "content" not in params:
            raise _ApiError("no_file_data")
        data = upload.data if upload else str(params["content"]).encode()
        name = params.get("filename") or (upload.filename if upload else None) or "file"
        record = self._new_file(name, params.get("title"), data)
        channels = [c for c in str(params.get("channels") or "").split(",") if c]
        self._share_files(channels, [record], str(params.get("initial_comment") or ""))
        return {"ok": True, "file": self._file_payload(record)}

    def _api_files_getUploadURLExternal(self, params: dict[str, Any], files: list[UploadedFile]) -> dict:
        if not params.get("filename") or not params.get("length"):
            raise _ApiError("invalid_arguments")
        record = self._new_file(str(params["filename"]), None, None)
        return {"ok": True, "upload_url": f"{self.base_url}/upload/{record['id']}", "file_id": record["id"]}

    def _api_files_completeUploadExternal(self, params: dict[str, Any], files: list[UploadedFile]) -> dict:
        entries = params.get("files")
        if isinstance(entries, str):
            entries = json.loads(entries)
        records = []
        for entry in entries or []:
            record = self.uploads.get(entry.get("id"))
            if record is None or record.get("data") is None:
                raise _ApiError("file_not_found")
            record["title"] = entry.get("title") or record["title"]
            records.append(record)
        channels = [c for c in str(params.get("channel_id") or params.get("channels") or "").split(",") if c]
        self._share_files(channels, records, str(params.get("initial_comment") or ""))
        return {"ok": True, "files": [self._file_payload(r) for r in records]}

    # ----------------------------------------------------------------- store

    @staticmethod
    def _store(channel: FakeSlackChannel, message: dict[str, Any]) -> None:
        thread_ts = message.get("thread_ts")
        if thread_ts and thread_ts != message["ts"]:
            channel.replies.setdefault(thread_ts, []).append(message)
            parent = next((m for m in channel.messages if m["ts"] == thread_ts), None)
            if parent is not None:
                parent["reply_count"] = len(channel.replies[thread_ts])
                parent["thread_ts"] = thread_ts
            return
        channel.messages.append(message)
        channel.messages.sort(key=lambda m: _ts_key(m["ts"]))

    def _find(self, channel_id: str, ts: str) -> dict[str, Any] | None:
        channel = self.channels.get(channel_id)
        if channel is None:
            return None
        for message in channel.messages:
            if message["ts"] == ts:
                return message
        for replies in channel.replies.values():
            for message in replies:
                if message["ts"] == ts:
                    return message
        return None


class _ApiError(Exception):
    """A Web API error code, answered as `{"ok": false, "error": code}`."""


def _ts_key(ts: Any) -> tuple[int, int]:
    seconds, _, micros = str(ts).partition(".")
    return int(seconds), int(micros.ljust(6, "0")[:6] or 0)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[len("Bearer ") :] if header.startswith("Bearer ") else None


async def _read_params(request: web.Request) -> tuple[dict[str, Any], list[UploadedFile]]:
    """Merge query string, JSON, form and multipart fields; multipart file parts are returned apart."""
    params: dict[str, Any] = dict(request.query)
    files: list[UploadedFile] = []
    if not request.body_exists:
        return params, files
    content_type = request.content_type
    if content_type.startswith("multipart/"):
        fields, files = await read_multipart(request)
        params.update({name: value.decode() for name, value in fields.items()})
    elif content_type == "application/json":
        raw = await request.read()
        params.update(json.loads(raw) if raw else {})
    else:
        params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    return params, files
