"""The three parts of the serving benchmark (`bench.serving`), each run in a child process of its own.

`setup` writes and registers the channel models (TensorFlow allowed); `serve` sends `/generate` requests
through the command core of a bot process that cannot import TensorFlow; `cycles` times bundle loads and
watches resident memory through many load/evict cycles. Each returns its figures as a JSON-ready dict.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 1024 * 1024

# The base model's shape (GRU, 384 units), which every channel model fine-tuned from it has; a small GRU
# for the load/evict cycles and the quick run. Both with the byte tokenizer (260 tokens).
SPECS: dict[str, dict[str, Any]] = {
    "base": {"arch": "gru", "layers": 1, "units": 384, "embedding": 64, "seq_len": 64},
    "small": {"arch": "gru", "layers": 1, "units": 128, "embedding": 32, "seq_len": 64},
}


def rss_bytes() -> int:
    """This process's resident memory now."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _RssSampler:
    """The highest resident memory seen, sampled every 0.1 s on a thread."""

    def __init__(self) -> None:
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def block_tensorflow() -> None:
    """Make `import tensorflow` and `import keras` fail, as in the bot image where they are not installed."""

    class NotInstalled:
        def find_spec(self, name: str, path: object = None, target: object = None) -> None:
            if name.split(".")[0] in ("tensorflow", "keras"):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked: the bots run without it)")

    sys.meta_path.insert(0, NotInstalled())  # type: ignore[arg-type]


def channel_name(count: int, index: int) -> str:
    return f"c{count}-{index}"


def p99(ordered: list[float]) -> float:
    """The 99th percentile of sorted figures (the largest for fewer than 100)."""
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


# ------------------------------------------------------------------------------------------------ setup


def _messages(prefix: str, count: int) -> list[str]:
    """Distinct made-up messages, for a model's copy guard of realistic size."""
    return [
        f"{prefix} message {number} about the build, the deploy and ticket {number * 7}"
        for number in range(count)
    ]


def _workspace_parent(
    session: Any, store: Any, workspace: Any, template: Path, own_guard: bool = False
) -> Any:
    """The workspace model every channel model is fine-tuned from, with a copy guard of its own (the
    template's when `own_guard`, a real fine-tune's; else one of made-up messages)."""
    from db.registry import create_version, promote
    from db.scopes import Scope
    from textgen.copyguard import FILE as GUARD_FILE
    from textgen.copyguard import build_copy_guard

    scope = Scope(workspace.id)
    staged = store.new_staging_dir("bench-workspace")
    for item in template.iterdir():
        if own_guard or item.name != GUARD_FILE:
            os.link(item, staged / item.name)
    if not own_guard:
        build_copy_guard(_messages("workspace", 20_000)).save(staged)
    location = store.publish(staged, scope.scope_key, 1)
    version = create_version(
        session, scope, tokenizer_kind="byte", spec={}, bundle_path=location, status="candidate"
    )
    promote(session, version)
    return version


@dataclass(frozen=True)
class FineTunes:
    """How the base-size fleet is trained: chat messages from `chat`, the workspace model fine-tuned from
    the packaged base model for `workspace_seconds`, then `channels` channel models fine-tuned from it for
    `channel_seconds` each, each on a slice of its own."""

    chat: Path
    workspace_seconds: float = 30.0
    channel_seconds: float = 10.0
    channels: int = 4
    workspace_messages: int = 20_000
    channel_messages: int = 3_000


