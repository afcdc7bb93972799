"""How `chatsmith train` and `chatsmith eval` read their corpus files, and what they say about them."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from chatsmith.wording import plural
from textgen.errors import TextgenError

# `chatsmith train --max-corpus-chars`'s default: the trainer's cap on a job's corpus (`TrainerConfig`).
MAX_CORPUS_CHARS = 200_000_000


def load_messages(path: Path, fmt: str) -> list[str]:
    """The messages of a corpus file, each a string (what evaluation and small parts read)."""
    from textgen.corpus import load_corpus

    corpus = load_corpus(path, fmt, keep_records=False)
    if corpus.guessed:
        _say_guessed(path, corpus.format, len(corpus.messages), corpus.chars)
    _say_left_out(path, corpus.notes, corpus.broken)
    return corpus.messages


def drop_slurs(messages: list[str], path: Path) -> list[str]:
    """The messages without those that hold a slur; says how many went (never which words)."""
    from textgen.slurs import without_slurs

    kept, dropped = without_slurs(messages)
    _say_slurs(path, dropped, len(messages))
    if not kept:
        raise TextgenError(f"corpus {path}: every message holds a slur; nothing is left to train on")
    return kept


# Tokenizers whose training corpus is read as byte tokens, never as a list of messages.
STREAMED_TOKENIZERS = ("byte", "bpe")


def load_training_corpus(
    path: Path, fmt: str, *, tokenizer: str, max_chars: int | None, slurs: bool
) -> Sequence[str]:
    """The training corpus of `chatsmith train`: the newest messages that fit in `max_chars` (None: all).

    With the byte and BPE tokenizers the file is read straight into one compact array of byte tokens
    (`textgen.token_corpus`), so memory grows with its tokens and not with its messages as strings (a
    BPE run learns its merges from that array and encodes it again, a slice at a time); character and
    word vocabularies are built from the messages, so those read them.
    """
    if tokenizer not in STREAMED_TOKENIZERS:
        messages = load_messages(path, fmt)
        if max_chars is not None:
            messages = _newest(messages, max_chars, path)
        return drop_slurs(messages, path) if slurs else messages
    from textgen.token_corpus import read_token_corpus

    corpus = read_token_corpus(path, fmt, max_chars=max_chars, drop_slurs=slurs)
    encoded = corpus.messages
    if corpus.guessed:
        _say_guessed(path, corpus.format, len(encoded) + corpus.dropped + corpus.older, None)
    _say_left_out(path, corpus.notes, corpus.broken)
    if corpus.older:
        _say_older(path, corpus.older, max_chars)
    if slurs:
        _say_slurs(path, corpus.dropped, len(encoded) + corpus.dropped)
        if not encoded and corpus.dropped:
            raise TextgenError(f"corpus {path}: every message holds a slur; nothing is left to train on")
    if not encoded:
        raise _cap_too_short(path, max_chars)
    return encoded


def _newest(messages: list[str], max_chars: int, path: Path) -> list[str]:
    kept, chars = len(messages), 0
    while kept > 0 and chars + len(messages[kept - 1]) <= max_chars:
        kept -= 1
        chars += len(messages[kept])
    if kept == len(messages):
        raise _cap_too_short(path, max_chars)
    if kept:
        _say_older(path, kept, max_chars)
    return messages[kept:]


def _cap_too_short(path: Path, max_chars: int | None) -> TextgenError:
    return TextgenError(
        f"corpus {path}: its newest message is longer than --max-corpus-chars {max_chars}; raise it"
    )


def _say_guessed(path: Path, fmt: str, messages: int, chars: int | None) -> None:
    size = f", {chars} characters" if chars is not None else ""
    print(
        f"corpus {path}: guessed format {fmt!r} ({plural(messages, 'message')}{size}); "
        f"pass --format to override",
        file=sys.stderr,
    )


def _say_left_out(path: Path, notes: list[str], broken: list[str]) -> None:
    for note in notes:
        # The export's notes speak of `chatsmith import`'s options; train and eval have no --channel.
        note = note.replace("with --channel", "with `chatsmith import --channel`")
        print(f"note: {path.name}: {note}", file=sys.stderr)
    for part in broken:
        print(f"warning: {path.name}: could not read {part}; trained on the rest", file=sys.stderr)


def _say_older(path: Path, older: int, max_chars: int | None) -> None:
    print(
        f"corpus {path}: left out the oldest {plural(older, 'message')}: the newest fill "
        f"--max-corpus-chars {max_chars}",
        file=sys.stderr,
    )


def _say_slurs(path: Path, dropped: int, total: int) -> None:
    print(
        f"corpus {path}: left out {dropped} of {plural(total, 'message')} that hold a slur", file=sys.stderr
    )
