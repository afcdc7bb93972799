"""The Slack adapter (slack-bolt, asyncio): app mentions, slash commands and message collection.

Socket Mode by default (an outbound websocket, no public URL); HTTP mode serves the Events API with
Bolt's request-signature check. Slash commands are acknowledged before anything slow happens, and events
are acknowledged by Bolt before their listeners run, so Slack's 3-second deadline is always met.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.catalog import ADMIN_COMMANDS, COMMANDS, DECLARED
from bot.core.commands import CommandCore
from bot.core.errors import ConfigurationError
from bot.core.parsing import CATCH_ALL, command_for_slash, parse_command_text
from bot.core.platform import ErrorReporter
from bot.core.request import ADMINISTRATOR, ArgValue, IncomingMessage, Reply, Request
from bot.core.runner import Adapter
from bot.core.services import Services
from bot.core.shutdown import RESTARTING, InFlight
from bot.slack_platform import (
    CONVERSATION_SUBTYPES,
    MentionReplies,
    PrivacyCache,
    SlackConfig,
    SlashReplies,
    addressed_to_bot,
    check_slack_config,
    history_reader,
    ts_time,
)

log = logging.getLogger(__name__)

# The slash commands the manifest registers: the commands declared with one of their own, and
# `/chatsmith <command>` for every declared command.
SLASH_COMMANDS = (*(f"/{spec.name}" for spec in DECLARED if spec.own_slash), f"/{CATCH_ALL}")
# How long a users.info answer about admin rights is trusted: a demoted admin keeps them this long at most.
ADMIN_CACHE_S = 60.0
# Event ids remembered to answer Slack's retries of a delivery once (it retries for about an hour).
SEEN_EVENTS_MAX = 10_000


class SlackBot:
    """The Bolt app and what its listeners share.

    Args:
        app: The Bolt app (listeners are registered by `build_slack_app`).
        core: The command core.
    """

    def __init__(self, app: AsyncApp, core: CommandCore) -> None:
        self.app = app
        self.core = core
        self._admins: dict[tuple[str, str, str], tuple[float, bool]] = {}
        self._next_admin_prune = time.monotonic() + ADMIN_CACHE_S
        self._privacy = PrivacyCache(ADMIN_CACHE_S)
        self._seen_events: OrderedDict[str, None] = OrderedDict()
        self.error_reporter = ErrorReporter("slack")
        # Recent unexpected errors, newest last (operators and tests look here; the log has the detail).
        self.errors = self.error_reporter.errors
        # Commands being answered, so that a stop can let them finish or tell them (SIGTERM).
        self.in_flight = InFlight()

    # ------------------------------------------------------------------ requests

    async def request(
        self,
        replies: MentionReplies | SlashReplies,
        team: str,
        command: str,
        args: dict[str, ArgValue],
        enterprise: str = "",
        bot_user_id: str = "",
    ) -> Request:
        """The core's request for `command` from the caller `replies` answers."""
        client, channel, user = replies.client, replies.channel, replies.user
        permissions: frozenset[str] = frozenset()
        # users.info is asked only for admin commands: ordinary ones need no rights and no extra call.
        if command in ADMIN_COMMANDS and await self._is_workspace_admin(client, team, enterprise, user):
            permissions = frozenset({ADMINISTRATOR})
        request = Request(
            platform="slack",
            workspace=team,
            channel=channel,
            user=user,
            command=command or "help",
            args=args,
            permissions=permissions,
            policy=self.core.config.policy,
            history=history_reader(client, channel, bot_user_id),
            progress=replies.progress,
        )
        if command not in ADMIN_COMMANDS or not request.is_admin:
            # Asked only once the caller may run the command: a refused one must not spend the rate limit.
            return request
        private = await self._privacy.is_private(client, team, channel)
        return replace(request, channel_private=private, channel_privacy_unknown=private is None)

    async def _is_workspace_admin(
        self, client: AsyncWebClient, team: str, enterprise: str, user: str
    ) -> bool:
        """Whether `user` is an admin or owner of this workspace (or of its Enterprise Grid organisation).

        An admin of another organisation, met in a shared channel, is not: `is_admin` speaks of their own.
        """
        key = (team, enterprise, user)
        cached = self._admins.get(key)
        if cached is not None and time.monotonic() - cached[0] < ADMIN_CACHE_S:
            return cached[1]
        try:
            info = (await client.users_info(user=user))["user"]
            home_enterprise = str((info.get("enterprise_user") or {}).get("enterprise_id") or "")
            same_org = str(info.get("team_id") or "") == team or bool(
                enterprise and home_enterprise == enterprise
            )
            rights = bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))
            if rights and not same_org:
                log.info("user %s is an admin of another organisation; no admin rights here", user)
            admin = rights and same_org
        except SlackApiError:
            # No answer means no rights (deny by default); configured admin ids still work.
            log.warning("users.info failed for %s; treating as not an admin", user, exc_info=True)
            admin = False
        now = time.monotonic()
        if now >= self._next_admin_prune:
            # Answers past their time are dropped, not only ignored: one entry per user ever seen would
            # otherwise stay for the life of the process.
            self._admins = {k: v for k, v in self._admins.items() if now - v[0] < ADMIN_CACHE_S}
            self._next_admin_prune = now + ADMIN_CACHE_S
        self._admins[key] = (now, admin)
        return admin

    @property
    def cached_admin_answers(self) -> int:
        """users.info answers held (the ones still within `ADMIN_CACHE_S`, and those since the last prune)."""
        return len(self._admins)

    def first_delivery(self, body: dict[str, Any]) -> bool:
        """False for an event already handled: Slack delivers an event again (with `X-Slack-Retry-Num`)
        when the first answer was slow or lost, and a retry must not be answered twice."""
        event_id = str(body.get("event_id") or "")
        if not event_id:
            return True
        if event_id in self._seen_events:
            log.info("event %s delivered again (a retry); already handled", event_id)
            return False
        self._seen_events[event_id] = None
        if len(self._seen_events) > SEEN_EVENTS_MAX:
            self._seen_events.popitem(last=False)
        return True

    # ------------------------------------------------------------------ listeners

    async def on_mention(
        self, event: dict[str, Any], context: Any, client: AsyncWebClient, body: dict[str, Any]
    ) -> None:
        """A mention; once the bot is stopping, the caller is told to try again (`bot.core.shutdown`)."""
        replies = MentionReplies(client, str(event["channel"]), str(event.get("user") or ""), event)
        await self.in_flight.answer(
            lambda: replies.private(Reply(RESTARTING)),
            lambda: self._on_mention(event, context, replies, body),
        )

    async def _on_mention(
        self, event: dict[str, Any], context: Any, replies: MentionReplies, body: dict[str, Any]
    ) -> None:
        if not self.first_delivery(body):
            return
        text = _strip_mention(str(event.get("text") or ""), context.bot_user_id)
        command, args = parse_command_text(text)
        if command not in COMMANDS and text.strip():
            # Said to the bot rather than a command: the reply is the conversation's next message.
            command, args = "generate", {"reply_to": text}
        team = str(context.team_id or event.get("team") or "")
        request = await self.request(
            replies, team, command, args, str(context.enterprise_id or ""), str(context.bot_user_id or "")
        )
        reply = await self.core.handle(request)
        await replies.finish_progress()
        await replies.send(reply)

    async def on_slash(
        self, ack: Any, command: dict[str, Any], respond: Any, client: AsyncWebClient, context: Any
    ) -> None:
        """A slash command, acknowledged first, always: everything after may take longer than Slack's 3
        seconds. Once the bot is stopping, the caller is told to try again."""
        await ack()
        replies = SlashReplies(client, str(command["channel_id"]), str(command["user_id"]), respond)
        await self.in_flight.answer(
            lambda: replies.private(Reply(RESTARTING)), lambda: self._on_slash(command, replies, context)
        )

    async def _on_slash(self, command: dict[str, Any], replies: SlashReplies, context: Any) -> None:
        name, args = command_for_slash(str(command["command"]), str(command.get("text") or ""))
        enterprise, bot_user_id = str(command.get("enterprise_id") or ""), str(context.bot_user_id or "")
        request = await self.request(replies, str(command["team_id"]), name, args, enterprise, bot_user_id)
        await replies.send(await self.core.handle(request))

    async def on_channel_gone(self, event: dict[str, Any], context: Any) -> None:
        """channel_deleted, channel_left, group_deleted, group_left: the channel stops feeding any model."""
        channel = event.get("channel")
        channel_id = channel.get("id") if isinstance(channel, dict) else channel
        if context.team_id and channel_id:
            await self.core.channel_gone("slack", str(context.team_id), str(channel_id))

    async def on_message(self, event: dict[str, Any], context: Any, body: dict[str, Any]) -> None:
        if not self.first_delivery(body):
            return
        subtype = event.get("subtype")
        team = str(context.team_id or event.get("team") or "")
        channel = str(event.get("channel") or "")
        if subtype == "message_changed":
            message = event.get("message") or {}
            if "ts" in message:
                await self.core.edit_message(
                    "slack", team, channel, str(message["ts"]), str(message.get("text") or "")
                )
            return
        if subtype == "message_deleted":
            if event.get("deleted_ts"):
                await self.core.delete_message("slack", team, channel, str(event["deleted_ts"]))
            return
        if subtype not in CONVERSATION_SUBTYPES or event.get("bot_id") or not event.get("user"):
            return
        text = str(event.get("text") or "")
        if addressed_to_bot(text, context.bot_user_id):
            return  # a command to the bot (also delivered as app_mention), not conversation
        await self.core.collect_message(
            IncomingMessage(
                platform="slack",
                workspace=team,
                channel=channel,
                message_id=str(event["ts"]),
                author_id=str(event["user"]),
                text=text,
                created_at=ts_time(event["ts"]),
            )
        )

    async def on_error(self, error: Exception, body: dict[str, Any], client: AsyncWebClient) -> None:
        """The adapter's one error handler: log, tell the caller in one line where possible, never raise."""
        channel, user = _caller(body)

        async def tell(text: str) -> None:
            await client.chat_postEphemeral(channel=str(channel), user=str(user), text=text)

        await self.error_reporter.report(error, "listener", tell if channel and user else None)


