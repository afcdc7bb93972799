"""Stopping a bot cleanly, as `docker stop` asks (SIGTERM, or SIGINT from Ctrl-C).

On the signal the bot stops taking new work (a new command is told to try again in a minute), gives the
interactions already running a bounded grace period to finish, answers those that did not with the same
one line (so nobody is left looking at "thinking..."), then closes its platform client and the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

log = logging.getLogger(__name__)

# How long running interactions may take to finish once a stop was asked for.
GRACE_SECONDS = 10.0
RESTARTING = "chatsmith is restarting; try again in a minute."

CutOffAnswer = Callable[[], Awaitable[object]]


class InFlight:
    """The interactions being answered, each with the way to answer it if it is cut off."""

    def __init__(self) -> None:
        self.accepting = True
        self._running: dict[asyncio.Task[object], CutOffAnswer] = {}

    def __len__(self) -> int:
        return len(self._running)

    @contextlib.contextmanager
    def track(self, answer_if_cut_off: CutOffAnswer) -> Iterator[None]:
        """Count the current task as an interaction in flight until the block ends."""
        task = asyncio.current_task()
        if task is None:  # not in a task: nothing to wait for or cut off
            yield
            return
        self._running[task] = answer_if_cut_off
        try:
            yield
        finally:
            self._running.pop(task, None)

    async def answer(self, answer_if_cut_off: CutOffAnswer, work: Callable[[], Awaitable[object]]) -> None:
        """Run `work` (answering one interaction) as in flight; once the bot is stopping, only tell the
        caller to try again (`answer_if_cut_off`, which also answers it if a stop cuts `work` off)."""
        if not self.accepting:
            await answer_if_cut_off()
            return
        with self.track(answer_if_cut_off):
            await work()

    async def drain(self, grace_seconds: float) -> int:
        """Stop accepting work, wait up to `grace_seconds` for running interactions, answer the rest.

        Returns:
            How many interactions were cut off (and answered with `RESTARTING`).
        """
        self.accepting = False
        running = dict(self._running)
        if running:
            log.info("stopping: waiting up to %gs for %d interactions", grace_seconds, len(running))
            await asyncio.wait(set(running), timeout=grace_seconds)
        cut_off = [(task, answer) for task, answer in running.items() if not task.done()]
        for task, answer in cut_off:
            task.cancel()
            try:
                await answer()
            except Exception:  # the platform may already be unreachable; the log says who was not told
                log.warning("could not tell a caller the bot is restarting", exc_info=True)
        if cut_off:
            await asyncio.gather(*(task for task, _ in cut_off), return_exceptions=True)
            log.warning(
                "stopping: %d interactions did not finish in %gs; told to try again",
                len(cut_off),
                grace_seconds,
            )
        return len(cut_off)


@contextlib.asynccontextmanager
async def stop_signals() -> AsyncIterator[asyncio.Event]:
    """An event set by SIGTERM or SIGINT while in use (the default handlers are back afterwards).

    Call from the main thread's event loop, where signal handlers can be installed.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def asked(signum: signal.Signals) -> None:
        log.warning("received %s; stopping: no new commands, finishing those in flight", signum.name)
        stop.set()

    installed = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, asked, signum)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            log.debug("cannot handle %s here; it stops the process as usual", signum.name)
    try:
        yield stop
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


async def stopped_before_end(client: asyncio.Task[None], stop: asyncio.Event) -> bool:
    """Wait until the client's task ends by itself or `stop` is set; True when `stop` came first."""
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({client, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    return not client.done()
