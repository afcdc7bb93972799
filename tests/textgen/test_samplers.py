"""Typical and min-p sampling: which tokens each keeps, and that they are found by their settings' names."""

import dataclasses

import numpy as np
import pytest

from textgen.errors import TextgenError
from textgen.sampling import TRUNCATIONS, SamplingParams, sample_tokens
from textgen.tokenizers import BOS_ID, EOS_ID, PAD_ID, UNK_ID

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


def _end_share(logits: np.ndarray, params: SamplingParams, draws: int = 4000) -> tuple[float, np.ndarray]:
    """The share of `draws` rows that end, and the tokens the others chose."""
    rows = np.repeat(logits[None, :], draws, axis=0)
    rngs = [np.random.default_rng(seed) for seed in range(draws)]
    tokens = sample_tokens(rows, [params] * draws, rngs)
    return float((tokens == EOS_ID).mean()), tokens[tokens != EOS_ID]


def test_ending_at_the_models_own_rate_keeps_the_end_probability_whatever_the_temperature():
    # The model ends here with probability 0.1; two words share the rest, 0.6 and 0.3.
    logits = logits_of([0.6, 0.3])
    logits[EOS_ID] = np.log(0.1)
    cold = SamplingParams(temperature=0.5, top_p=0.9)
    tempered_share, _ = _end_share(logits, cold)
    untempered_share, words = _end_share(logits, dataclasses.replace(cold, end_untempered=True))
    # Tempered and truncated, the end all but vanishes (0.1^2 against 0.6^2 + 0.3^2, then cut by top-p).
    assert tempered_share < 0.01
    assert abs(untempered_share - 0.1) < 0.02
    # The words still follow the temperature: at 0.5, 0.6 and 0.3 become 0.8 and 0.2 (0.8 is short of
    # top-p's 0.9, so both stay).
    first = float((words == FIRST).mean())
    assert abs(first - 0.8) < 0.03 and set(words.tolist()) == {FIRST, FIRST + 1}


def test_ending_at_the_models_own_rate_is_certain_where_only_the_end_is_allowed_and_never_where_it_is_not():
    logits = logits_of([0.6, 0.3])
    logits[EOS_ID] = np.log(0.1)
    params = SamplingParams(temperature=0.7, end_untempered=True)
    only_end = np.zeros((1, VOCAB), dtype=bool)
    only_end[0, EOS_ID] = True
    rngs = [np.random.default_rng(0)]
    assert sample_tokens(logits[None, :], [params], rngs, allowed=only_end).tolist() == [EOS_ID]
    no_end = np.ones((1, VOCAB), dtype=bool)
    no_end[0, EOS_ID] = False
    picks = [
        int(sample_tokens(logits[None, :], [params], [np.random.default_rng(seed)], allowed=no_end)[0])
        for seed in range(200)
    ]
    assert EOS_ID not in picks


def test_a_seed_gives_the_same_tokens_alone_or_in_a_batch_with_the_end_at_the_models_rate():
    logits = logits_of([0.5, 0.3, 0.1])
    logits[EOS_ID] = np.log(0.1)
    params = SamplingParams(temperature=0.8, min_p=0.05, end_untempered=True)
    other = SamplingParams(temperature=1.2)
    alone = [int(sample_tokens(logits[None, :], [params], [np.random.default_rng(s)])[0]) for s in range(50)]
    batched = [
        int(
            sample_tokens(
                np.stack([logits, logits]),
                [other, params],
                [np.random.default_rng(9), np.random.default_rng(s)],
            )[1]
        )
        for s in range(50)
    ]
    assert alone == batched and EOS_ID in alone


@pytest.mark.parametrize(
    "params",
    [
        SamplingParams(temperature=0.8, top_p=0.95, end_untempered=True),
        SamplingParams(temperature=1.1, top_p=0.95, min_p=0.05, end_untempered=True),
        SamplingParams(temperature=1.3, top_k=5, min_p=0.2),
        SamplingParams(temperature=0.7, min_p=0.1),
    ],
    ids=["bot defaults", "min-p and the end at the model's rate", "top-k and min-p", "min-p alone"],
)
def test_one_row_samples_what_it_would_in_a_batch_whatever_the_logits(params):
    # A request decoded alone is sampled by compiled code (`sample_one`), a batch by NumPy: the tokens agree.
    rng = np.random.default_rng(7)
    other = SamplingParams(temperature=1.0, repetition_penalty=1.2)
    alone, batched = [], []
    for seed in range(300):
        logits = rng.normal(0.0, 3.0, size=VOCAB)
        logits[EOS_ID] = logits.max() + rng.normal(-1.0, 2.0)  # from unlikely to all but certain
        alone.append(int(sample_tokens(logits[None, :], [params], [np.random.default_rng(seed)])[0]))
        pair = np.stack([logits, logits])
        rngs = [np.random.default_rng(1), np.random.default_rng(seed)]
        batched.append(int(sample_tokens(pair, [other, params], rngs)[1]))
    assert alone == batched
    assert len(set(alone)) > 5 and alone.count(EOS_ID) > 10


def test_the_compiled_sampler_frames_text_with_the_tokenizers_ids():
    from textgen import _sampler

    assert (_sampler.PAD_ID, _sampler.BOS_ID, _sampler.EOS_ID, _sampler.UNK_ID) == (
        PAD_ID,
        BOS_ID,
        EOS_ID,
        UNK_ID,
    )


def test_the_compiled_sampler_refuses_rows_it_cannot_read_in_one_line():
    from textgen._sampler import sample_row

    logits, allowed = np.zeros(VOCAB, dtype=np.float32), np.ones(VOCAB, dtype=bool)
    with pytest.raises(ValueError, match="float32 or float64"):
        sample_row(logits.astype(np.float16), allowed, True, False, 1.0, VOCAB, 1.0, 0.0, 0.0, 0.5)
    with pytest.raises(ValueError, match="one boolean per logit"):
        sample_row(logits, allowed[:-1], True, False, 1.0, VOCAB, 1.0, 0.0, 0.0, 0.5)
    token, logprob = sample_row(logits, allowed, True, False, 1.0, VOCAB, 1.0, 0.0, 0.0, 0.5)
    assert token not in (PAD_ID, BOS_ID, UNK_ID) and logprob == pytest.approx(-np.log(VOCAB))
