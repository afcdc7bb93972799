"""What gives the bot's replies away: the features the detectability classifier leans on, and two tells
that can be counted, length and the members a reply names.

`python -m bench.reply_tells [--model BUNDLE] [--replies 600] [--seeds 3]` writes replies as `/generate`
does at the bot's defaults (`bench.reply_writers.bot_replies`) after points of the Stripe channel's
newest third, and prints, beside the channel's own held-out messages:

- lengths: mean and median characters, the share of 20 characters or fewer and of more than 150;
- names: the share of texts naming a member of the channel (a message's author), and of texts naming a
  member who wrote nothing in the held-out period (someone the conversation the reply follows has not
  seen for months);
- the detectability AUC (`bench.detectability`) as measured, and with every member's name replaced by
  one placeholder on both sides: how much of the figure the names carry;
- the classifier's strongest features on each side, fitted once on all texts.

Without `--model` the packaged base model is fine-tuned 60 s on the channel's history first, as the
replies benchmark's "fine-tuned" row is. Figures come from one process; compare them with each other.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.detectability import detectability_auc, make_classifier
from bot.core.names import NAME_LIKE, readdress

NAME_PLACEHOLDER = "NAME"
SHORT_CHARS = 20
LONG_CHARS = 150


def names_in(text: str, names: set[str]) -> set[str]:
    """The members of `names` (lowercase) that `text` writes, with or without a leading @."""
    return {word for m in NAME_LIKE.finditer(text) if (word := m.group(0).lstrip("@").lower()) in names}


def mask_names(text: str, names: set[str]) -> str:
    """`text` with every member of `names` (lowercase, @ or not) written as `NAME_PLACEHOLDER`."""
    return NAME_LIKE.sub(
        lambda m: NAME_PLACEHOLDER if m.group(0).lstrip("@").lower() in names else m.group(0), text
    )


def length_profile(texts: Sequence[str]) -> dict[str, float]:
    """Mean and median characters, and the shares of short and long texts."""
    lengths = [len(text) for text in texts]
    return {
        "mean_chars": statistics.mean(lengths),
        "median_chars": statistics.median(lengths),
        "short_share": sum(n <= SHORT_CHARS for n in lengths) / len(lengths),
        "long_share": sum(n > LONG_CHARS for n in lengths) / len(lengths),
    }


def name_profile(texts: Sequence[str], members: set[str], absent: set[str]) -> dict[str, float]:
    """The shares of `texts` naming any of `members`, and naming one of `absent`."""
    return {
        "names_member": sum(bool(names_in(text, members)) for text in texts) / len(texts),
        "names_absent_member": sum(bool(names_in(text, absent)) for text in texts) / len(texts),
    }


def strongest_features(
    written: Sequence[str], real: Sequence[str], count: int
) -> tuple[list[str], list[str]]:
    """The `count` features that most say "written" and most say "real", from the detectability
    classifier fitted once on all texts (character n-grams quoted, words as they are)."""
    classifier = make_classifier()
    classifier.fit([text or " " for text in [*written, *real]], [1] * len(written) + [0] * len(real))
    union, regression = classifier.steps[0][1], classifier.steps[-1][1]
    names = union.get_feature_names_out()
    order = np.argsort(regression.coef_[0])

    def shown(index: int) -> str:
        kind, feature = str(names[index]).split("__", 1)
        return repr(feature) if kind == "characters" else feature

    return [shown(i) for i in order[::-1][:count]], [shown(i) for i in order[:count]]


def tells(
    written: list[str],
    readdressed: list[str],
    real: list[str],
    members: set[str],
    absent: set[str],
    seeds: Iterable[int],
) -> dict[str, Any]:
    """Every figure of the report for `written` (and the same replies `readdressed`) against `real`."""
    seeds = list(seeds)
    masked_written = [mask_names(text, members) for text in written]
    masked_real = [mask_names(text, members) for text in real]
    reply_side, real_side = strongest_features(written, real, 30)
    return {
        "written": {**length_profile(written), **name_profile(written, members, absent)},
        "real": {**length_profile(real), **name_profile(real, members, absent)},
        "auc": [detectability_auc(written, real, seed=seed) for seed in seeds],
        "auc_names_masked": [detectability_auc(masked_written, masked_real, seed=seed) for seed in seeds],
        "auc_readdressed": [detectability_auc(readdressed, real, seed=seed) for seed in seeds],
        "reply_features": reply_side,
        "real_features": real_side,
    }


def report(figures: dict[str, Any], replies: int) -> str:
    """The figures as markdown."""
    lines = [
        f"{replies} replies at the bot's defaults, names as the model wrote them, against the channel's held-out "
        "messages.",
        "",
        "| texts | mean chars | median | <= 20 chars | > 150 chars | name a member | name a member absent "
        "from the held-out period |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for side in ("written", "real"):
        f = figures[side]
        lines.append(
            f"| {'replies' if side == 'written' else 'held-out messages'} | {f['mean_chars']:.0f} | "
            f"{f['median_chars']:.0f} | {f['short_share']:.1%} | {f['long_share']:.1%} | "
            f"{f['names_member']:.1%} | {f['names_absent_member']:.1%} |"
        )
    auc, masked, readdressed = figures["auc"], figures["auc_names_masked"], figures["auc_readdressed"]
    lines += [
        "",
        "| detectability AUC | seeds | mean |",
        "| --- | --- | --- |",
        f"| as measured | {' / '.join(f'{a:.3f}' for a in auc)} | {np.mean(auc):.3f} |",
        f"| members' names masked on both sides | {' / '.join(f'{a:.3f}' for a in masked)} | "
        f"{np.mean(masked):.3f} |",
        "| replies naming absent members by the last speaker's name instead (real messages as they are) | "
        f"{' / '.join(f'{a:.3f}' for a in readdressed)} | {np.mean(readdressed):.3f} |",
        "",
        "Features that most say reply: " + ", ".join(figures["reply_features"]),
        "",
        "Features that most say real: " + ", ".join(figures["real_features"]),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from bench.reply_quality import (
        BASE_MODEL,
        channel_log,
        read_channel,
        split_newest,
        train_channel_model,
    )
    from bench.reply_writers import Decoding, bot_replies, conversations
    from bench.settings import RunSettings
    from bench.sources import find_sources
    from bot.core.services import BotConfig
    from textgen.copyguard import load_copy_guard

    parser = argparse.ArgumentParser(prog="python -m bench.reply_tells", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a channel model's bundle (default: fine-tune 60 s)")
    parser.add_argument("--replies", type=int, default=600)
    parser.add_argument("--seeds", type=int, default=3, help="classifier seeds for the AUC")
    args = parser.parse_args(argv)
    settings = RunSettings(quick=False, sources=find_sources())
    history_lines, held_lines = split_newest(read_channel(channel_log(settings)))
    history, held_out = [line.text for line in history_lines], [line.text for line in held_lines]
    members = {line.author.lower() for line in [*history_lines, *held_lines]}
    absent = members - {line.author.lower() for line in held_lines}
    with tempfile.TemporaryDirectory(prefix="chatsmith-tells-") as tmp:
        model = args.model or train_channel_model(history, held_out, Path(tmp) / "ft", settings, BASE_MODEL)
        guards = [g for g in (load_copy_guard(model), load_copy_guard(BASE_MODEL)) if g is not None]
        points = conversations(held_out, args.replies, seed=1, authors=[line.author for line in held_lines])
        # Names as the model wrote them; the bot's own step (`bot.core.names`) is applied below.
        as_written = Decoding("defaults", replace(BotConfig(), names_from_conversation=False))
        written = bot_replies(model, guards, as_written, points, seed=1).replies
    # Who was in each reply's conversation (the authors of the messages it has read), and who spoke last.
    readdressed = [
        readdress(text, members, {author.lower() for author in point.authors}, point.authors[-1])
        for text, point in zip(written, points, strict=True)
    ]
    rng = np.random.default_rng(0)
    real = [held_out[i] for i in rng.choice(len(held_out), min(args.replies, len(held_out)), replace=False)]
    print(report(tells(written, readdressed, real, members, absent, range(args.seeds)), len(written)))


if __name__ == "__main__":
    main()
