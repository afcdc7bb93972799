"""Benchmark `replies`: how replies read on a channel the base model never saw, next to a Markov bot.

The channel is the Stripe developers' IRC log (`../shared/data/stripe-irc.log`; the slice under
tests/data without it). Its newest third (by timestamp) is held out; the rest is the channel's history.
Four writers learn that history, in this one script:

- markovify, state size 2 (the engine of the Markov bots: markov-discord, Parrot);
- the packaged base model, untouched;
- the base model fine-tuned on the history for 60 s (what a new channel gets);
- the default spec trained from scratch on the history for 60 s.

The models write as `/generate` posts (`bench.reply_writers`): a reply follows a point of the held-out
conversation, through the output filter with its resampling. The fine-tuned model writes under each
decoding measured: the bot's defaults, the temperature curve alone, and each change to decoding.
600 replies per writer, for each of 3 generation seeds. Measured on those replies:

- detectability: how well a classifier tells them from as many held-out messages (ROC AUC,
  `bench.detectability`; 0.5: it cannot), beside one half of the held-out messages against the other;
- known words: the share of generated words (`[a-z][a-z']+`, lowercased) found in a lexicon of the
  channel's history plus the IRC corpus, words seen at least twice;
- copies: replies repeating 8 or more consecutive words of one history message (goal: at most 1%);
- distinct word pairs: distinct adjacent word pairs over all pairs (diversity), mean words and
  characters per reply, and CPU per reply (decoding, filter and resampling);
- held-out nats/char of the channel's newest third (the models; a Markov chain gives unseen text zero
  probability, so it has none), and of each held-out message read after the messages before it, as a
  reply without a prompt reads them, against the message alone.

`--quick` fine-tunes 10 s and samples 100 replies, one seed; `--tiny` trains tiny models for a few steps.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.reply_rows import detectability_rows
from bench.reply_writers import Decoding, bot_replies, conversations, decodings
from bench.report import Outcome, Row
from bench.settings import RunSettings
from bench.sources import REPO_ROOT, SHARED_DATA
from bot.core.services import BotConfig

BASE_MODEL = REPO_ROOT / "chatsmith" / "data" / "base-model"
TEST_DATA = REPO_ROOT / "tests" / "data"
REPLIES = {"full": 600, "quick": 100, "tiny": 20}
SEEDS = {"full": 3, "quick": 1, "tiny": 1}
TRAIN_SECONDS = {"full": 60.0, "quick": 10.0, "tiny": 2.0}
COPY_WORDS = 8
_WORD = re.compile(r"[a-z][a-z']+")
_COPY_TOKEN = re.compile(r"\S+")


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ChannelLine:
    stamp: str
    author: str
    text: str


def read_channel(path: Path) -> list[ChannelLine]:
    """The messages of a dated IRC log (chatsmith's own reader), in the order of the file."""
    from textgen.formats.sources import ChatSource

    return [
        ChannelLine(record.time.isoformat() if record.time else "", record.author_id or "", record.text)
        for record in ChatSource(path, "irc").records()
    ]


def split_newest(
    lines: list[ChannelLine], fraction: float = 1 / 3
) -> tuple[list[ChannelLine], list[ChannelLine]]:
    """(history, newest `fraction` by timestamp); each part keeps the order of the file."""
    order = sorted(range(len(lines)), key=lambda index: lines[index].stamp)
    newest = set(order[len(lines) - int(len(lines) * fraction) :])
    history = [line for index, line in enumerate(lines) if index not in newest]
    held_out = [line for index, line in enumerate(lines) if index in newest]
    return history, held_out


def words_of(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def build_lexicon(corpora: Iterable[Iterable[str]], min_count: int = 2) -> set[str]:
    """Words seen at least `min_count` times across the corpora."""
    counts: Counter[str] = Counter()
    for corpus in corpora:
        for text in corpus:
            counts.update(words_of(text))
    return {word for word, count in counts.items() if count >= min_count}


def copy_index(messages: Iterable[str], n: int = COPY_WORDS) -> set[tuple[str, ...]]:
    """Every run of `n` consecutive words (whitespace-separated, lowercased) of each message."""
    runs: set[tuple[str, ...]] = set()
    for message in messages:
        tokens = _COPY_TOKEN.findall(message.lower())
        runs.update(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return runs


def copies(text: str, index: set[tuple[str, ...]], n: int = COPY_WORDS) -> bool:
    tokens = _COPY_TOKEN.findall(text.lower())
    return any(tuple(tokens[i : i + n]) in index for i in range(len(tokens) - n + 1))


def reply_figures(replies: list[str], lexicon: set[str], index: set[tuple[str, ...]]) -> dict[str, float]:
    """Known-word rate, copy rate, distinct word pairs and mean length of `replies`."""
    words = [words_of(reply) for reply in replies]
    flat = [word for reply in words for word in reply]
    pairs = [pair for reply in words for pair in zip(reply, reply[1:], strict=False)]
    return {
        "replies": len(replies),
        "known_words": sum(word in lexicon for word in flat) / max(1, len(flat)),
        "copy_rate": sum(copies(reply, index) for reply in replies) / max(1, len(replies)),
        "distinct_pairs": len(set(pairs)) / max(1, len(pairs)),
        "mean_words": len(flat) / max(1, len(replies)),
    }


def markov_replies(history: list[str], count: int, seed: int) -> list[str]:
    """`count` sentences from markovify (state size 2) as the Markov bots use it: `make_sentence()` with
    its defaults, skipping the attempts where it gives up."""
    import random

    import markovify

    random.seed(seed)
    model = markovify.NewlineText("\n".join(history), state_size=2, well_formed=False)
    replies: list[str] = []
    for _ in range(count * 50):
        sentence = model.make_sentence()
        if sentence:
            replies.append(sentence)
            if len(replies) == count:
                break
    return replies


def held_out_nats(bundle: Path, messages: list[str]) -> float:
    from textgen.bundle import load_bundle
    from textgen.evaluate import evaluate_messages

    return evaluate_messages(load_bundle(bundle), messages).nats_per_char


def context_figures(bundle: Path, held_out: list[str]) -> dict[str, float]:
    """Held-out nats/char of each message after the bot's context (the channel's last messages) and alone."""
    from bot.core.handlers.generate import CONTEXT_MESSAGES
    from textgen.bundle import load_serving_bundle
    from textgen.evaluate import evaluate_in_context

    with_context, alone = evaluate_in_context(load_serving_bundle(bundle), held_out, CONTEXT_MESSAGES)
    return {
        "context_messages": CONTEXT_MESSAGES,
        "in_context": with_context.nats_per_char,
        "alone": alone.nats_per_char,
    }


def channel_log(settings: RunSettings) -> Path:
    stripe = SHARED_DATA / "stripe-irc.log"
    return stripe if stripe.exists() and not settings.tiny else TEST_DATA / "stripe-irc-head.log"


def irc_lexicon_corpus(settings: RunSettings) -> list[str]:
    from bench.output_safety import irc_messages

    irc = settings.sources.irc
    return irc_messages(irc if irc is not None and not settings.tiny else TEST_DATA / "ubuntu-irc-head.log")


def train_channel_model(
    history: list[str],
    held_out: list[str],
    out: Path,
    settings: RunSettings,
    base: Path | None,
    as_a_job: bool = False,
) -> Path:
    """A model of the channel: `base` fine-tuned (or a model from scratch) for `TRAIN_SECONDS`, or, with
    `as_a_job`, as the trainer's job trains one (`TrainerConfig`: checks every 10 s and stops when they
    level off, the 900 s budget a ceiling; the quick and tiny runs keep their short budgets)."""
    from dataclasses import replace

    from textgen.spec import ModelSpec, TrainConfig
    from textgen.training import train_model
    from trainer.config import PLATEAU_STOP, TrainerConfig

    mode = "tiny" if settings.tiny else "quick" if settings.quick else "full"
    config = TrainConfig(time_budget=TRAIN_SECONDS[mode], epochs=1000, seed=1)
    spec = None
    if settings.tiny:
        config = TrainConfig(batch_size=8, epochs=1, steps_per_epoch=4, seed=1)
        spec = ModelSpec(arch="gru", layers=1, units=16, embedding=8, seq_len=16)
    if as_a_job:
        job = TrainerConfig().textgen_train_config()
        config = replace(job, seed=1) if mode == "full" else replace(config, **PLATEAU_STOP)
    train_model(
        history, out, spec=spec, config=config, base=base, test_messages=held_out, precision="float32"
    )
    return out


def run_reply_quality(settings: RunSettings) -> Outcome:
    """Benchmark `replies`: chatsmith's replies on a new channel against markovify's, same messages."""
    mode = "tiny" if settings.tiny else "quick" if settings.quick else "full"
    return measure_replies(settings, REPLIES[mode], SEEDS[mode])


def measure_replies(settings: RunSettings, count: int, seeds: int) -> Outcome:
    """The benchmark with `count` replies per writer and seed, over `seeds` generation seeds."""
    from bench.detectability import calibration_auc

    mode = "tiny" if settings.tiny else "quick" if settings.quick else "full"
    lines = read_channel(channel_log(settings))
    history_lines, held_out_lines = split_newest(lines)
    history = [line.text for line in history_lines]
    held_out = [line.text for line in held_out_lines]
    judge = Judge(
        build_lexicon([history, irc_lexicon_corpus(settings)]),
        copy_index(history),
        held_out,
        [line.author for line in held_out_lines],
        frozenset(line.author.lower() for line in lines),
    )
    figures: dict[str, Any] = {
        "channel_messages": len(history),
        "held_out_messages": len(held_out),
        "lexicon_words": len(judge.lexicon),
        "replies": count,
        "seeds": seeds,
        "calibration_auc": calibration_auc(held_out, limit=count),
    }
    writers: dict[str, dict[str, Any]] = {}
    _progress(f"replies: markovify on {len(history)} messages")
    writers["markovify, state 2"] = judge.over_seeds(
        seeds, lambda seed: (markov_replies(history, count, seed=seed), None)
    )
    with tempfile.TemporaryDirectory(prefix="chatsmith-bench-replies-") as tmp:
        base = BASE_MODEL
        if settings.tiny:
            base = train_channel_model(
                irc_lexicon_corpus(settings)[:2000], held_out, Path(tmp) / "tiny-base", settings, None
            )
        bundles = {"base model": base}
        _progress(f"replies: fine-tuning the base model for {TRAIN_SECONDS[mode]:.0f} s")
        bundles["fine-tuned"] = train_channel_model(
            history, held_out, Path(tmp) / "fine-tuned", settings, base
        )
        _progress("replies: fine-tuning the base model as the trainer's job does")
        bundles["fine-tuned as the trainer's job does"] = train_channel_model(
            history, held_out, Path(tmp) / "job", settings, base, as_a_job=True
        )
        _progress(f"replies: training from scratch for {TRAIN_SECONDS[mode]:.0f} s")
        bundles["from scratch"] = train_channel_model(
            history, held_out, Path(tmp) / "scratch", settings, None
        )
        defaults = Decoding("the bot's defaults", BotConfig())
        for name in ("base model", "from scratch", "fine-tuned as the trainer's job does"):
            writers[f"{name}, /generate at the bot's defaults"] = model_writer(
                judge, bundles[name], base, defaults, count, seeds
            )
            writers[f"{name}, /generate at the bot's defaults"]["nats_per_char"] = held_out_nats(
                bundles[name], held_out
            )
            figures[name] = writers[f"{name}, /generate at the bot's defaults"]
        for decoding in decodings(BotConfig()):
            _progress(f"replies: fine-tuned, {decoding.name}")
            writers[f"fine-tuned, {decoding.name}"] = model_writer(
                judge, bundles["fine-tuned"], base, decoding, count, seeds
            )
        figures["fine-tuned"] = writers[f"fine-tuned, {decodings(BotConfig())[0].name}"]
        figures["fine-tuned"]["nats_per_char"] = held_out_nats(bundles["fine-tuned"], held_out)
        figures["context"] = context_figures(bundles["fine-tuned"], held_out)
    figures["markovify"] = writers["markovify, state 2"]
    figures["writers"] = writers
    return Outcome(rows=_rows(figures) + detectability_rows(figures), figures=figures)


def model_writer(
    judge: Judge,
    bundle: Path,
    base: Path,
    decoding: Decoding,
    count: int,
    seeds: int,
    context_messages: int | None = None,
) -> dict[str, Any]:
    """A model's replies under `decoding`, judged over `seeds` seeds (its and the base's copy guards),
    after the last `context_messages` of the conversation (the bot's number when None)."""
    from textgen.copyguard import load_copy_guard

    guards = [g for g in (load_copy_guard(bundle), load_copy_guard(base)) if g is not None]

    def write(seed: int) -> tuple[list[str], float]:
        points = conversations(judge.held_out, count, seed, context_messages, judge.authors)
        written = bot_replies(bundle, guards, decoding, points, seed, judge.members)
        return written.replies, written.cpu_seconds_per_reply

    return judge.over_seeds(seeds, write)


@dataclass
class Judge:
    """What replies are judged against: the lexicon, the history's copy index, the held-out messages."""

    lexicon: set[str]
    index: set[tuple[str, ...]]
    held_out: list[str]
    # Who wrote each held-out message, and every author of the channel (lowercase), where known.
    authors: list[str] = field(default_factory=list)
    members: frozenset[str] = frozenset()

    def over_seeds(
        self, seeds: int, write: Callable[[int], tuple[list[str], float | None]]
    ) -> dict[str, Any]:
        """`write(seed)`'s replies judged for each seed: detectability AUC mean and spread (largest less
        smallest), the other figures' means, and the first seed's replies to read."""
        from bench.detectability import detectability_auc
        from bench.reply_reading import SAMPLES_SHOWN

        runs = []
        samples: list[str] = []
        for seed in range(1, seeds + 1):
            replies, cpu = write(seed)
            samples = samples or replies[:SAMPLES_SHOWN]
            run = reply_figures(replies, self.lexicon, self.index)
            run["auc"] = detectability_auc(replies, self.held_out, seed=seed, limit=len(replies))
            run["mean_chars"] = sum(map(len, replies)) / max(1, len(replies))
            if cpu is not None:
                run["cpu_ms_per_reply"] = 1000 * cpu
            runs.append(run)
        figures: dict[str, Any] = {key: sum(run[key] for run in runs) / len(runs) for key in runs[0]}
        figures["auc_spread"] = max(run["auc"] for run in runs) - min(run["auc"] for run in runs)
        figures["samples"] = samples
        return figures


def _rows(figures: dict[str, Any]) -> list[Row]:
    markov, tuned = figures["markovify"], figures["fine-tuned"]
    rows = [
        Row(
            name="replies: known words, fine-tuned vs markovify (state 2)",
            baseline="markovify",
            baseline_value=100 * markov["known_words"],
            project_value=100 * tuned["known_words"],
            unit="%",
            target="≥ markovify",
            met=tuned["known_words"] >= markov["known_words"],
        ),
        Row(
            name="replies: copying 8+ words of one message, fine-tuned",
            baseline="markovify",
            baseline_value=100 * markov["copy_rate"],
            project_value=100 * tuned["copy_rate"],
            unit="%",
            target="≤1%",
            met=tuned["copy_rate"] <= 0.01,
        ),
        Row(
            name="replies: distinct word pairs, fine-tuned",
            baseline="markovify",
            baseline_value=markov["distinct_pairs"],
            project_value=tuned["distinct_pairs"],
        ),
        Row(
            name="replies: mean words per reply, fine-tuned",
            baseline="markovify",
            baseline_value=markov["mean_words"],
            project_value=tuned["mean_words"],
        ),
    ]
    context = figures["context"]
    rows.append(
        Row(
            name=f"replies: next message after {context['context_messages']} messages of context vs alone",
            baseline="alone",
            baseline_value=context["alone"],
            project_value=context["in_context"],
            unit="nats/char",
            note="fine-tuned model, held-out messages",
        )
    )
    best_other = min(figures[name]["nats_per_char"] for name in ("base model", "from scratch"))
    rows.append(
        Row(
            name="replies: held-out nats/char, fine-tuned vs best of base and scratch",
            baseline="base / scratch 60 s",
            baseline_value=best_other,
            project_value=tuned["nats_per_char"],
            unit="nats/char",
            target="best",
            met=tuned["nats_per_char"] < best_other,
        )
    )
    for name in ("base model", "from scratch"):
        other = figures[name]
        rows.append(
            Row(
                name=f"replies: {name}: known words / copies / held-out nats/char",
                project_value=other["nats_per_char"],
                unit="nats/char",
                note=f"{100 * other['known_words']:.1f}% known, {100 * other['copy_rate']:.1f}% copies",
            )
        )
    return rows
