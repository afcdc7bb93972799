"""The platform contract: what every chat adapter provides, and the pieces they all share, written once.

A platform is one entry of `db.platforms.PLATFORMS` (its name, message limit, mention markup and adapter
module) and one adapter (`docs/packages.md` has the checklist). The core reads the entry: replies are cut to the platform's limit and made
unable to ping (`bot.core.safety`), member mentions are parsed (`member_id`). The adapter implements:

- `Replies`: how one request is answered: privately (only the caller sees it, files included), publicly
  (the channel sees it), and with progress updates while a long command runs (`ThrottledProgress` keeps
  them within the platform's edit rate);
- the privacy lookup: whether a channel is private, given to the core as `Request.channel_private`, made
  only for commands the caller may run (cached where it costs an API call); when the platform cannot tell,
  `Request.channel_privacy_unknown` (the core then treats the channel as private);
- text it echoes passes `bot.core.safety.make_safe`, which breaks mentions and masked links;
- a server and its `Adapter` (`bot.core.runner`): connect, serve, close, with its commands tracked in an
  `InFlight` so that a stop lets them finish or tells them (`InFlight.answer`); one runner serves them all.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from bot.core.request import Reply
from db.platforms import PLATFORMS, PlatformEntry

log = logging.getLogger(__name__)

# At most one progress update per this many seconds (platforms rate-limit message edits).
PROGRESS_INTERVAL_S = 1.0
ERROR_REPLY = "Something went wrong on my side; the error was logged."


def platform_rules(platform: str) -> PlatformEntry:
    """The registry entry of `platform`; an unknown name gets the console's plain rules."""
    return PLATFORMS.get(platform) or PLATFORMS["console"]


def message_limit(platform: str) -> int:
    """Most characters one reply may have on `platform`."""
    return platform_rules(platform).message_limit


def member_id(text: str) -> str:
    """The user id in a mention as each platform writes it: `<@123>`, `<@!123>`, `<@U123|ann>`, `@ann`."""
    text = text.strip()
    if text.startswith("<@") and text.endswith(">"):
        text = text[2:-1].lstrip("!").split("|", 1)[0]
    return text.lstrip("@").strip()


class ThrottledProgress:
    """Passes progress on at most once per `interval` seconds (the first always), cut to the platform's
    limit; a failed update is logged, never raised: progress must not fail the command.

    Args:
        show: Shows one progress line on the platform.
        limit: Most characters of a progress line.
        interval: Seconds between updates.
    """

    def __init__(
        self, show: Callable[[str], Awaitable[object]], limit: int, interval: float = PROGRESS_INTERVAL_S
    ) -> None:
        self._show = show
        self._limit = limit
        self._interval = interval
        self._last: float | None = None

    async def __call__(self, text: str) -> None:
        now = time.monotonic()
        if self._last is not None and now - self._last < self._interval:
            return
        self._last = now
        try:
            await self._show(text[: self._limit])
        except Exception:  # each platform's client raises its own errors; none may end the command
            log.warning("progress update failed", exc_info=True)


class Replies(ABC):
    """How one request is answered on a platform (a slash command, a mention, a console line)."""

    @abstractmethod
    async def private(self, reply: Reply) -> None:
        """Show `reply` (its text, and its file if any) to the caller only."""

    @abstractmethod
    async def public(self, reply: Reply) -> None:
        """Show `reply` (its text, and its file if any) to the whole channel."""

    async def send(self, reply: Reply) -> None:
        """Answer with `reply`: privately when it is ephemeral, publicly otherwise."""
        await (self.private(reply) if reply.ephemeral else self.public(reply))


class ErrorReporter:
    """An adapter's one error handler: log an unexpected error, keep it, and tell the caller in one line.

    Args:
        platform: The platform's name, for the log.
        keep: How many recent errors `errors` holds (operators and tests look there; the log has the detail).
    """

    def __init__(self, platform: str, keep: int = 50) -> None:
        self.platform = platform
        self.keep = keep
        self.errors: list[BaseException] = []

    async def report(
        self, error: BaseException, where: str, tell: Callable[[str], Awaitable[object]] | None = None
    ) -> None:
        """Log and keep `error`; with `tell`, send the caller `ERROR_REPLY`. Never raises."""
        self.errors.append(error)
        del self.errors[: -self.keep]
        log.error("%s %s failed", self.platform, where, exc_info=error)
        if tell is None:
            return
        try:
            await tell(ERROR_REPLY)
        except Exception:  # the platform may be what failed; the log already has the error
            log.warning("could not tell the caller about the error", exc_info=True)
