"""Best-of-N decoding: N candidates in one batch, the most fluent kept; and the channel's length rule."""

import numpy as np
import pytest

from textgen.bundle import Bundle
from textgen.endings import MIN_LENGTH, MIN_RECENT_MESSAGES, length_from_channel
from textgen.generator import Decoded, Generator, best_candidate, candidate_params
from textgen.sampling import SamplingParams
from textgen.spec import ModelSpec
from textgen.tokenizers import ByteTokenizer


def test_the_candidate_with_the_best_mean_log_probability_per_token_wins():
    long_fluent = Decoded([1] * 40, False, -0.5)
    short_odd = Decoded([1] * 4, False, -2.0)
    empty = Decoded([], False, -0.1)
    assert best_candidate([short_odd, long_fluent]) is long_fluent
    assert best_candidate([empty, short_odd]) is short_odd  # an empty reply never wins over text
    assert best_candidate([empty]) is empty


def test_candidate_zero_is_the_request_itself_and_the_others_have_their_own_seeds():
    request = SamplingParams(seed=7, best_of=4, top_p=0.9)
    candidates = [candidate_params(request, number) for number in range(4)]
    assert candidates[0] == SamplingParams(seed=7, top_p=0.9)
    assert len({candidate.seed for candidate in candidates}) == 4
    assert all(candidate.best_of == 1 and candidate.top_p == 0.9 for candidate in candidates)
    assert candidate_params(request, 2) == candidates[2]  # the same seed every time


@pytest.fixture(scope="module")
def generator() -> Generator:
    from tests.textgen.test_engine import random_model

    spec = ModelSpec(arch="gru", units=16, embedding=8, seq_len=8)
    return Generator(Bundle(None, spec, ByteTokenizer(), random_model(spec, seed=3)))


def test_best_of_n_returns_the_most_fluent_of_the_candidates_decoded_alone(generator):
    request = SamplingParams(max_tokens=12, temperature=1.2, seed=11, best_of=4)
    prompt = generator.tokenizer.encode("hi")
    alone = [generator.decode_best([prompt], [candidate_params(request, n)])[0] for n in range(4)]
    [best] = generator.decode_best([prompt], [request])
    most_fluent = max(alone, key=lambda candidate: candidate.mean_logprob)
    assert best.ids == most_fluent.ids
    assert best.mean_logprob == pytest.approx(most_fluent.mean_logprob, abs=1e-5)
    assert len({tuple(candidate.ids) for candidate in alone}) > 1, "the candidates differ"
    # Other requests in the same batch are unaffected by a best-of request beside them.
    plain = SamplingParams(max_tokens=12, temperature=1.2, seed=5)
    both = generator.decode_best([prompt, prompt], [request, plain])
    assert [result.ids for result in both] == [best.ids, generator.decode_best([prompt], [plain])[0].ids]


def test_mean_log_probability_is_the_models_own(generator):
    [greedy] = generator.decode_best([[]], [SamplingParams(max_tokens=10, temperature=0.0, seed=1)])
    [wild] = generator.decode_best([[]], [SamplingParams(max_tokens=10, temperature=5.0, seed=1)])
    assert greedy.mean_logprob > wild.mean_logprob
    assert np.isfinite(greedy.mean_logprob) and greedy.mean_logprob < 0


def test_the_length_cap_is_the_length_of_one_of_the_channels_recent_messages():
    rng = np.random.default_rng(0)
    channel = ["ok"] * 20 + ["a" * 60] * 5

    def cap(recent, **kwargs):
        return length_from_channel(recent, default=160, ceiling=600, rng=rng, **kwargs)

    drawn = [cap(channel) for _ in range(300)]
    assert set(drawn) == {MIN_LENGTH, 60}  # "ok" is below the floor
    assert 0.1 < drawn.count(60) / len(drawn) < 0.3  # one message in five is 60 bytes
    assert cap(["x" * 900] * 20) == 600
    assert cap(["a" * 60] * (MIN_RECENT_MESSAGES - 1)) == 160  # too few to say anything: the default
    assert cap(["é" * 30] * 20) == 60  # bytes, not characters
