"""How many of the conversation's last messages a reply should read: figures for each number, one model.

Fine-tunes the packaged base model on the Stripe channel's older messages (the replies benchmark's split and
budget, `bench.reply_quality`), then, for 0, 1, 2, 4 and 8 messages of context: the held-out messages'
nats per character read after that many messages, and the detectability AUC of 600 replies per seed over
3 seeds at the bot's defaults (mean and spread), their mean length and CPU per reply. The context is also
bounded by `textgen.context.DEFAULT_CONTEXT_TOKENS`, so counts past what fits read the same tokens.

    python -m bench.context_length            # about 3 minutes
    python -m bench.context_length --quick    # 100 replies, 1 seed, a 10 s fine-tune
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.reply_quality import (
    BASE_MODEL,
    REPLIES,
    SEEDS,
    Judge,
    build_lexicon,
    channel_log,
    copy_index,
    irc_lexicon_corpus,
    model_writer,
    read_channel,
    split_newest,
    train_channel_model,
)
from bench.reply_writers import Decoding
from bench.settings import RunSettings
from bench.sources import find_sources
from bot.core.services import BotConfig

COUNTS = (0, 1, 2, 4, 8)


def measure(settings: RunSettings) -> str:
    """The table (Markdown), one row per number of context messages."""
    from textgen.bundle import load_serving_bundle
    from textgen.evaluate import evaluate_in_context

    mode = "quick" if settings.quick else "full"
    lines = read_channel(channel_log(settings))
    history_lines, held_out_lines = split_newest(lines)
    history = [line.text for line in history_lines]
    held_out = [line.text for line in held_out_lines]
    judge = Judge(build_lexicon([history, irc_lexicon_corpus(settings)]), copy_index(history), held_out)
    rows = [
        "| context messages | held-out nats/char | detectability AUC | spread over seeds | mean characters "
        "| CPU per reply |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    with tempfile.TemporaryDirectory(prefix="chatsmith-bench-context-") as tmp:
        started = time.monotonic()
        tuned = train_channel_model(history, held_out, Path(tmp) / "tuned", settings, BASE_MODEL)
        print(f"[bench] fine-tuned in {time.monotonic() - started:.0f} s", flush=True)
        serving = load_serving_bundle(tuned)
        for count in COUNTS:
            in_context, alone = evaluate_in_context(serving, held_out, max(count, 1))
            nats = (in_context if count else alone).nats_per_char
            decoding = Decoding(f"{count} messages", BotConfig(), context=count > 0)
            figures = model_writer(
                judge, tuned, BASE_MODEL, decoding, REPLIES[mode], SEEDS[mode], max(count, 1)
            )
            rows.append(
                f"| {count} | {nats:.4f} | {figures['auc']:.3f} | ±{figures['auc_spread']:.3f} "
                f"| {figures['mean_chars']:.0f} | {figures['cpu_ms_per_reply']:.1f} ms |"
            )
            print(rows[-1], flush=True)
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.context_length", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="100 replies, 1 seed, a 10 s fine-tune")
    args = parser.parse_args(argv)
    print(measure(RunSettings(quick=args.quick, sources=find_sources())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
