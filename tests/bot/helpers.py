"""Helpers shared by the adapter scenario tests: bounded async runs, a loop-lag probe, polling."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.core import CommandCore, Reply, Request, Services
from bot.core.command_spec import Handler

T = TypeVar("T")


def run(scenario: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
    """Run one async scenario on a fresh event loop, bounded so a hang fails instead of stalling CI."""

    async def bounded() -> T:
        return await asyncio.wait_for(scenario(), timeout)

    return asyncio.run(bounded())


# Lag beyond this means something ran on the event loop: loading a model or decoding a burst takes far
# longer, and nothing on the loop should. Lower bounds would measure the machine instead: with more test
# processes than cores, the scheduler alone delays a wake-up by tens of milliseconds now and then.
LOOP_BLOCKED_S = 0.25


class LoopLagProbe:
    """Measures how late the event loop wakes a task that sleeps `interval` seconds again and again.

    A blocking call on the loop (model loading, decoding, a database query) shows up as lag of about
    its duration.
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.worst = max(self.worst, time.perf_counter() - before - self.interval)

    async def __aenter__(self) -> LoopLagProbe:
        # The test process holds TensorFlow and what earlier tests left; a full garbage collection walks
        # all of it and stops every thread for up to a second, which a bot process (no TensorFlow, a small
        # heap) never does. Frozen while measuring, those objects are left out of the collector's passes,
        # so its pauses are those of the bot's own objects.
        gc.freeze()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        gc.unfreeze()


def answers(text: str, prompt: str) -> bool:
    """Whether `text` is a generate answer to `prompt`: the prompt continued, or the friendly line for an
    empty generation (a tiny model may end the message at once; that is an answer too)."""
    from bot.core.safety import EMPTY_GENERATION

    return text.startswith(prompt) or text == EMPTY_GENERATION


async def eventually(check: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Wait until `check()` is true, polling; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def run_trainer_once() -> None:
    """The real trainer processes the queue once (what `chatsmith trainer --once` does), on a worker
    thread so the bot's event loop goes on; settings come from the environment, as for the CLI."""

    def process() -> list[str]:
        from chatsmith.settings import load_settings
        from chatsmith.wiring import model_store, trainer_config
        from db.schema import open_database
        from trainer.service import TrainerService

        settings = load_settings()
        engine = open_database(settings.effective_database_url)
        try:
            service = TrainerService(
                engine,
                trainer_config(settings),
                model_store(settings),
                "test",
            )
            return [f"{o.status}: {o.message}" for o in service.run_once()]
        finally:
            engine.dispose()

    outcomes = await asyncio.to_thread(process)
    assert outcomes and all(o.startswith("succeeded") for o in outcomes), outcomes


def record_commands(core: CommandCore) -> list[str]:
    """Replace every handler of `core` by one that answers "ran <command>"; returns the commands run, in
    order (to see what a platform hands the core without running the real commands)."""
    ran: list[str] = []

    def recorder(name: str) -> Handler:
        async def handler(services: Services, request: Request) -> Reply:
            ran.append(request.command)
            return Reply(f"ran {name}", ephemeral=True)

        return handler

    core._handlers = {name: recorder(name) for name in core._handlers}
    return ran
