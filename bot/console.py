"""The console adapter: a terminal chat with the command core, and the in-process test bot.

Lines starting with "/" are commands (`/generate hello`, `/train`, `/status`, ...); other lines are chat
messages, kept for training when collection is on in the console channel. When standard input is not a
terminal the console reads it to the end and exits, so it can be scripted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from bot.core.collection import flush_pending, pending_writes
from bot.core.command_spec import is_command
from bot.core.commands import CommandCore
from bot.core.errors import user_message
from bot.core.parsing import parse_command_text
from bot.core.request import ADMINISTRATOR, IncomingMessage, Reply, Request
from db.models import utcnow

log = logging.getLogger(__name__)

# At the end of input, how long messages kept while the database was down may wait for it to return.
PENDING_GRACE_S = 30.0


class ConsoleChat:
    """One person typing in one console channel.

    Args:
        core: The command core.
        workspace: Console workspace name (its id in the database).
        channel: Console channel name.
        user: The person's name.
        admin: Whether they hold admin rights (the console trusts its operator).
        files_dir: Where attachments (charts) are written.
    """

    def __init__(
        self, core: CommandCore, workspace: str, channel: str, user: str, *, admin: bool, files_dir: Path
    ) -> None:
        self.core = core
        self.workspace = workspace
        self.channel = channel
        self.user = user
        self.admin = admin
        self.files_dir = files_dir
        self.replies: list[Reply] = []
        self._message_ids = itertools.count(1)
        self._session_tag = utcnow().strftime("%Y%m%dT%H%M%S%f")

    async def say(self, line: str) -> list[str]:
        """Send one line as the user; return what the console prints for it (nothing for plain chat)."""
        text = line.rstrip("\n")
        if not text.strip():
            return []
        if not is_command(text):
            message = IncomingMessage(
                platform="console",
                workspace=self.workspace,
                channel=self.channel,
                # Unique across console sessions, so a later session never collides with an old id.
                message_id=f"{self._session_tag}-{next(self._message_ids)}",
                author_id=self.user,
                text=text,
                created_at=utcnow(),
            )
            try:
                # While the database is down the message waits in memory; it is written when it returns.
                await self.core.collect_message(message)
            except Exception:  # an unexpected error costs this line, never the session
                log.exception("could not keep message %s", message.message_id)
            return []
        command, args = parse_command_text(text)
        request = Request(
            platform="console",
            workspace=self.workspace,
            channel=self.channel,
            user=self.user,
            command=command or "help",
            args=args,
            permissions=frozenset({ADMINISTRATOR}) if self.admin else frozenset(),
            policy=self.core.config.policy,
            workspace_name=self.workspace,
            channel_name=self.channel,
        )
        try:
            reply = await self.core.handle(request)
        except Exception as error:  # the console's one error handler: log, answer one line, go on
            log.exception("command %r failed", command)
            reply = Reply(user_message(error) or f"Something went wrong running `{command}`; see the log.")
        self.replies.append(reply)
        printed = [reply.text]
        if reply.file is not None:
            self.files_dir.mkdir(parents=True, exist_ok=True)
            path = self.files_dir / (reply.filename or "attachment.bin")
            path.write_bytes(reply.file)
            printed.append(f"[attachment saved to {path}]")
        return printed

    async def run(self, lines: Iterable[str] | None = None, out: TextIO = sys.stdout) -> None:
        """Read lines (default: standard input) until the end, printing replies as they come."""
        interactive = lines is None and sys.stdin.isatty()
        source = iter(lines) if lines is not None else None
        if interactive:
            out.write(
                f"chatsmith console: #{self.channel} in {self.workspace} as {self.user}. /help lists commands.\n"
            )
        stop = _stop_on_signals() if source is None else asyncio.Event()
        reader = None if source is not None else _StdinReader(interactive)
        while True:
            if source is not None:
                line = next(source, None)
            else:
                assert reader is not None
                line = await reader.next_line(stop)
            if line is None:
                await self._write_pending()
                return
            for printed in await self.say(line):
                out.write(printed + "\n")
            out.flush()

    async def _write_pending(self) -> None:
        """At the end of input, give messages kept while the database was down time to be written."""
        services = self.core.services
        buffer = pending_writes(services)
        deadline = time.monotonic() + PENDING_GRACE_S
        while len(buffer) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await flush_pending(services)


def _stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (`docker stop`, Ctrl-C): the console then ends as at the end of
    its input, writing what it kept, and exits 0. Where the loop cannot take signals (not the main thread,
    Windows) the event is never set and the defaults stay."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal_number, stop.set)
    return stop


class _StdinReader:
    """Lines of standard input, read on a daemon thread: a blocked read must never keep the process from
    exiting once the console stops (a worker-pool thread would: `asyncio.run` waits for it)."""

    def __init__(self, interactive: bool) -> None:
        self._loop = asyncio.get_running_loop()
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._interactive = interactive
        self._wanted = threading.Semaphore(0)
        threading.Thread(target=self._read, name="chatsmith-console-stdin", daemon=True).start()

    def _read(self) -> None:
        while True:
            self._wanted.acquire()  # one line at a time, so the prompt shows after the previous reply
            line = _read_line(self._interactive)
            self._loop.call_soon_threadsafe(self._lines.put_nowait, line)
            if line is None:
                return

    async def next_line(self, stop: asyncio.Event) -> str | None:
        """The next line, or None at the end of input or when `stop` is set."""
        self._wanted.release()
        line = asyncio.ensure_future(self._lines.get())
        stopped = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait({line, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if line in done:
            return line.result()
        line.cancel()
        return None


def _read_line(interactive: bool) -> str | None:
    if interactive:
        try:
            return input("> ")
        except EOFError:
            return None
    line = sys.stdin.readline()
    return line if line else None
