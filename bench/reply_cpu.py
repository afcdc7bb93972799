"""CPU per `/generate` reply through the command core, for a full-length reply of a base-size model.

    python -m bench.reply_cpu                  # 60 replies, the table
    python -m bench.reply_cpu --tiny           # 3 short replies (a smoke test)
    python -m bench.reply_cpu --compare DIR    # also the checkout at DIR, each in a fresh process

A console channel with collection on holds a short conversation; each `/generate` (no prompt, so the
reply follows the conversation) goes through the console adapter and the whole command core: the serving
model and filter settings looked up, the channel's messages read as context, decoding with the lexicon,
the output filter and the copy guards of the model's lineage. The model is the packaged base model (GRU
384, the size channel models inherit) with its end-of-message logit lowered so far that it never ends a
message: every reply then runs its whole length, which a model that ends its message early never shows.
Overrun is 0, so a reply decodes its 160 tokens (and finishes its word), no more.

Two scenarios: replies after the same conversation (asked one after another: the model's state after
the conversation is remembered from the first, `textgen.context_states`), and a new message in the
channel before each reply (the conversation slides by one message: the generator starts from its state
after the message before, read from the zero state with the reply before, and reads the new one).

CPU is `time.process_time` (all threads of the process) around each reply; the median and 90th
percentile are over the replies, after warm-up replies that load the model and copy guards. Two floors
run in the same process, in both scenarios: `Generator.decode_best` alone with the same settings and
context (decoding with the lexicon, without the core), and the model's stepper alone (reading the new
message when there is one, then 160 steps taking the most likely token: the arithmetic no decoder can
skip). A second, instrumented pass says where the time goes (`bench.reply_cpu_stages`).

The machine is shared: `uptime` is printed before and after, and figures from a loaded machine are higher.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGED_BASE = REPO_ROOT / "chatsmith" / "data" / "base-model"
# The conversation the replies follow: short chat lines, as a support channel has them.
CONVERSATION = (
    "anyone else seeing the webhook retries pile up since this morning?",
    "yes, ours are stuck on 500s from the endpoint, looks like a timeout on their side",
    "did you try bumping the timeout in the dashboard settings",
    "not yet, where is that setting again?",
    "under developers then webhooks, click the endpoint and edit",
    "thanks, that fixed it for us",
)
LENGTH = 160
# Below what any logit of the model reaches: the end of message is never sampled.
NEVER = -1.0e4


def never_ending_model(source: Path, destination: Path) -> Path:
    """A copy of the bundle at `source` whose end-of-message logit bias is `NEVER` (the copy guard,
    lexicon and Keras weights linked, not copied)."""
    from textgen.bundle import WEIGHT_INDEX, read_manifest
    from textgen.tokenizers import EOS_ID
    from textgen.weights import read_weight_arrays, write_weight_arrays

    destination.mkdir(parents=True, exist_ok=True)
    for part in source.iterdir():
        if part.name not in ("weights.npy", "bundle.json"):
            (destination / part.name).symlink_to(part.resolve())
    manifest = read_manifest(source)
    arrays = read_weight_arrays(source / "weights.npy", manifest[WEIGHT_INDEX])
    weights = {name: np.array(array) for name, array in arrays.items()}
    weights["logits/bias"][EOS_ID] = NEVER
    manifest[WEIGHT_INDEX] = write_weight_arrays(destination / "weights.npy", weights)
    (destination / "bundle.json").write_text(json.dumps(manifest, indent=2))
    return destination


def quantiles(seconds: list[float]) -> dict[str, float]:
    """Median and 90th percentile, in milliseconds."""
    ordered = sorted(seconds)
    return {
        "median_ms": 1000 * statistics.median(ordered),
        "p90_ms": 1000 * float(np.percentile(ordered, 90)),
    }


async def core_replies(model: Path, work: Path, replies: int, warmup: int, length: int) -> dict[str, Any]:
    """CPU per `/generate` through the console adapter and the command core, in both scenarios, then once
    more per stage."""
    from bot.console import ConsoleChat
    from bot.core import BotConfig, CommandCore, build_services
    from db.model_store import LocalModelStore

    config = BotConfig(cooldowns={}, base_model_path=model, default_length=length, overrun=0.0)
    services = build_services(
        config, f"sqlite:///{work / 'bot.db'}", LocalModelStore(work / "models"), migrate_new_database=True
    )
    try:
        chat = ConsoleChat(CommandCore(services), "bench", "general", "admin", admin=True, files_dir=work)
        await chat.say("/collect on")
        for line in CONVERSATION:
            await chat.say(line)
        return {
            scenario: await _scenario(chat, replies, warmup, new_message, length)
            for scenario, new_message in SCENARIOS.items()
        }
    finally:
        services.close()


# The two ways a reply follows the conversation: after the same messages as the reply before it (replies
# asked for one after another), or after a message written since (a busy channel).
SCENARIOS = {"same conversation": False, "a new message before each": True}


async def _scenario(chat: Any, replies: int, warmup: int, new_message: bool, length: int) -> dict[str, Any]:
    """Replies timed one by one (a new chat line before each, untimed, when `new_message`), then the same
    again instrumented. Each asks for `length` tokens: the bot's defaults would draw a reply's length from
    the channel's messages (`BotConfig.length_from_channel`), and still read them."""
    from bench.reply_cpu_stages import StageClock, instrumented

    texts: list[str] = []
    written = [0]

    async def measured(count: int) -> list[float]:
        spent = []
        for _ in range(count):
            if new_message:
                written[0] += 1
                await chat.say(f"{CONVERSATION[written[0] % len(CONVERSATION)]} ({written[0]})")
            began = time.process_time()
            texts.extend(await chat.say(f"/generate length:{length}"))
            spent.append(time.process_time() - began)
        return spent

    await measured(warmup)
    seconds = await measured(replies)
    clock = StageClock()
    with instrumented(clock) as found:
        await measured(warmup)
        clock.take()
        staged = await measured(replies)
        stages = clock.take()
    return {
        **quantiles(seconds),
        "stages_ms": {stage: 1000 * stages.get(stage, 0.0) / replies for stage in found},
        "instrumented_mean_ms": 1000 * statistics.fmean(staged),
        "mean_chars": statistics.fmean(len(text) for text in texts),
        "sample": texts[-1],
    }


