"""Two base models side by side, in one script: the packaged one (or `--incumbent`) and a candidate.

    python -m bench.base_model_compare --candidate DIR [--incumbent DIR] [--quick]

Every new channel starts from the base model, so each is measured where it is used:

- held-out nats per character on the newest part of its own corpus (the Ubuntu IRC log's last 5%, which
  `make base-model` holds out as its test part and never trains on; the first `--test-chars` characters);
- untouched, on a channel neither model saw (the whole Stripe IRC log);
- fine-tuned on that channel's older two thirds for 60 s (the replies benchmark's split and budget,
  `bench.reply_quality`), scored on its newest third; and the replies of that channel model at the bot's
  defaults, over 3 seeds, with the detectability AUC (a classifier telling them from the held-out
  messages; 0.5 = indistinguishable), copies and distinct word pairs.

Both models run one after the other in this process, so the rows compare on a machine whose speed moves.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.reply_quality import (
    BASE_MODEL,
    REPLIES,
    SEEDS,
    Judge,
    build_lexicon,
    channel_log,
    copy_index,
    held_out_nats,
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

# `make base-model` holds out the last 5% of its corpus (`chatsmith train`'s default test fraction).
BASE_TEST_FRACTION = 0.05
BASE_VAL_FRACTION = 0.02


def base_test_part(corpus: Path, max_chars: int) -> list[str]:
    """The first `max_chars` characters of the test part `make base-model` holds out of `corpus`."""
    from textgen.corpus import load_corpus
    from textgen.holdout import head_of, split_holdout
    from textgen.slurs import without_slurs

    messages, _ = without_slurs(load_corpus(corpus, "irc", keep_records=False).messages)
    _, _, test = split_holdout(messages, BASE_VAL_FRACTION, BASE_TEST_FRACTION)
    return head_of(test, max_chars)


def measure_base(
    base: Path, judge: Judge, history: list[str], base_test: list[str], settings: RunSettings, work: Path
) -> dict[str, Any]:
    """One base model's figures (see the module docstring)."""
    mode = "quick" if settings.quick else "full"
    began = time.monotonic()
    figures: dict[str, Any] = {
        "own test part": held_out_nats(base, base_test),
        "unseen channel, untouched": held_out_nats(base, [*history, *judge.held_out]),
    }
    tuned = train_channel_model(history, judge.held_out, work / "tuned", settings, base)
    figures["unseen channel, fine-tuned"] = held_out_nats(tuned, judge.held_out)
    decoding = Decoding("the bot's defaults", BotConfig())
    figures["replies"] = model_writer(judge, tuned, base, decoding, REPLIES[mode], SEEDS[mode])
    figures["seconds"] = time.monotonic() - began
    return figures


def table(results: dict[str, dict[str, Any]]) -> str:
    """The figures of each base model, one column each (Markdown)."""
    names = list(results)
    lines = ["| | " + " | ".join(names) + " |", "| --- " * (len(names) + 1) + "|"]
    for key in ("own test part", "unseen channel, untouched", "unseen channel, fine-tuned"):
        lines.append(f"| nats/char, {key} | " + " | ".join(f"{r[key]:.4f}" for r in results.values()) + " |")
    replies = [r["replies"] for r in results.values()]
    rows = (
        ("detectability AUC of the fine-tune's replies (mean ± spread)", "{auc:.3f} ± {auc_spread:.3f}"),
        ("copies of 8+ words", "{copy_rate:.1%}"),
        ("distinct word pairs", "{distinct_pairs:.3f}"),
        ("mean characters per reply", "{mean_chars:.0f}"),
        ("CPU per reply", "{cpu_ms_per_reply:.1f} ms"),
    )
    for label, form in rows:
        lines.append(f"| {label} | " + " | ".join(_cell(form, r) for r in replies) + " |")
    return "\n".join(lines)


def _cell(form: str, figures: dict[str, Any]) -> str:
    try:
        return form.format(**figures)
    except KeyError:
        return "—"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.base_model_compare", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--candidate", type=Path, required=True, help="the new base model's bundle")
    parser.add_argument("--incumbent", type=Path, default=BASE_MODEL, help="default: the packaged base model")
    parser.add_argument("--test-chars", type=int, default=500_000, help="characters of the base test part")
    parser.add_argument("--quick", action="store_true", help="100 replies, 1 seed, a 10 s fine-tune")
    args = parser.parse_args(argv)
    settings = RunSettings(quick=args.quick, sources=find_sources())
    if settings.sources.irc is None:
        parser.error(
            "the Ubuntu IRC log (the base model's corpus) is needed: see bench/README or ../shared/data"
        )
    for bundle in (args.candidate, args.incumbent):
        if not (bundle / "bundle.json").is_file():
            parser.error(
                f"{bundle} is not a model bundle (no bundle.json); give a directory `chatsmith train` wrote"
            )
    lines = read_channel(channel_log(settings))
    history_lines, held_out_lines = split_newest(lines)
    history = [line.text for line in history_lines]
    held_out = [line.text for line in held_out_lines]
    judge = Judge(build_lexicon([history, irc_lexicon_corpus(settings)]), copy_index(history), held_out)
    base_test = base_test_part(settings.sources.irc, args.test_chars)
    results = {}
    with tempfile.TemporaryDirectory(prefix="chatsmith-base-compare-") as tmp:
        for name, bundle in (("incumbent", args.incumbent), ("candidate", args.candidate)):
            print(f"[base-compare] {name}: {bundle}", flush=True)
            (Path(tmp) / name).mkdir()
            results[f"{name} ({bundle.name})"] = measure_base(
                bundle, judge, history, base_test, settings, Path(tmp) / name
            )
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