def _fine_tuned_fleet(work: Path, base: Path, plan: FineTunes) -> tuple[Path, list[Path]]:
    """The workspace model and the channel models of `plan`, real fine-tunes with the copy guards and
    lexicons training gives them."""
    from bench.output_safety import irc_messages
    from textgen.spec import TrainConfig
    from textgen.training import train_model

    messages = irc_messages(plan.chat)
    needed = plan.workspace_messages + plan.channels * plan.channel_messages
    if len(messages) < needed:
        messages = messages * (needed // max(1, len(messages)) + 1)  # a short log (tests) is reused

    def fine_tune(texts: list[str], parent: Path, out: Path, seconds: float, seed: int) -> Path:
        config = TrainConfig(time_budget=seconds, epochs=1000, seed=seed)
        train_model(texts, out, base=parent, config=config, precision="float32")
        return out

    workspace = fine_tune(
        messages[: plan.workspace_messages],
        base,
        work / "fine-tunes" / "workspace",
        plan.workspace_seconds,
        0,
    )
    channels = []
    for number in range(plan.channels):
        start = plan.workspace_messages + number * plan.channel_messages
        texts = messages[start : start + plan.channel_messages]
        out = work / "fine-tunes" / f"channel-{number}"
        channels.append(fine_tune(texts, workspace, out, plan.channel_seconds, number + 1))
    return workspace, channels


def _templates(
    work: Path, scenarios: dict[int, str], fine_tunes: FineTunes | None, base: Path | None
) -> tuple[dict[str, list[Path]], Path | None]:
    """The bundles channel models are copied from, by size name, and the real workspace model (None
    when the fleet has random weights)."""
    from textgen.bundle import save_bundle
    from textgen.model import build_model
    from textgen.spec import ModelSpec
    from textgen.tokenizers import ByteTokenizer

    tokenizer = ByteTokenizer()
    templates: dict[str, list[Path]] = {}
    real_workspace: Path | None = None
    for name in set(scenarios.values()):
        if name == "base" and fine_tunes is not None and base is not None:
            real_workspace, templates[name] = _fine_tuned_fleet(work, base, fine_tunes)
            continue
        spec = ModelSpec(**SPECS[name])
        templates[name] = [
            save_bundle(work / "templates" / name, build_model(spec, tokenizer.vocab_size), spec, tokenizer)
        ]
    return templates, real_workspace


def _stage_channel_bundle(
    staged: Path, template: Path, scope_key: str, real: bool, lexicon: Path | None, rng: Any
) -> None:
    """Fill `staged` with a channel's copy of `template`: weights in a file of their own, as every
    channel's are, and a real fine-tune's own guard and lexicon (`real`), or else random weights and a
    made-up guard."""
    import numpy as np

    from textgen.bundle import MANIFEST, WEIGHT_ARRAYS, WEIGHT_INDEX
    from textgen.copyguard import FILE as GUARD_FILE
    from textgen.copyguard import build_copy_guard
    from textgen.weights import read_weight_arrays, write_weight_arrays

    index = json.loads((template / MANIFEST).read_text())[WEIGHT_INDEX]
    weights = read_weight_arrays(template / WEIGHT_ARRAYS, index)
    for item in template.iterdir():
        if item.name != WEIGHT_ARRAYS and (real or item.name != GUARD_FILE):
            os.link(item, staged / item.name)
    if real:
        write_weight_arrays(staged / WEIGHT_ARRAYS, dict(weights))
        return
    # Its own guard only: the workspace model's and the base model's are checked apart.
    build_copy_guard(_messages(scope_key, 2_000)).save(staged)
    if lexicon is not None:
        # A model fine-tuned from the base model spells from its words, as trained ones do.
        os.link(lexicon, staged / lexicon.name)
    # Larger-than-initial weights of its own: every model is different data.
    write_weight_arrays(
        staged / WEIGHT_ARRAYS,
        {key: w + rng.normal(0, 0.2, w.shape).astype(np.float32) for key, w in weights.items()},
    )


def setup(work: Path, scenarios: dict[int, str], fine_tunes: FineTunes | None = None) -> dict[str, Any]:
    """Channel models registered as active, each a copy of a template with weights of its own.

    Base-size templates are real fine-tunes (`fine_tunes`: a workspace model from the packaged base model,
    channel models from it); without `fine_tunes`, and for small models (which the base model cannot be
    fine-tuned into), templates have random weights, each copy its own."""
    import numpy as np
    from sqlalchemy.orm import Session

    from chatsmith.base_model import find_base_model
    from db.model_store import LocalModelStore
    from db.registry import create_version, promote
    from db.schema import open_database, upgrade
    from db.scopes import Scope, get_or_create_channel, get_or_create_workspace
    from textgen.lexicon import LEXICON_FILE

    base = find_base_model(None)
    lexicon = base / LEXICON_FILE if base is not None and (base / LEXICON_FILE).exists() else None
    templates, real_workspace = _templates(work, scenarios, fine_tunes, base)
    url = f"sqlite:///{work / 'bot.db'}"
    upgrade(url)
    engine = open_database(url)
    store = LocalModelStore(work / "models")
    rng = np.random.default_rng(0)
    with Session(engine) as session, session.begin():
        workspace = get_or_create_workspace(session, "discord", "bench")
        session.flush()
        if real_workspace is not None:
            parent = _workspace_parent(session, store, workspace, real_workspace, own_guard=True)
        else:
            parent = _workspace_parent(session, store, workspace, templates[min(templates)][0])
        for count, name in scenarios.items():
            real = name == "base" and real_workspace is not None
            for number in range(count):
                template = templates[name][number % len(templates[name])]
                channel = get_or_create_channel(session, workspace, channel_name(count, number))
                session.flush()
                scope = Scope.of(channel)
                staged = store.new_staging_dir(f"bench-{count}-{number}")
                _stage_channel_bundle(staged, template, scope.scope_key, real, lexicon, rng)
                location = store.publish(staged, scope.scope_key, 1)
                version = create_version(
                    session,
                    scope,
                    tokenizer_kind="byte",
                    spec=SPECS[name],
                    parent_version_id=parent.id,
                    bundle_path=location,
                    status="candidate",
                )
                promote(session, version)
    engine.dispose()
    sizes = {name: sum(f.stat().st_size for f in t[0].iterdir()) for name, t in templates.items()}
    return {"bundle_bytes": sizes, "fine_tuned": real_workspace is not None}


# ------------------------------------------------------------------------------------------------ serve


class _Traffic:
    """`/generate` requests sent open-loop at a steady rate, each for a channel picked at random, and
    what came back: the time from when each was due to its reply, and what kind of reply it was."""

    def __init__(self, core: Any, count: int, rate: float, seconds: float) -> None:
        self.core = core
        self.count = count
        self.rate = rate
        self.seconds = seconds
        self.picker = random.Random(count)
        self.reply_chars: list[int] = []
        self.latencies: list[float] = []
        self.outcomes = {"answered": 0, "busy": 0, "other": 0}
        self.others: set[str] = set()

    async def _one(self, request: Any, due: float) -> None:
        reply = await self.core.handle(request)
        self.latencies.append(time.perf_counter() - due)
        text = reply.text
        if text.startswith("hello there"):
            self.outcomes["answered"] += 1
            self.reply_chars.append(len(text))
        elif "busy" in text:
            self.outcomes["busy"] += 1
        else:
            self.outcomes["other"] += 1
            self.others.add(text[:80])

    async def drive(self) -> float:
        """Send every request when it is due and wait for all the replies; the seconds that took."""
        from bot.core import Request

        tasks = []
        total = int(self.rate * self.seconds)
        began = time.perf_counter()
        for number in range(total):
            due = began + number / self.rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            channel = channel_name(self.count, self.picker.randrange(self.count))
            request = Request(
                "discord",
                "bench",
                channel,
                f"u{self.picker.randrange(10_000)}",
                "generate",
                {"prompt": "hello there"},
            )
            tasks.append(asyncio.create_task(self._one(request, due)))
        await asyncio.gather(*tasks)
        return time.perf_counter() - began


def serve(work: Path, count: int, rate: float, seconds: float) -> dict[str, Any]:
    """`rate` generate requests per second for `seconds`, over `count` channel models; figures as JSON."""
    block_tensorflow()
    started_rss = rss_bytes()
    import bot.discord_bot  # noqa: F401  (the adapters' imports count: a bot process has them)
    import bot.slack_app  # noqa: F401
    from bot.core import BotConfig, CommandCore, build_services
    from chatsmith.base_model import find_base_model
    from db.model_store import LocalModelStore

    config = BotConfig(cooldowns={}, base_model_path=find_base_model(None))
    services = build_services(config, f"sqlite:///{work / 'bot.db'}", LocalModelStore(work / "models"))
    core = CommandCore(services)
    before_rss = rss_bytes()
    traffic = _Traffic(core, count, rate, seconds)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    with _RssSampler() as sampler:
        wall = asyncio.run(traffic.drive())
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    latencies = traffic.latencies
    ordered = sorted(latencies)
    result = {
        "models": count,
        "requests": len(latencies),
        "rate": rate,
        "seconds": round(wall, 1),
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * p99(ordered),
        "max_ms": 1000 * ordered[-1],
        "rss_start_mb": started_rss / MIB,
        "rss_before_serving_mb": before_rss / MIB,
        "rss_peak_mb": sampler.peak / MIB,
        "rss_end_mb": rss_bytes() / MIB,
        "model_loads": services.models.loads,
        "evictions": services.models.evictions,
        "cache_mb": services.models.bytes / MIB,
        "cpu_percent": 100 * cpu / wall,
        "cpu_ms_per_request": 1000 * cpu / max(1, len(latencies)),
        # The machine's load over the last minute: other work competing for the same cores.
        "load_average": os.getloadavg()[0],
        "mean_batch": statistics.fmean(services.generation.batch_sizes)
        if services.generation.batch_sizes
        else 0,
        "mean_reply_chars": statistics.fmean(traffic.reply_chars) if traffic.reply_chars else 0,
        **traffic.outcomes,
        "other_replies": sorted(traffic.others),
        "tensorflow_imported": "tensorflow" in sys.modules or "keras" in sys.modules,
    }
    services.close()
    return result


# ----------------------------------------------------------------------------------------------- cycles


def cycles(work: Path, count: int, scenarios: dict[int, str]) -> dict[str, Any]:
    """Bundle load times, and resident memory across `count` loads of different models."""
    block_tensorflow()
    from bot.core.models import ModelCache, load_for_replies
    from chatsmith.base_model import find_base_model
    from textgen.sampling import SamplingParams

    all_bundles = sorted((work / "models").glob("workspace-*/channel-*/model-v1"), key=str)
    # Which spec each bundle has, from its manifest.
    spec_of = {path: json.loads((path / "bundle.json").read_text())["spec"]["units"] for path in all_bundles}
    small = [p for p in all_bundles if spec_of[p] == SPECS["small"]["units"]]
    base_spec = [p for p in all_bundles if spec_of[p] == SPECS["base"]["units"]]

    def load_times(paths: list[Path]) -> dict[str, float]:
        times = []
        for path in paths:
            began = time.perf_counter()
            load_for_replies(path)
            times.append(1000 * (time.perf_counter() - began))
        ordered = sorted(times)
        return {
            "n": len(times),
            "median_ms": statistics.median(ordered),
            "p99_ms": p99(ordered),
        }

    load_for_replies(small[0])  # first load: imports, thread limits
    result: dict[str, Any] = {
        "load_small": load_times(small[:200]),
        "load_base_spec": load_times(base_spec[:50]),
    }
    packaged = find_base_model(None)
    if packaged is not None:
        result["load_packaged_base"] = load_times([packaged] * 5)
    # Load/evict cycles: a cache of 8 MB keeps a few small models; each load evicts the oldest.
    params = [SamplingParams(max_tokens=40, seed=0)]
    cache = ModelCache(8 * MIB)
    paths = [small[i % len(small)] for i in range(count + 50)]
    for path in paths[:50]:  # warm-up: imports, first allocations, thread-local arenas
        cache.get(path).generate_many(["hello"], params)
    start = rss_bytes()
    peak = start
    for path in paths[50:]:
        cache.get(path).generate_many(["hello"], params)
        peak = max(peak, rss_bytes())
    result["cycles"] = {
        "loads": count,
        "distinct_bundles": len({str(p) for p in paths[50:]}),
        "rss_start_mb": start / MIB,
        "rss_peak_mb": peak / MIB,
        "rss_end_mb": rss_bytes() / MIB,
        "growth_mb": (rss_bytes() - start) / MIB,
        "evictions": cache.evictions,
    }
    return result