def decoding_alone(model: Path, replies: int, warmup: int, length: int) -> dict[str, Any]:
    """The floors, each in both scenarios: `Generator.decode_best` with the core's settings and context
    (decoding with the lexicon, without the core), and the model's stepper alone (reading the context,
    then `length` steps taking the most likely token)."""
    from bot.core import BotConfig, models
    from bot.core.generation import reply_params
    from bot.core.handlers.generate import CONTEXT_MESSAGES
    from textgen.context import prompt_with_context
    from textgen.generator import Generator

    # As the bots load it (an older checkout, compared with `--compare`, loads with `from_bundle`).
    load = getattr(models, "load_for_replies", Generator.from_bundle)
    generator = load(model)
    params = [reply_params(BotConfig(default_length=length, overrun=0.0), CONVERSATION)]
    tokens: list[int] = []
    said = list(CONVERSATION)

    def prompt(new_message: bool) -> list[int]:
        if new_message:  # someone writes: the conversation slides by one message, as the core's does
            said.append(f"{CONVERSATION[len(said) % len(CONVERSATION)]} ({len(said)})")
        return prompt_with_context(generator.tokenizer, said[-CONTEXT_MESSAGES:], "")

    def generate(new_message: bool) -> None:
        tokens.append(len(generator.decode_best([prompt(new_message)], params)[0].ids))

    def stepper_only(new_message: bool) -> None:
        stepper, fed = generator.stepper, prompt(new_message)
        newest = len(prompt_with_context(generator.tokenizer, said[-1:], "")) if new_message else 1
        state = stepper.initial_state(1)
        for token in fed[-newest:-1]:
            state = stepper.read(np.array([token]), state)
        token = fed[-1]
        for _ in range(length):
            logits, state = stepper.step(np.array([token]), state)
            token = int(np.argmax(logits[0]))

    figures: dict[str, Any] = {}
    for name, run in (("generator", generate), ("stepper", stepper_only)):
        for scenario, new_message in SCENARIOS.items():
            for _ in range(warmup):
                run(new_message)
            seconds = []
            for _ in range(replies):
                began = time.process_time()
                run(new_message)
                seconds.append(time.process_time() - began)
            figures[f"{name}, {scenario}"] = quantiles(seconds)
    figures["tokens_per_reply"] = statistics.fmean(tokens)
    figures["context_tokens"] = len(prompt(False))
    return figures


