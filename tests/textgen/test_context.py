"""Replies that follow the conversation: the messages before a reply are read first, framed as in training."""

from textgen.bundle import load_serving_bundle
from textgen.context import prompt_with_context
from textgen.evaluate import evaluate_in_context
from textgen.generator import Generator
from textgen.tokenizers import BOS_ID, EOS_ID, ByteTokenizer


def test_the_newest_whole_messages_that_fit_are_kept_framed_like_training():
    tokenizer = ByteTokenizer()
    ids = prompt_with_context(tokenizer, ["old message", "hi", "yo"], "so", max_context_tokens=9)
    # "hi" + EOS + BOS is 4 tokens and "yo" 4 more; "old message" (13) does not fit after them.
    assert ids == [
        *tokenizer.encode("hi"),
        EOS_ID,
        BOS_ID,
        *tokenizer.encode("yo"),
        EOS_ID,
        BOS_ID,
        *tokenizer.encode("so"),
    ]
    assert prompt_with_context(tokenizer, [], "so") == tokenizer.encode("so")


def test_a_reply_after_a_call_is_its_response(call_and_response):
    generator = Generator.from_bundle(call_and_response.bundle)
    for call, response in call_and_response.pairs:
        replies = generator.generate_many([""] * 10, [_params(seed) for seed in range(10)], [[call]] * 10)
        assert sum(reply == response for reply in replies) >= 8, (call, replies)


def test_context_lowers_the_held_out_loss_of_the_next_message(call_and_response):
    in_context, alone = evaluate_in_context(
        load_serving_bundle(call_and_response.bundle), call_and_response.held_out, context_messages=2
    )
    assert in_context.chars == alone.chars > 0
    # Alone, a response is one of three and a call one of three too; after its call a response is certain.
    assert in_context.nats_per_char < alone.nats_per_char - 0.1


def _params(seed: int):
    from textgen.sampling import SamplingParams

    return SamplingParams(max_tokens=10, temperature=0.5, seed=seed)
