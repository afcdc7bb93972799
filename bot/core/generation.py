"""The generation worker pool: requests for the same model wait together and decode as one batch.

While a batch decodes, new requests for that model queue up; when it finishes they all go in the next
`generate_many` call. Under load, batches grow by themselves and no request waits for a timer.

The pool holds at most `max_queued` requests (waiting or decoding). Past that, `submit` refuses at once
with `GenerationBusy` ("busy, try again in a moment"): beyond saturation, a longer queue only makes every
answer later and holds memory, while a quick refusal lets people retry when the burst has passed.

Workspaces get a fair share. Batches ready to decode wait per workspace, and the worker threads take
workspaces in turn (one batch each), so a workspace that floods the bot with requests for many models
delays another workspace's request by about one batch per worker, not by its whole backlog. With
`max_queued_per_workspace`, one workspace also cannot fill the pool and leave others refused.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bot.core.errors import GenerationBusy
from bot.core.models import ModelCache
from textgen.endings import length_from_channel
from textgen.sampling import SamplingParams

if TYPE_CHECKING:  # services holds the pool, so the config's class is named for type checking only
    from bot.core.services import BotConfig

log = logging.getLogger(__name__)


# Messages of the channel whose lengths a reply's length cap is drawn from (`reply_params`).
LENGTH_MESSAGES = 50


def reply_params(
    config: BotConfig,
    recent: tuple[str, ...] = (),
    length: int | None = None,
    temperature: float | None = None,
    rng: np.random.Generator | None = None,
) -> SamplingParams:
    """How `/generate` samples: the length and temperature asked for, else the bot's defaults. Without an
    asked length, a reply after the channel's `recent` messages is capped at the length of one of them,
    drawn by `rng` (`textgen.endings.length_from_channel`), where `config.length_from_channel` is on."""
    if length is None:
        length = config.default_length
        if config.length_from_channel and recent:
            length = length_from_channel(recent, config.default_length, config.max_length, rng)
    return SamplingParams(
        max_tokens=length,
        temperature=config.temperature if temperature is None else temperature,
        top_p=config.top_p,
        typical_p=config.typical_p,
        min_p=config.min_p,
        best_of=config.best_of,
        overrun=config.overrun,
        end_untempered=config.end_untempered,
    )


@dataclass
class _Pending:
    prompt: str
    params: SamplingParams
    future: Future[str]
    context: tuple[str, ...] = ()  # the conversation before the reply, oldest first


@dataclass
class _ModelQueue:
    path: Path
    # Whose turn serves it: the workspace that asked first. Requests of other workspaces for the same
    # model (the base model serves many) join its batches, which costs them nothing.
    workspace: str
    waiting: list[_Pending] = field(default_factory=list)
    # In the ready rotation or decoding: exactly one scheduled step of the pool serves it.
    scheduled: bool = False


class GenerationPool:
    """Decodes generate requests on worker threads, batched per model, workspaces taking turns.

    Args:
        models: Where generators come from (loaded on the worker threads).
        workers: Threads; each decodes one model's batch at a time.
        max_batch: Most requests decoded in one `generate_many` call.
        max_queued: Most requests waiting or decoding at once; more are refused with `GenerationBusy`.
        max_queued_per_workspace: Most of those one workspace may hold (None: no limit but `max_queued`).
    """

    def __init__(
        self,
        models: ModelCache,
        workers: int = 2,
        max_batch: int = 32,
        *,
        max_queued: int = 128,
        max_queued_per_workspace: int | None = None,
    ) -> None:
        for name, value in (("max_batch", max_batch), ("max_queued", max_queued)):
            if value < 1:
                raise ValueError(f"Received {name} {value}, expected at least 1")
        if max_queued_per_workspace is not None and max_queued_per_workspace < 1:
            raise ValueError(
                f"Received max_queued_per_workspace {max_queued_per_workspace}, expected at least 1"
            )
        self.models = models
        self.max_batch = max_batch
        self.max_queued = max_queued
        self.max_queued_per_workspace = max_queued_per_workspace or max_queued
        # Requests submitted and not yet answered (waiting or decoding), in all and per workspace.
        self.outstanding = 0
        self._outstanding_by_workspace: dict[str, int] = {}
        self.refused = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chatsmith-generate")
        self._lock = threading.Lock()
        self._queues: dict[str, _ModelQueue] = {}
        # Models with a batch ready, per workspace, and the step at which each workspace was last
        # served: the ready workspace served longest ago (or never) goes next.
        self._ready: dict[str, deque[str]] = {}
        self._last_served: dict[str, int] = {}
        self._steps = 0
        # Sizes of the batches decoded so far (most recent last, bounded), for status and tests.
        self.batch_sizes: list[int] = []

    async def generate(
        self,
        bundle: Path,
        prompt: str,
        params: SamplingParams,
        context: tuple[str, ...] = (),
        *,
        workspace: str = "",
    ) -> str:
        """The continuation of `prompt` by the model in `bundle` (without the prompt).

        Raises:
            GenerationBusy: The pool, or the workspace's share of it, is full.
            TextgenError: The bundle cannot be loaded.
        """
        return await asyncio.wrap_future(self.submit(bundle, prompt, params, context, workspace=workspace))

    def submit(
        self,
        bundle: Path,
        prompt: str,
        params: SamplingParams,
        context: tuple[str, ...] = (),
        *,
        workspace: str = "",
    ) -> Future[str]:
        """Queue a request of `workspace`; the future resolves on a worker thread.

        Raises:
            GenerationBusy: The pool, or the workspace's share of it, is full (nothing was queued).
        """
        future: Future[str] = Future()
        key = str(Path(bundle).resolve())
        with self._lock:
            held = self._outstanding_by_workspace.get(workspace, 0)
            if self.outstanding >= self.max_queued or held >= self.max_queued_per_workspace:
                self.refused += 1
                raise GenerationBusy()
            self.outstanding += 1
            self._outstanding_by_workspace[workspace] = held + 1
            future.add_done_callback(lambda _: self._answered(workspace))
            queue = self._queues.setdefault(key, _ModelQueue(Path(key), workspace))
            queue.waiting.append(_Pending(prompt, params, future, context))
            start = not queue.scheduled
            if start:
                queue.scheduled = True
                self._make_ready(queue.workspace, key)
        if start:
            self._executor.submit(self._step)
        return future

    def _answered(self, workspace: str) -> None:
        with self._lock:
            self.outstanding -= 1
            left = self._outstanding_by_workspace[workspace] - 1
            if left:
                self._outstanding_by_workspace[workspace] = left
            else:  # nothing of it waits: forget it, so the table holds only the workspaces seen lately
                del self._outstanding_by_workspace[workspace]
                self._last_served.pop(workspace, None)

    def _make_ready(self, workspace: str, key: str) -> None:
        """Put a model with waiting requests in its workspace's line (the lock is held)."""
        if workspace in self._ready:
            self._ready[workspace].append(key)
        else:
            self._ready[workspace] = deque([key])

    def _step(self) -> None:
        """Decode one batch for the workspace whose turn it is; every ready model has one step scheduled."""
        with self._lock:
            workspace = min(self._ready, key=lambda name: self._last_served.get(name, -1))
            keys = self._ready[workspace]
            key = keys.popleft()
            if not keys:
                del self._ready[workspace]
            self._steps += 1
            self._last_served[workspace] = self._steps
            queue = self._queues[key]
            batch, queue.waiting = queue.waiting[: self.max_batch], queue.waiting[self.max_batch :]
        try:
            self._run_batch(queue.path, batch)
        finally:
            with self._lock:
                again = bool(queue.waiting)
                if again:
                    self._make_ready(queue.workspace, key)
                else:
                    queue.scheduled = False
                    del self._queues[key]
            if again:
                self._executor.submit(self._step)

    def _run_batch(self, path: Path, batch: list[_Pending]) -> None:
        live = [item for item in batch if item.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            generator = self.models.get(path)
            texts = generator.generate_many(
                [item.prompt for item in live],
                [item.params for item in live],
                [item.context for item in live],
            )
        except Exception as error:  # every waiter learns why; the worker thread lives on
            for item in live:
                item.future.set_exception(error)
            return
        with self._lock:
            self.batch_sizes = [*self.batch_sizes[-999:], len(live)]
        for item, text in zip(live, texts, strict=True):
            item.future.set_result(text)

    def close(self) -> None:
        """Finish queued work and stop the threads."""
        self._executor.shutdown(wait=True, cancel_futures=False)