def measure(model: Path, replies: int, warmup: int, length: int) -> dict[str, Any]:
    """Every figure of one checkout (the one this process imports), as a dictionary."""
    with tempfile.TemporaryDirectory(prefix="reply-cpu-") as work:
        core = asyncio.run(core_replies(model, Path(work), replies, warmup, length))
    return {"core": core, "alone": decoding_alone(model, replies, warmup, length)}


def table(results: dict[str, dict[str, Any]]) -> str:
    """The figures of each checkout side by side (Markdown); with two checkouts, a last column with the
    ratio of the first to the second."""
    names = list(results)
    ratio = len(names) == 2
    lines = ["| CPU per reply (ms) | " + " | ".join(names) + (" | ratio |" if ratio else " |")]
    lines.append("| --- " * (len(names) + 1 + ratio) + "|")
    for label, values in _rows(list(results.values())):
        cells = ["—" if v is None else f"{v:.2f}" for v in values]
        if ratio:
            first, last = values
            cells.append("—" if not first or not last else f"{first / last:.2f}x")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rows(results: list[dict[str, Any]]) -> list[tuple[str, list[float | None]]]:
    rows: list[tuple[str, list[float | None]]] = []
    for scenario in SCENARIOS:
        for key, label in (("median_ms", "median"), ("p90_ms", "p90")):
            values = [r["core"][scenario][key] for r in results]
            rows.append((f"**/generate through the core, {scenario}: {label}**", values))
    for name, label in (("generator", "Generator.decode_best alone"), ("stepper", "stepper alone (floor)")):
        for scenario in SCENARIOS:
            key = f"{name}, {scenario}"
            rows.append((f"{label}, {scenario}: median", [r["alone"][key]["median_ms"] for r in results]))
    for scenario in SCENARIOS:
        figures = [r["core"][scenario] for r in results]
        stages = list(dict.fromkeys(stage for f in figures for stage in f["stages_ms"]))
        for stage in stages:
            rows.append((f"{scenario}: {stage}", [f["stages_ms"].get(stage) for f in figures]))
        rows.append((f"{scenario}: (instrumented, mean)", [f["instrumented_mean_ms"] for f in figures]))
    return rows


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _child(code: Path, model: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The figures of the checkout at `code`, measured in a fresh process."""
    command = [sys.executable, "-m", "bench.reply_cpu", "--child", str(code), "--model", str(model)]
    command += ["--replies", str(args.replies), "--warmup", str(args.warmup), "--length", str(args.length)]
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    if done.returncode != 0:
        raise SystemExit(f"the run of {code} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=60, help="replies measured (after the warm-up)")
    parser.add_argument("--warmup", type=int, default=5, help="replies before the clock starts")
    parser.add_argument("--length", type=int, default=LENGTH, help="tokens per reply")
    parser.add_argument("--tiny", action="store_true", help="3 replies of 24 tokens: checks that it runs")
    parser.add_argument("--compare", type=Path, help="another checkout to measure the same way, first")
    parser.add_argument("--base", type=Path, default=PACKAGED_BASE, help="the base-size model to copy")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tiny:
        args.replies, args.warmup, args.length = 3, 1, 24
    if args.child is not None:
        # This process measures the checkout at --child: its packages come first on the path.
        sys.path.insert(0, str(args.child.resolve()))
        print(json.dumps(measure(args.model, args.replies, args.warmup, args.length)))
        return 0
    print(f"uptime before: {_uptime()}")
    with tempfile.TemporaryDirectory(prefix="reply-cpu-model-") as scratch:
        model = never_ending_model(args.base, Path(scratch) / "never-ends")
        results: dict[str, dict[str, Any]] = {}
        if args.compare is not None:
            results[f"before ({args.compare})"] = _child(args.compare, model, args)
        results["this checkout"] = _child(REPO_ROOT, model, args)
    print(f"uptime after: {_uptime()}")
    last = results["this checkout"]
    print(
        f"{args.replies} replies of {args.length} tokens (the model never ends its message; overrun 0), "
        f"{last['alone']['context_tokens']} tokens of context, {last['alone']['tokens_per_reply']:.0f} tokens "
        f"decoded per reply alone; CPU is time.process_time, all threads; stages from a separate "
        "instrumented pass (mean per reply)\n"
    )
    print(table(results))
    for scenario in SCENARIOS:
        print(f"\nlast reply, {scenario}: {last['core'][scenario]['sample']!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
