"""Typical and min-p sampling: which tokens each keeps, and that they are found by their settings' names."""

import dataclasses

import numpy as np
import pytest

from textgen.errors import TextgenError
from textgen.sampling import TRUNCATIONS, SamplingParams, sample_tokens

VOCAB = 100
FIRST = 10  # clear of the framing tokens, which are never sampled


def logits_of(probabilities: list[float]) -> np.ndarray:
    logits = np.full(VOCAB, -np.inf)
    logits[FIRST : FIRST + len(probabilities)] = np.log(probabilities)
    return logits


def sampled(logits: np.ndarray, params: SamplingParams, draws: int = 400) -> set[int]:
    rows = np.repeat(logits[None, :], draws, axis=0)
    rngs = [np.random.default_rng(seed) for seed in range(draws)]
    return {int(token) - FIRST for token in sample_tokens(rows, [params] * draws, rngs)}


def test_min_p_keeps_the_tokens_at_least_that_share_as_likely_as_the_best():
    logits = logits_of([0.5, 0.3, 0.15, 0.05])
    assert sampled(logits, SamplingParams(temperature=1.0, min_p=0.4)) == {0, 1}
    assert sampled(logits, SamplingParams(temperature=1.0)) == {0, 1, 2, 3}


def test_typical_sampling_drops_a_likely_token_far_less_surprising_than_the_rest():
    # One token at 0.3 and seventy at 0.01: the entropy is about 3.6 nats, the likely token's surprise
    # 1.2 and each rare one's 4.6, so the rare ones are the typical ones.
    logits = logits_of([0.3] + [0.01] * 70)
    typical = sampled(logits, SamplingParams(temperature=1.0, typical_p=0.5))
    assert 0 not in typical and len(typical) > 20
    assert 0 in sampled(logits, SamplingParams(temperature=1.0, top_p=0.5))


def test_typical_sampling_keeps_the_most_typical_token_even_at_a_tiny_share():
    logits = logits_of([0.5, 0.3, 0.2])
    assert len(sampled(logits, SamplingParams(temperature=1.0, typical_p=1e-6))) == 1


def test_each_truncation_is_named_after_its_setting():
    fields = {field.name for field in dataclasses.fields(SamplingParams)}
    assert set(TRUNCATIONS) <= fields


@pytest.mark.parametrize("kwargs", [{"typical_p": 0.0}, {"typical_p": 1.5}, {"min_p": 1.0}, {"best_of": 0}])
def test_nonsensical_truncation_settings_are_refused(kwargs):
    with pytest.raises(TextgenError):
        SamplingParams(**kwargs)
