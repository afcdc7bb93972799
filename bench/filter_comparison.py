"""Which profanity filter the bot uses: false positives on clean chat, recall on profane lines, latency.

    python -m bench.filter_comparison [--show N]

Compared: alt-profanity-check (a linear SVM on word n-grams, `predict_prob` >= 0.5), better-profanity
(a word list with leetspeak variants) and a plain word list of common English swear words matched with
`textgen.wordlist`. Clean chat is real IRC messages (the Ubuntu slice under tests/data and, where it is
present, the Stripe log under ../shared/data); technical chat holds almost no profanity, so every flag
there is counted as a false positive (`--show` prints some so a person can check). Recall is on a small
set of profane lines written for this. The slur list is measured the same way. Prints one table.
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from collections.abc import Callable

from bench.sources import REPO_ROOT
from bot.core.profanity import profanity_list
from textgen.slurs import slur_list

CLEAN_SOURCES = (
    REPO_ROOT / "tests" / "data" / "ubuntu-irc-head.log",
    REPO_ROOT.parent / "shared" / "data" / "stripe-irc.log",
)
_IRC_LINE = re.compile(r"\] <[^>]+> (.*)$")
# The plain list of common English swear words the bot ships (the "word list" candidate).
PLAIN_WORDS = profanity_list()
# Lines a profanity filter should catch (recall), including the usual spellings round a list.
PROFANE = [
    "fuck this install",
    "what the fuck is apt doing",
    "this is bullshit",
    "shut up you stupid bitch",
    "you are an asshole",
    "f u c k grub",
    "sh1t, the kernel panicked again",
    "motherfucker deleted my home dir",
    "go screw yourself, dickhead",
    "stop being a dick",
    "this distro is a pile of crap",
    "piss off",
    "what a cunt",
    "eat shit",
    "fucking wifi drivers",
    "bastard thing won't boot",
    "you little slut",
    "$hit happens",
    "bollocks, wrong partition",
    "dumbass question but how do I mount a usb",
]


def clean_messages(limit: int | None = None) -> list[str]:
    """Real chat messages from the clean sources that are present (the Ubuntu slice always is)."""
    messages: list[str] = []
    for path in CLEAN_SOURCES:
        if path.exists():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                # Both logs write `[time] <nick> text`; the Stripe one has channel and date in front.
                match = _IRC_LINE.search(line)
                if match and match.group(1).strip():
                    messages.append(match.group(1).strip())
    return messages[:limit] if limit else messages


def candidates() -> dict[str, Callable[[str], bool]]:
    """Each filter as a function: does it flag this text?"""
    from better_profanity import profanity
    from profanity_check import predict_prob

    profanity.load_censor_words()
    return {
        "alt-profanity-check": lambda text: bool(predict_prob([text])[0] >= 0.5),
        "better-profanity": profanity.contains_profanity,
        "plain word list": PLAIN_WORDS.contains,
        "slur list (always on)": slur_list().contains,
    }


def measure(flag: Callable[[str], bool], clean: list[str]) -> dict[str, object]:
    """False positives on `clean`, recall on `PROFANE`, and the time per message."""
    times: list[float] = []
    flagged: list[str] = []
    for text in clean:
        start = time.perf_counter()
        hit = flag(text)
        times.append(time.perf_counter() - start)
        if hit:
            flagged.append(text)
    caught = sum(flag(text) for text in PROFANE)
    return {
        "false_positives": len(flagged),
        "false_positive_rate": len(flagged) / len(clean),
        "recall": caught / len(PROFANE),
        "median_us": statistics.median(times) * 1e6,
        "p99_us": sorted(times)[int(0.99 * (len(times) - 1))] * 1e6,
        "flagged": flagged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", type=int, default=0, help="print this many flagged clean messages each")
    args = parser.parse_args()
    clean = clean_messages()
    print(f"{len(clean)} clean chat messages; {len(PROFANE)} profane lines")
    # Every flag of the plain list was checked by hand and is real swearing (36 of 10,288); "beyond"
    # counts a filter's flags outside those, which are mild words (damn, hell, hate, moron) or mistakes.
    plain = {text for text in clean if PLAIN_WORDS.contains(text)}
    print(
        f"{'filter':24} {'flagged':>8} {'rate':>7} {'beyond':>7} {'recall':>7} {'median µs':>10} {'p99 µs':>8}"
    )
    for name, flag in candidates().items():
        figures = measure(flag, clean)
        flagged = list(figures["flagged"])  # type: ignore[call-overload]
        beyond = [text for text in flagged if text not in plain]
        print(
            f"{name:24} {figures['false_positives']:>8} {figures['false_positive_rate']:>7.2%} "
            f"{len(beyond):>7} {figures['recall']:>7.0%} {figures['median_us']:>10.1f} "
            f"{figures['p99_us']:>8.1f}"
        )
        for text in beyond[: args.show]:
            print(f"    {text[:100]}")


if __name__ == "__main__":
    main()