def _strip_mention(text: str, bot_user_id: str | None) -> str:
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    return text.strip()


def _caller(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """Channel and user of the request in `body` (slash command or event), where there is one."""
    if "channel_id" in body and "user_id" in body:
        return str(body["channel_id"]), str(body["user_id"])
    event = body.get("event") or {}
    if event.get("type") == "app_mention":
        return event.get("channel"), event.get("user")
    return None, None


def build_slack_app(config: SlackConfig, services: Services, *, core: CommandCore | None = None) -> SlackBot:
    """The Slack bot for chatsmith, not yet connected: `bot.app` is the Bolt `AsyncApp`.

    Run it with `AsyncSocketModeHandler(bot.app, app_token)` (Socket Mode) or serve `bot.app.web_app()`
    (HTTP mode; see `serve_http`).

    Raises:
        ConfigurationError: No bot token.
    """
    token = config.bot_token.strip()
    if not token:
        raise ConfigurationError("no Slack bot token: set SLACK_BOT_TOKEN to the app's xoxb-... token")
    client = AsyncWebClient(token=token, base_url=config.api_url)
    app = AsyncApp(
        client=client,
        # Socket Mode needs no signing secret (the socket is authenticated); HTTP mode checks it.
        signing_secret=config.signing_secret.strip(),
    )
    bot = SlackBot(app, core or CommandCore(services))
    app.event("app_mention")(bot.on_mention)
    app.event("message")(bot.on_message)
    # A channel deleted, or one the bot was removed from, takes its messages back from the models.
    for gone in ("channel_deleted", "channel_left", "group_deleted", "group_left"):
        app.event(gone)(bot.on_channel_gone)
    for name in SLASH_COMMANDS:
        app.command(name)(bot.on_slash)
    app.error(bot.on_error)
    return bot


async def serve_http(bot: SlackBot, host: str, port: int, path: str = "/slack/events") -> web.AppRunner:
    """Serve the Events API and slash commands at `http://host:port/path`; clean up the returned runner."""
    runner = web.AppRunner(bot.app.web_app(path=path), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


class _SlackServer:
    """The Slack app as the shared runner (`bot.core.runner`) drives it, in Socket Mode or HTTP mode."""

    def __init__(self, config: SlackConfig, services: Services) -> None:
        check_slack_config(config)
        self.config = config
        self.bot = build_slack_app(config, services)
        self.in_flight = self.bot.in_flight
        self._closed = asyncio.Event()
        self._close: Callable[[], Any] | None = None

    async def serve(self) -> None:
        config = self.config
        if config.mode == "http":
            runner = await serve_http(self.bot, config.http_host, config.http_port, config.http_path)
            log.info(
                "serving Slack events on http://%s:%d%s", config.http_host, config.http_port, config.http_path
            )
            self._close = runner.cleanup
        else:
            from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

            handler = AsyncSocketModeHandler(self.bot.app, config.app_token.strip())
            await handler.connect_async()
            self._close = handler.close_async
        await self._closed.wait()

    async def close(self) -> None:
        self._closed.set()
        if self._close is not None:
            await self._close()


ADAPTER = Adapter(config_type=SlackConfig, check_config=check_slack_config, build_server=_SlackServer)
