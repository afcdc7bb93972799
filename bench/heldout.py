"""The parts of a corpus `chatsmith train` trains and scores on, reproduced for measurements beside it.

The Keras baseline must train on exactly the project's training text and be scored on exactly its test
text, and the recovery check must read the same test messages. Both read the corpus with the CLI's
reader (`load_corpus`) and cut it with the CLI's split (`split_holdout`, the two `split_validation`
cuts `train_model` makes), at the fractions the run was given. The test figure is computed on the first
`FINAL_EVALUATION_CHARS` characters of the test part (`head_of`), so that is the text scored here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CorpusParts:
    """One corpus cut as `chatsmith train` cuts it.

    Args:
        train: the messages the model trains on (one entry for a plain-text document).
        scored_test: the messages of the test part that `test_nats_per_char` is computed on.
    """

    train: list[str]
    scored_test: list[str]

    @property
    def scored_test_chars(self) -> int:
        """Characters of the scored test messages: the denominator of nats per character."""
        return sum(len(message) for message in self.scored_test)


def cli_default_fractions() -> tuple[float, float]:
    """`chatsmith train`'s default (validation, test) fractions, as its own parser gives them."""
    from chatsmith.cli import build_parser

    args = build_parser().parse_args(["train", "--corpus", "corpus.txt", "--out", "bundle"])
    return args.val_fraction, args.test_fraction


def corpus_parts(corpus: Path, fmt: str, val_fraction: float, test_fraction: float) -> CorpusParts:
    """The training messages and scored test messages of `chatsmith train --corpus corpus --format fmt
    --val-fraction val_fraction --test-fraction test_fraction`."""
    from textgen.corpus import load_corpus
    from textgen.holdout import head_of, split_holdout
    from textgen.training import FINAL_EVALUATION_CHARS

    messages = load_corpus(corpus, fmt).messages
    train, _, test = split_holdout(messages, val_fraction, test_fraction)
    return CorpusParts(train=train, scored_test=head_of(test, FINAL_EVALUATION_CHARS))
