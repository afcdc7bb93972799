"""Slack's side of the platform contract (`bot.core.platform`): its settings, how a request is answered, the
privacy lookup and the history reader; the Bolt app itself is `bot.slack_app`.

Slash commands are answered through their response URL, mentions with messages in their channel or thread.
A private file goes to the caller's direct messages, as Slack has no ephemeral files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import ConfigurationError
from bot.core.platform import Replies, ThrottledProgress, message_limit
from bot.core.request import HistoryMessage, HistoryReader, Reply

log = logging.getLogger(__name__)

SLACK_LIMIT = message_limit("slack")
HISTORY_PAGE = 200
# Plain messages; every other subtype (joins, bot posts, channel changes) is not conversation.
CONVERSATION_SUBTYPES = (None, "thread_broadcast", "file_share")


class SlackReplies(Replies):
    """Answers to one request in a Slack channel; a private file goes to the caller's direct messages
    (Slack has no ephemeral files)."""

    def __init__(self, client: AsyncWebClient, channel: str, user: str) -> None:
        self.client = client
        self.channel = channel
        self.user = user

    async def _send_file_privately(self, reply: Reply) -> None:
        opened = await self.client.conversations_open(users=self.user)
        await self.client.files_upload_v2(
            channel=str(opened["channel"]["id"]),
            content=reply.file,
            filename=reply.filename or "attachment",
            initial_comment=reply.text,
        )


class SlashReplies(SlackReplies):
    """A slash command's answers: through its response URL, progress replacing the private answer."""

    def __init__(self, client: AsyncWebClient, channel: str, user: str, respond: Any) -> None:
        super().__init__(client, channel, user)
        self.respond = respond
        self.progress = ThrottledProgress(self._show_progress, SLACK_LIMIT)

    async def _show_progress(self, text: str) -> None:
        await self.respond(text=text, response_type="ephemeral", replace_original=True)

    async def private(self, reply: Reply) -> None:
        await self.respond(text=reply.text, response_type="ephemeral")
        if reply.file is not None:
            await self._send_file_privately(reply)

    async def public(self, reply: Reply) -> None:
        await self.respond(text=reply.text, response_type="in_channel")
        if reply.file is not None:
            await self.client.files_upload_v2(
                channel=self.channel, content=reply.file, filename=reply.filename or "attachment.png"
            )


class MentionReplies(SlackReplies):
    """A mention's answers: in its thread, if any; progress is one message, updated in place and removed
    at the end."""

    def __init__(self, client: AsyncWebClient, channel: str, user: str, event: dict[str, Any]) -> None:
        super().__init__(client, channel, user)
        self.thread: str | None = event.get("thread_ts")
        self.progress = ThrottledProgress(self._show_progress, SLACK_LIMIT)
        self._progress_ts: str | None = None

    async def _show_progress(self, text: str) -> None:
        if self._progress_ts is None:
            posted = await self.client.chat_postMessage(
                channel=self.channel, text=text, thread_ts=self.thread
            )
            self._progress_ts = str(posted["ts"])
        else:
            await self.client.chat_update(channel=self.channel, ts=self._progress_ts, text=text)

    async def finish_progress(self) -> None:
        if self._progress_ts is not None:
            try:
                await self.client.chat_delete(channel=self.channel, ts=self._progress_ts)
            except SlackApiError:
                log.warning("could not remove the progress message", exc_info=True)

    async def private(self, reply: Reply) -> None:
        await self.client.chat_postEphemeral(channel=self.channel, user=self.user, text=reply.text)
        if reply.file is not None:
            await self._send_file_privately(reply)

    async def public(self, reply: Reply) -> None:
        if reply.file is None:
            await self.client.chat_postMessage(channel=self.channel, text=reply.text, thread_ts=self.thread)
            return
        await self.client.files_upload_v2(
            channel=self.channel,
            content=reply.file,
            filename=reply.filename or "attachment.png",
            initial_comment=reply.text,
            thread_ts=self.thread,
        )


