"""Serving benchmark: `/generate` at a steady rate over 1, 50 and 1,000 channel models, through the
command core, in a bot process that never imports TensorFlow.

    python -m bench.serving [--quick] [--seconds S] [--rate R] [--out FILE]     (make bench-serving)

Each part runs in a fresh child process, so one part's memory never shows in another's:

1. `setup` (TensorFlow allowed): one bundle per spec written by `save_bundle`, then copied once per
   channel with its own random weights (`weights.npy`; the other files hard-linked) and the packaged base
   model's lexicon (as a model fine-tuned from it carries), published in the model store and registered
   as the channel's active model in an embedded SQLite database.
2. `serve`, once per model count (TensorFlow blocked: importing it fails): the bots' modules imported
   and their services built as `chatsmith bot` builds them (default cache, 128 MB), then requests
   `CommandCore.handle(generate)` sent open-loop at `--rate` per second, each for a channel picked at
   random, and their time to the reply (the follow-up) recorded. Cooldowns are off (they would refuse
   most requests of one channel at 20/s); replies are the default 160 tokens.
3. `cycles` (TensorFlow blocked): bundle load times (`Generator.from_bundle`), and the resident memory of
   1,000 loads of different models through a cache that keeps only a few, each model generating once.

Models have random weights: replies run their full length (a random model rarely ends a message), which
is the slow case. Results go to stdout and, for a full run, to `bench/SERVING.md`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMITTED = REPO_ROOT / "bench" / "SERVING.md"
RECORD = REPO_ROOT / "bench" / "results" / "serving.json"
MIB = 1024 * 1024

# The base model's shape (GRU, 384 units) for the 1 and 50 model runs; a small GRU for the 1,000, so
# that 1,000 bundles stay a few hundred megabytes on disk. Both with the byte tokenizer (260 tokens).
SPECS: dict[str, dict[str, Any]] = {
    "base": {"arch": "gru", "layers": 1, "units": 384, "embedding": 64, "seq_len": 64},
    "small": {"arch": "gru", "layers": 1, "units": 128, "embedding": 32, "seq_len": 64},
}
# Model count -> spec, for a full and a quick run.
SCENARIOS = {1: "base", 50: "base", 1000: "small"}
QUICK_SCENARIOS = {1: "base", 10: "base", 100: "small"}
GOALS = {"p99_ms": 300, "rss_mb": 400, "rss_before_mb": 200, "load_ms": 5, "cycles_growth_mb": 50}


def _progress(message: str) -> None:
    print(f"[serving] {message}", file=sys.stderr, flush=True)


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


# ------------------------------------------------------------------------------------------------ setup


def setup(work: Path, scenarios: dict[int, str]) -> dict[str, Any]:
    """Template bundles, one copy per channel with its own weights, registered as active channel models."""
    import numpy as np
    from sqlalchemy.orm import Session

    from chatsmith.base_model import find_base_model
    from db.model_store import LocalModelStore
    from db.registry import create_version, promote
    from db.schema import open_database, upgrade
    from db.scopes import Scope, get_or_create_channel, get_or_create_workspace
    from textgen.bundle import MANIFEST, WEIGHT_ARRAYS, WEIGHT_INDEX, save_bundle
    from textgen.lexicon import LEXICON_FILE
    from textgen.model import build_model
    from textgen.spec import ModelSpec
    from textgen.tokenizers import ByteTokenizer
    from textgen.weights import read_weight_arrays, write_weight_arrays

    base = find_base_model(None)
    lexicon = base / LEXICON_FILE if base is not None and (base / LEXICON_FILE).exists() else None
    tokenizer = ByteTokenizer()
    templates = {}
    for name in set(scenarios.values()):
        spec = ModelSpec(**SPECS[name])
        templates[name] = save_bundle(
            work / "templates" / name, build_model(spec, tokenizer.vocab_size), spec, tokenizer
        )
    url = f"sqlite:///{work / 'bot.db'}"
    upgrade(url)
    engine = open_database(url)
    store = LocalModelStore(work / "models")
    rng = np.random.default_rng(0)
    with Session(engine) as session, session.begin():
        workspace = get_or_create_workspace(session, "discord", "bench")
        for count, name in scenarios.items():
            template = templates[name]
            index = json.loads((template / MANIFEST).read_text())[WEIGHT_INDEX]
            weights = read_weight_arrays(template / WEIGHT_ARRAYS, index)
            for number in range(count):
                channel = get_or_create_channel(session, workspace, channel_name(count, number))
                session.flush()
                scope = Scope.of(channel)
                staged = store.new_staging_dir(f"bench-{count}-{number}")
                for item in template.iterdir():
                    if item.name != WEIGHT_ARRAYS:
                        os.link(item, staged / item.name)
                if lexicon is not None:
                    # A model fine-tuned from the base model spells from its words too, as trained ones do.
                    os.link(lexicon, staged / lexicon.name)
                # Larger-than-initial weights of its own: every model is different data.
                write_weight_arrays(
                    staged / WEIGHT_ARRAYS,
                    {key: w + rng.normal(0, 0.2, w.shape).astype(np.float32) for key, w in weights.items()},
                )
                location = store.publish(staged, scope.scope_key, 1)
                version = create_version(
                    session,
                    scope,
                    tokenizer_kind="byte",
                    spec=SPECS[name],
                    bundle_path=location,
                    status="candidate",
                )
                promote(session, version)
    engine.dispose()
    sizes = {name: sum(f.stat().st_size for f in t.iterdir()) for name, t in templates.items()}
    return {"bundle_bytes": sizes}


# ------------------------------------------------------------------------------------------------ serve


def serve(work: Path, count: int, rate: float, seconds: float) -> dict[str, Any]:
    """`rate` generate requests per second for `seconds`, over `count` channel models; figures as JSON."""
    block_tensorflow()
    started_rss = rss_bytes()
    import bot.discord_bot  # noqa: F401  (the adapters' imports count: a bot process has them)
    import bot.slack_app  # noqa: F401
    from bot.core import BotConfig, CommandCore, Request, build_services
    from chatsmith.base_model import find_base_model
    from db.model_store import LocalModelStore

    config = BotConfig(cooldowns={}, base_model_path=find_base_model(None))
    services = build_services(config, f"sqlite:///{work / 'bot.db'}", LocalModelStore(work / "models"))
    core = CommandCore(services)
    before_rss = rss_bytes()
    picker = random.Random(count)
    latencies: list[float] = []
    outcomes = {"answered": 0, "busy": 0, "other": 0}
    others: set[str] = set()

    async def one(request: Any, due: float) -> None:
        reply = await core.handle(request)
        latencies.append(time.perf_counter() - due)
        text = reply.text
        if text.startswith("hello there"):
            outcomes["answered"] += 1
        elif "busy" in text:
            outcomes["busy"] += 1
        else:
            outcomes["other"] += 1
            others.add(text[:80])

    async def drive() -> float:
        tasks = []
        total = int(rate * seconds)
        began = time.perf_counter()
        for number in range(total):
            due = began + number / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            channel = channel_name(count, picker.randrange(count))
            request = Request(
                "discord",
                "bench",
                channel,
                f"u{picker.randrange(10_000)}",
                "generate",
                {"prompt": "hello there"},
            )
            tasks.append(asyncio.create_task(one(request, due)))
        await asyncio.gather(*tasks)
        return time.perf_counter() - began

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    with _RssSampler() as sampler:
        wall = asyncio.run(drive())
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    ordered = sorted(latencies)
    result = {
        "models": count,
        "requests": len(latencies),
        "rate": rate,
        "seconds": round(wall, 1),
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
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
        **outcomes,
        "other_replies": sorted(others),
        "tensorflow_imported": "tensorflow" in sys.modules or "keras" in sys.modules,
    }
    services.close()
    return result


# ----------------------------------------------------------------------------------------------- cycles


def cycles(work: Path, count: int, scenarios: dict[int, str]) -> dict[str, Any]:
    """Bundle load times, and resident memory across `count` loads of different models."""
    block_tensorflow()
    from bot.core.models import ModelCache
    from chatsmith.base_model import find_base_model
    from textgen.generator import Generator
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
            Generator.from_bundle(path)
            times.append(1000 * (time.perf_counter() - began))
        ordered = sorted(times)
        return {
            "n": len(times),
            "median_ms": statistics.median(ordered),
            "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        }

    Generator.from_bundle(small[0])  # first load: imports, thread limits
    result: dict[str, Any] = {
        "load_small": load_times(small[:200]),
        "load_base_spec": load_times(base_spec[:50]),
    }
    packaged = find_base_model(None)
    if packaged is not None:
        result["load_packaged_base_h5"] = load_times([packaged] * 5)
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


# ------------------------------------------------------------------------------------------------ driver


def run_child(role: str, *args: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.serving", "--child", role, *args]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=environment)
    if completed.returncode != 0:
        raise SystemExit(f"error: bench.serving {role} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def format_report(record: dict[str, Any]) -> str:
    """The Markdown report: the setting, then each variant's tables and goals, then batching across models."""
    specs = ", ".join(
        f"{n:,} model{'s' if n > 1 else ''}: GRU {SPECS[s]['units']} units"
        for n, s in record["scenarios"].items()
    )
    lines = [
        "# Serving benchmark",
        "",
        f"`make bench-serving` (`python -m bench.serving`), {record['date']}. {record['machine']}",
        "",
        f"{record['rate']:g} `/generate` per second for {record['seconds']:g} s through the command core "
        "(`CommandCore.handle`), each for a channel picked at random among the channels with a model of "
        "their own; the bot process built as `chatsmith bot` builds it (default 128 MB model cache, 2 "
        "decoding threads), TensorFlow blocked. Replies of 160 tokens (random weights: full length). "
        f"Specs: {specs} "
        "(embedding 64 for 384 units, 32 for 128; byte tokenizer). Follow-up: from the moment a request "
        "was due to its reply. Run twice on the same bundles: each carrying the packaged base model's "
        "lexicon (26,000 words; `textgen.lexicon`), as a model fine-tuned from it does, and without one "
        "(the decoding path alone).",
        "",
        "The machine is shared: other people's jobs ran on the same 2 cores and the benchmark ran at "
        '`nice -n 19`, so follow-up times include waiting for a core ("machine load" is the 1-minute load '
        "average at the end of each run; above 2, the cores were oversubscribed). The CPU per request "
        "depends far less on that: at 20 requests per second it says how much of one core serving needs.",
    ]
    for variant in record["variants"]:
        lines += format_variant(variant)
    lines += [
        "",
        "## Batching across models",
        "",
        "`python -m bench.cross_model_batching`: M models of one spec (GRU, different random weights), one "
        "160-token reply each, decoded per model (what the bots do) or stacked into one step for all M "
        "(weights stacked once, `np.matmul` over the stacked kernels). Recurrent steps and logits only, best "
        "of 3, one thread.",
        "",
        record["cross_model_batching"].strip(),
    ]
    return "\n".join(lines) + "\n"


