"""How the Slack adapter answers (`bot.core.platform.Replies`): slash commands through their response URL,
mentions with messages in their channel or thread. A private file goes to the caller's direct messages, as
Slack has no ephemeral files."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.platform import Replies, ThrottledProgress, message_limit
from bot.core.request import Reply

log = logging.getLogger(__name__)

SLACK_LIMIT = message_limit("slack")


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