@dataclass(frozen=True, kw_only=True)
class SlackConfig:
    """The Slack bot's settings, a plain copy the composition root makes. Secrets never show in a repr.

    Only the secrets have defaults here (none configured); every other value's default is the setting's
    (`chatsmith.settings`, `CHATSMITH_SLACK_...`), written once there.

    Attributes:
        bot_token: The bot token (xoxb-...); "" when none is configured.
        app_token: The app-level token (xapp-...) for Socket Mode; "" when none.
        signing_secret: The signing secret that HTTP mode checks requests with; "" when none.
        mode: "socket" (Socket Mode, no public URL) or "http" (Events API over HTTP).
        http_host: Address the HTTP-mode server binds.
        http_port: Port of the HTTP-mode server.
        http_path: Request URL path in HTTP mode.
        api_url: Slack Web API base URL (ends with /api/).
    """

    bot_token: str = field(default="", repr=False)
    app_token: str = field(default="", repr=False)
    signing_secret: str = field(default="", repr=False)
    mode: Literal["socket", "http"]
    http_host: str
    http_port: int
    http_path: str
    api_url: str


def check_slack_config(config: SlackConfig) -> None:
    """Check that the tokens the configured mode needs are there.

    Raises:
        ConfigurationError: One line naming the missing variable.
    """
    if not config.bot_token.strip():
        raise ConfigurationError("no Slack bot token: set SLACK_BOT_TOKEN to the app's xoxb-... token")
    if config.mode == "socket" and not config.app_token.strip():
        raise ConfigurationError(
            "Socket Mode needs an app-level token: set SLACK_APP_TOKEN (xapp-..., scope connections:write), "
            "or CHATSMITH_SLACK_MODE=http with SLACK_SIGNING_SECRET"
        )
    if config.mode == "http" and not config.signing_secret.strip():
        raise ConfigurationError(
            "HTTP mode needs the signing secret to check requests: set SLACK_SIGNING_SECRET"
        )


async def channel_is_private(client: AsyncWebClient, channel: str) -> bool | None:
    """Whether the channel is private (or a direct message); None when Slack did not say (the bot not in
    the channel, a rate limit): the caller treats that as private."""
    if channel.startswith(("D", "G")):
        return True
    try:
        info = (await client.conversations_info(channel=channel))["channel"]
    except SlackApiError as error:
        log.warning(
            "conversations.info failed for %s (%s); its privacy is unknown",
            channel,
            error.response.get("error"),
        )
        return None
    return bool(info.get("is_private") or info.get("is_im") or info.get("is_mpim"))


class PrivacyCache:
    """Slack's answers on whether a channel is private, held for `ttl_s` seconds, so that repeated admin
    commands do not spend the rate limit. Only answers are held: "unknown" is asked again next time."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._answers: dict[tuple[str, str], tuple[float, bool]] = {}
        self._next_prune = time.monotonic() + ttl_s

    async def is_private(self, client: AsyncWebClient, team: str, channel: str) -> bool | None:
        """Whether `channel` of `team` is private, from the cache or `conversations.info`; None: unknown."""
        now = time.monotonic()
        cached = self._answers.get((team, channel))
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        private = await channel_is_private(client, channel)
        if now >= self._next_prune:
            self._answers = {k: v for k, v in self._answers.items() if now - v[0] < self.ttl_s}
            self._next_prune = now + self.ttl_s
        if private is not None:
            self._answers[(team, channel)] = (now, private)
        return private


def history_reader(client: AsyncWebClient, channel: str, bot_user_id: str) -> HistoryReader:
    """Reads past messages of the channel, newest first, for `train backfill:N`, skipping what live
    collection skips."""

    async def read(limit: int) -> AsyncIterator[HistoryMessage]:
        cursor: str | None = None
        seen = 0
        while seen < limit:
            page = await client.conversations_history(
                channel=channel, limit=min(HISTORY_PAGE, limit - seen), cursor=cursor or None
            )
            for message in page.get("messages") or []:
                seen += 1
                if message.get("subtype") not in CONVERSATION_SUBTYPES or "ts" not in message:
                    continue
                if addressed_to_bot(str(message.get("text") or ""), bot_user_id):
                    continue  # skipped as live collection skips it
                yield HistoryMessage(
                    message_id=str(message["ts"]),
                    author_id=str(message.get("user") or message.get("bot_id") or ""),
                    text=str(message.get("text") or ""),
                    created_at=ts_time(message["ts"]),
                    author_is_bot=bool(message.get("bot_id")),
                )
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return

    return read


def addressed_to_bot(text: str, bot_user_id: str | None) -> bool:
    """Whether a message starts by mentioning the bot: a command to it, never conversation to learn from."""
    return bool(bot_user_id) and text.lstrip().startswith(f"<@{bot_user_id}")


def ts_time(ts: Any) -> datetime:
    return datetime.fromtimestamp(float(ts), UTC)
