"""The detectability measure tells clearly different texts apart and cannot tell one source from itself."""

import random
from importlib.util import find_spec

import pytest

from bench.detectability import calibration_auc, detectability_auc

# Looked up, not imported: importing scikit-learn at collection would cost every test worker a second.
pytestmark = pytest.mark.skipif(find_spec("sklearn") is None, reason="scikit-learn is a bench extra")

WORDS = [
    "the",
    "payment",
    "intent",
    "webhook",
    "key",
    "test",
    "server",
    "customer",
    "charge",
    "refund",
    "card",
    "api",
    "event",
]


def chat(count: int, seed: int, words: list[str] = WORDS) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(count)]


def test_clearly_different_texts_are_told_apart():
    salad = [" ".join(random.Random(i).choices("qzxjvkw", k=20)) for i in range(200)]
    assert detectability_auc(salad, chat(200, seed=1)) > 0.95


def test_texts_of_one_source_are_not_told_apart():
    assert 0.35 < detectability_auc(chat(200, seed=1), chat(200, seed=2)) < 0.65
    assert 0.35 < calibration_auc(chat(400, seed=3)) < 0.65


def test_a_writer_with_a_habit_in_half_its_replies_is_caught_only_partly():
    # Half the replies shout: the characters keep their case, so the measure sees it, in half the replies.
    shouting = [text.upper() if i % 2 else text for i, text in enumerate(chat(200, seed=4))]
    assert 0.65 < detectability_auc(shouting, chat(200, seed=5), seed=1) < 0.9


def test_too_few_texts_are_refused():
    with pytest.raises(ValueError, match="at least"):
        detectability_auc(["a", "b"], chat(10, seed=1))
