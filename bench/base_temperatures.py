"""The bot's temperature checked where nothing was tuned: the packaged base model on its own held-out chat.

The replies benchmark (`bench.reply_quality`) measures decoding on the Stripe channel, and the bot's
defaults were chosen from its table. This script checks the temperature on other messages and another
model: the packaged base model's replies at the bot's defaults, temperature aside, after conversations of
the Ubuntu IRC log's test part (the newest 5% that `make base-model` holds out: never trained on, never
used to choose a setting). For each temperature: the detectability AUC of 600 replies per seed against the
held-out messages over 3 seeds (mean and range), distinct word pairs, copies of 8+ words of a held-out
message, mean length; and the real-against-real calibration.

    python -m bench.base_temperatures                          # 0.8, 0.9, 1.0, 1.1; about 2 minutes
    python -m bench.base_temperatures --temperatures 0.8,1.0   # others
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

from bench.base_model_compare import base_test_part
from bench.detectability import calibration_auc
from bench.reply_quality import BASE_MODEL, REPLIES, SEEDS, Judge, copy_index, model_writer
from bench.reply_writers import Decoding
from bench.sources import find_sources
from bot.core.services import BotConfig

TEMPERATURES = (0.8, 0.9, 1.0, 1.1)


def measure(
    base: Path, held_out: list[str], temperatures: list[float], replies: int, seeds: int
) -> list[str]:
    """Table lines: one row per temperature, at the bot's other defaults."""
    judge = Judge(set(), copy_index(held_out), held_out)
    lines = [
        "| temperature | detectability AUC | range over seeds | distinct word pairs | copies | mean characters |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    print("\n".join(lines), flush=True)
    for temperature in temperatures:
        decoding = Decoding(f"temperature {temperature}", replace(BotConfig(), temperature=temperature))
        figures = model_writer(judge, base, base, decoding, replies, seeds)
        default = " (the bot's default)" if temperature == BotConfig().temperature else ""
        lines.append(
            f"| {temperature}{default} | {figures['auc']:.3f} | {figures['auc_spread']:.3f} | "
            f"{figures['distinct_pairs']:.2f} | {figures['copy_rate']:.1%} | {figures['mean_chars']:.0f} |"
        )
        print(lines[-1], flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.base_temperatures", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--temperatures", default=",".join(map(str, TEMPERATURES)), help="comma-separated temperatures"
    )
    parser.add_argument(
        "--replies", type=int, default=REPLIES["full"], help="replies per seed and temperature"
    )
    parser.add_argument("--seeds", type=int, default=SEEDS["full"], help="generation seeds")
    parser.add_argument("--base", type=Path, default=BASE_MODEL, help="default: the packaged base model")
    parser.add_argument("--test-chars", type=int, default=500_000, help="characters of the test part")
    args = parser.parse_args(argv)
    try:
        temperatures = [float(value) for value in args.temperatures.split(",")]
    except ValueError:
        parser.error(f"--temperatures takes numbers separated by commas, received {args.temperatures!r}")
    if any(temperature <= 0 for temperature in temperatures):
        parser.error(f"--temperatures must be above 0 (replies are sampled), received {args.temperatures!r}")
    irc = find_sources().irc
    if irc is None:
        parser.error(
            "the Ubuntu IRC log (the base model's corpus) is needed: see bench/README or ../shared/data"
        )
    started = time.monotonic()
    held_out = base_test_part(irc, args.test_chars)
    print(
        f"{len(held_out)} held-out messages of {irc.name}'s test part, "
        f"{statistics.fmean(map(len, held_out)):.0f} characters on average; calibration (real against "
        f"real) {calibration_auc(held_out):.3f}; {args.replies} replies x {args.seeds} seeds per row",
        flush=True,
    )
    measure(args.base, held_out, temperatures, args.replies, args.seeds)
    print(f"{time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
