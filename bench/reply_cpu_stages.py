"""Where a reply's CPU goes: thread CPU time per stage of the `/generate` path, measured by wrapping the
functions that do each stage.

Each wrapped call adds the CPU time of its own thread (`time.thread_time`) to its stage, less the time of
wrapped calls nested inside it, so the stages never count a millisecond twice. Database reads run on the
database threads and decoding on the generation workers: thread time follows each to its own stage.

The wrappers cost about a microsecond per call, and the model is stepped once per token, so the totals of
an instrumented run are a little higher than an uninstrumented one's: the benchmark takes its headline
figures from a run without them and only the shares from this one.

Only names that the code under test has are wrapped, so the same instrumentation runs against an older
checkout; a stage whose functions do not exist there reads as nothing.
"""

from __future__ import annotations

import functools
import importlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

# Stage -> (module, attribute path) of the functions doing it, in the order a reply passes them.
STAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "lookup (serving model, filter settings)": (
        ("bot.core.handlers.generate", "serving_model"),
        ("bot.core.handlers.generate", "workspace_filter_settings"),
    ),
    "context: read the channel's messages": (
        ("bot.core.handlers.generate", "conversation"),
        ("bot.core.handlers.generate", "conversation_by"),
    ),
    "names: the workspace's members, the conversation's": (
        ("bot.core.handlers.generate", "workspace_members"),
        ("bot.core.handlers.generate", "readdress"),
    ),
    "context: tokenise": (("textgen.generator", "prompt_with_context"),),
    "context: the model reads it": (("textgen.architectures.recurrent", "CausalStepper.read"),),
    "decode: model step": (("textgen.architectures.recurrent", "CausalStepper.step"),),
    "decode: sampling": (
        ("textgen.generator", "sample_tokens"),
        ("textgen.generator", "sample_one"),
        ("textgen.generator", "log_softmax"),
        ("textgen.generator", "token_logprobs"),
    ),
    "decode: loop and bookkeeping": (("textgen.generator", "Generator._decode"),),
    "lexicon and UTF-8 masks": (
        ("textgen.generator", "Generator._cached_mask"),
        ("textgen.lexicon", "LexiconConstraint.advance"),
        ("textgen.lexicon", "LexiconConstraint.may_end"),
    ),
    "output filter (slurs, profanity, personal data)": (("bot.core.output_filter", "OutputFilter.check"),),
    "copy guard (load, conversation's, check)": (
        ("bot.core.copy_guards", "CopyGuardCache.for_serving"),
        ("bot.core.handlers.generate", "build_copy_guard"),
        ("bot.core.output_filter", "find_copy"),
    ),
}


class StageClock:
    """Thread CPU time per stage, accumulated by wrapped functions (thread-safe)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()
        self._local = threading.local()

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """`function`, its exclusive thread CPU time counted under `stage`."""

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            stack: list[float] = self._local.__dict__.setdefault("nested", [])
            stack.append(0.0)
            began = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                spent = time.thread_time() - began
                inner = stack.pop()
                if stack:
                    stack[-1] += spent
                with self._lock:
                    self.seconds[stage] += spent - inner

        return timed

    def take(self) -> dict[str, float]:
        """The seconds per stage since the last call, and start again from zero."""
        with self._lock:
            taken = dict(self.seconds)
            self.seconds.clear()
        return taken


@contextmanager
def instrumented(clock: StageClock) -> Iterator[list[str]]:
    """Every function of `STAGES` that exists wrapped by `clock` while inside; yields the stages found."""
    undo: list[tuple[Any, str, Any]] = []
    found: list[str] = []
    try:
        for stage, places in STAGES.items():
            for module_name, path in places:
                owner, name = _owner(module_name, path)
                if owner is None or name not in vars(owner):
                    continue
                original = vars(owner)[name]
                undo.append((owner, name, original))
                setattr(owner, name, clock.wrap(stage, original))
                if stage not in found:
                    found.append(stage)
        yield found
    finally:
        for owner, name, original in reversed(undo):
            setattr(owner, name, original)


def _owner(module_name: str, path: str) -> tuple[Any, str]:
    """The module or class that holds `path`'s last name, and that name (None when it is missing)."""
    try:
        owner: Any = importlib.import_module(module_name)
    except ImportError:
        return None, path
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent, None)
        if owner is None:
            return None, name
    return owner, name
