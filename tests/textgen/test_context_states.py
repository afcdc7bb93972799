"""A reply to a conversation the generator has read before starts from the state it had then."""

import numpy as np
import pytest

from textgen.bundle import Bundle
from textgen.context import prompt_with_context
from textgen.context_states import MIN_MESSAGE_TOKENS, MIN_REMEMBERED_TOKENS
from textgen.generator import Generator
from textgen.sampling import SamplingParams
from textgen.spec import ModelSpec
from textgen.tokenizers import ByteTokenizer

CONVERSATION = ("the webhook retries pile up since this morning", "ours are stuck on 500s too")
NEW_MESSAGE = "restarting the worker cleared the queue for us"


def make_generator() -> Generator:
    from tests.textgen.test_engine import random_model

    spec = ModelSpec(arch="gru", units=16, embedding=8, seq_len=8)
    return Generator(Bundle(None, spec, ByteTokenizer(), random_model(spec, seed=3)))


@pytest.fixture
def generator() -> Generator:
    return make_generator()


def count_reads(generator: Generator) -> list[int]:
    """Steps the generator's stepper reads from now on, and tokens read (one per batch row per step)."""
    counted = [0, 0]
    read = generator.stepper.read

    def counting(tokens: np.ndarray, state: object) -> object:
        counted[0] += 1
        counted[1] += len(tokens)
        return read(tokens, state)

    generator.stepper.read = counting  # type: ignore[method-assign]
    return counted


def reply(generator: Generator, seed: int) -> str:
    params = SamplingParams(max_tokens=30, temperature=1.0, top_p=0.95, seed=seed)
    return generator.generate_many([""], [params], [CONVERSATION])[0]


def framed(generator: Generator, message: str) -> int:
    """Tokens of `message` as a conversation frames it: BOS, its text, EOS."""
    return len(generator.tokenizer.encode(message)) + 2


def test_a_second_reply_to_the_same_conversation_does_not_read_it_again(generator):
    reads = count_reads(generator)
    reply(generator, seed=1)
    steps, tokens = reads
    prompt = prompt_with_context(generator.tokenizer, CONVERSATION, "")
    assert steps == len(prompt)  # BOS and the conversation; its last token is stepped for logits
    # Its last message is read a second time, from the zero state, as a second row of the same steps.
    assert tokens == len(prompt) + framed(generator, CONVERSATION[-1])
    reply(generator, seed=2)
    assert reads == [steps, tokens], "the conversation was read again"


def test_after_a_new_message_only_the_new_message_is_read(generator):
    reply(generator, seed=1)
    reads = count_reads(generator)
    sliding = (CONVERSATION[-1], NEW_MESSAGE)  # the bots read the last two messages
    params = SamplingParams(max_tokens=30, temperature=1.0, seed=4)
    [text] = generator.generate_many([""], [params], [sliding])
    assert reads[0] == framed(generator, NEW_MESSAGE)
    # The same reply as a generator that reads the whole conversation afresh, and to within float32
    # rounding the same log-probability (the message read as a batch's second row may differ in the
    # last bits).
    fresh = make_generator()
    assert text == fresh.generate_many([""], [params], [sliding])[0]
    prompt = prompt_with_context(generator.tokenizer, sliding, "")
    [warm] = generator.decode_best([prompt], [params])
    [cold] = make_generator().decode_best([prompt], [params])
    assert warm.ids == cold.ids and warm.mean_logprob == pytest.approx(cold.mean_logprob, abs=1e-5)


def test_a_conversation_that_grows_resumes_from_what_was_read(generator):
    reply(generator, seed=1)
    reads = count_reads(generator)
    reply_after = (*CONVERSATION, NEW_MESSAGE)
    generator.generate_many([""], [SamplingParams(max_tokens=5, seed=1)], [reply_after])
    assert reads[0] == framed(generator, NEW_MESSAGE)


def test_a_remembered_conversation_gives_the_same_reply_as_one_read_afresh(generator):
    warm = [reply(generator, seed) for seed in range(5)]  # the first reads, the others remember
    fresh = [reply(make_generator(), seed) for seed in range(5)]
    assert warm == fresh
    assert len(set(warm)) > 1
    [again] = generator.decode_best(
        [prompt_with_context(generator.tokenizer, CONVERSATION, "")],
        [SamplingParams(max_tokens=30, temperature=1.0, seed=3)],
    )
    [afresh] = make_generator().decode_best(
        [prompt_with_context(generator.tokenizer, CONVERSATION, "")],
        [SamplingParams(max_tokens=30, temperature=1.0, seed=3)],
    )
    assert again == afresh  # the same state, to the bit: the same log-probability too


def test_a_new_message_is_read_and_short_prompts_are_not_kept(generator):
    reads = count_reads(generator)
    reply(generator, seed=1)
    before = reads[0]
    params = SamplingParams(max_tokens=5, seed=1)
    generator.generate_many([""], [params], [("something else entirely, nothing read before",)])
    assert reads[0] > before
    kept = set(generator.contexts._states)
    short = "hi" * (MIN_REMEMBERED_TOKENS // 4)
    for _ in range(2):
        generator.generate_many([short], [params], [("ok",)])
    assert set(generator.contexts._states) == kept
    assert all(len(key) >= MIN_MESSAGE_TOKENS for key in kept)


def test_requests_in_one_batch_share_what_one_of_them_read_before(generator):
    reply(generator, seed=1)
    reads = count_reads(generator)
    params = [SamplingParams(max_tokens=10, seed=seed) for seed in range(3)]
    texts = generator.generate_many(["", "", "ok"], params, [CONVERSATION, CONVERSATION, ()])
    fresh = make_generator().generate_many(["", "", "ok"], params, [CONVERSATION, CONVERSATION, ()])
    assert texts == fresh
    # The first two start from the remembered state; the third goes through its short prompt with them
    # (stepped, since they need logits at once), so nothing is read.
    assert reads[0] == 0


def test_the_states_kept_are_bounded(generator):
    generator.contexts.limit = 3
    for number in range(6):
        generator.generate_many(
            [""], [SamplingParams(max_tokens=2, seed=1)], [(f"{CONVERSATION[0]} {number}",)]
        )
    assert len(generator.contexts._states) == 3
    assert generator.nbytes >= generator.contexts.nbytes > 0