def format_variant(variant: dict[str, Any]) -> list[str]:
    runs = variant["runs"]
    cycles_result = variant["cycles"]
    lines = [
        "",
        f"## {variant['label']}",
        "",
        "| channel models | follow-up p50 | p99 | max | resident memory: before serving / peak / end | "
        "model loads (evictions) | bot CPU (per request) | mean batch | answered / busy / other | "
        "machine load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        lines.append(
            f"| {run['models']:,} | {run['p50_ms']:.0f} ms | {run['p99_ms']:.0f} ms | {run['max_ms']:.0f} ms | "
            f"{run['rss_before_serving_mb']:.0f} / {run['rss_peak_mb']:.0f} / {run['rss_end_mb']:.0f} MB | "
            f"{run['model_loads']:,} ({run['evictions']:,}) | {run['cpu_percent']:.0f}% ({run['cpu_ms_per_request']:.0f} ms) | {run['mean_batch']:.2f} | "
            f"{run['answered']} / {run['busy']} / {run['other']} | {run.get('load_average', 0):.1f} |"
        )
    largest = runs[-1]
    lines += [
        "",
        "| bundle load (`Generator.from_bundle`, page cache warm) | median | p99 |",
        "| --- | --- | --- |",
    ]
    for key, label in (
        ("load_small", "GRU 128, `weights.npy` memory-mapped"),
        ("load_base_spec", "GRU 384, `weights.npy` memory-mapped"),
        ("load_packaged_base_h5", "the packaged base model (GRU 384), `model.weights.h5` read with h5py"),
    ):
        if key in cycles_result:
            figures = cycles_result[key]
            lines.append(
                f"| {label} ({figures['n']} loads) | {figures['median_ms']:.2f} ms | {figures['p99_ms']:.2f} ms |"
            )
    cyc = cycles_result["cycles"]
    lines += [
        "",
        f"Load/evict cycles: {cyc['loads']:,} loads of {cyc['distinct_bundles']:,} different GRU 128 bundles "
        f"through an 8 MB cache ({cyc['evictions']:,} evictions), each model generating 40 tokens: resident "
        f"memory {cyc['rss_start_mb']:.0f} MB after 50 warm-up loads, peak {cyc['rss_peak_mb']:.0f} MB, "
        f"{cyc['rss_end_mb']:.0f} MB at the end ({cyc['growth_mb']:+.1f} MB).",
        "",
        "| goal | target | measured | met |",
        "| --- | --- | --- | --- |",
    ]
    checks = [
        (
            f"follow-up p99, {largest['models']:,} models",
            f"< {GOALS['p99_ms']} ms",
            f"{largest['p99_ms']:.0f} ms",
            largest["p99_ms"] < GOALS["p99_ms"],
        ),
        (
            f"resident memory, {largest['models']:,} models (peak)",
            f"< {GOALS['rss_mb']} MB",
            f"{largest['rss_peak_mb']:.0f} MB",
            largest["rss_peak_mb"] < GOALS["rss_mb"],
        ),
        (
            "bot process before serving",
            f"< {GOALS['rss_before_mb']} MB",
            f"{max(r['rss_before_serving_mb'] for r in runs):.0f} MB",
            max(r["rss_before_serving_mb"] for r in runs) < GOALS["rss_before_mb"],
        ),
        (
            "bundle load (GRU 384, median)",
            f"< {GOALS['load_ms']} ms",
            f"{cycles_result['load_base_spec']['median_ms']:.2f} ms",
            cycles_result["load_base_spec"]["median_ms"] < GOALS["load_ms"],
        ),
        (
            f"{cyc['loads']:,} load/evict cycles",
            f"within {GOALS['cycles_growth_mb']} MB",
            f"{cyc['growth_mb']:+.1f} MB",
            abs(cyc["growth_mb"]) < GOALS["cycles_growth_mb"],
        ),
        (
            "TensorFlow imported by the bot process",
            "never",
            "yes" if any(r["tensorflow_imported"] for r in runs) else "never",
            not any(r["tensorflow_imported"] for r in runs),
        ),
    ]
    for goal, target, measured, met in checks:
        lines.append(f"| {goal} | {target} | {measured} | {'yes' if met else '**no**'} |")
    lines += [
        "",
        '"Other" replies are the friendly line for a model that ended its message at once; "busy" ones were '
        "refused at once by the bounded generation queue. Mean batch: requests decoded together per "
        "`generate_many` call.",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.serving",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1, 10 and 100 models, 8 s each")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per run (default 45; quick 8)")
    parser.add_argument("--rate", type=float, default=20.0, help="generate requests per second (default 20)")
    parser.add_argument("--cycles", type=int, default=1000, help="load/evict cycles (default 1000)")
    parser.add_argument(
        "--out", type=Path, default=None, help="Markdown report (default: bench/SERVING.md for a full run)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    scenarios = QUICK_SCENARIOS if args.quick else SCENARIOS
    if args.child:
        role, work, *rest = args.child
        if role == "setup":
            result = setup(Path(work), scenarios)
        elif role == "serve":
            result = serve(Path(work), int(rest[0]), float(rest[1]), float(rest[2]))
        else:
            result = cycles(Path(work), int(rest[0]), scenarios)
        print(json.dumps(result))
        return 0
    seconds = args.seconds if args.seconds is not None else (8.0 if args.quick else 45.0)
    work = Path(tempfile.mkdtemp(prefix="chatsmith-serving-"))
    quick = ["--quick"] if args.quick else []
    try:
        _progress(f"writing {sum(scenarios)} bundles in {work}")
        made = run_child("setup", str(work), *quick)
        variants: list[dict[str, Any]] = []
        for label in ("With the base model's lexicon in every bundle", "Without a lexicon"):
            if variants:
                from textgen.lexicon import LEXICON_FILE

                for lexicon in (work / "models").glob(f"workspace-*/channel-*/model-v1/{LEXICON_FILE}"):
                    lexicon.unlink()
            _progress(label)
            runs = []
            for count in scenarios:
                _progress(f"{count} models: {args.rate:g}/s for {seconds:g} s")
                run = run_child("serve", str(work), str(count), str(args.rate), str(seconds), *quick)
                _progress(
                    f"  p50 {run['p50_ms']:.0f} ms, p99 {run['p99_ms']:.0f} ms, peak {run['rss_peak_mb']:.0f} MB"
                )
                runs.append(run)
            _progress("bundle loads and load/evict cycles")
            cycles_result = run_child("cycles", str(work), str(args.cycles), *quick)
            variants.append({"label": label, "runs": runs, "cycles": cycles_result})
        _progress("batching across models (bench.cross_model_batching)")
        batching = subprocess.run(
            [sys.executable, "-m", "bench.cross_model_batching"],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            check=True,
        ).stdout
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} CPUs, load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} at the end.",
        "rate": args.rate,
        "seconds": seconds,
        "scenarios": scenarios,
        "bundles": made,
        "variants": variants,
        "cross_model_batching": batching,
    }
    report = format_report(record)
    print(report)
    out = args.out or (COMMITTED if not args.quick else None)
    if out is not None:
        out.write_text(report, encoding="utf-8")
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
