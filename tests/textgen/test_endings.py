"""Replies that reach their length end at a sentence or a word, not in the middle of one."""

import pytest

from textgen.endings import end_at_boundary
from textgen.generator import Generator
from textgen.sampling import SamplingParams
from textgen.tokenizers import EOS_ID


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Try the test key first, it costs nothing. Then check the log for the retr",
            "Try the test key first, it costs nothing.",
        ),
        ("Did the payment go through?! Then check the log", "Did the payment go through?!"),
        ('He said "use the test key." and then the webh', 'He said "use the test key."'),
        # A sentence end too near the start would lose most of the reply: cut at the last word instead.
        (
            "Ok. then you need to create the payment intent on the serv",
            "Ok. then you need to create the payment intent on the",
        ),
        ("you need to create the payment, intent", "you need to create the payment"),
        ("unbroken", "unbroken"),
    ],
)
def test_a_cut_reply_ends_at_its_last_sentence_else_its_last_word(text, expected):
    assert end_at_boundary(text) == expected


def test_a_reply_that_ends_itself_is_kept_whole_and_a_cut_one_is_trimmed():
    from tests.textgen.test_engine import byte_heavy_model
    from textgen.bundle import Bundle
    from textgen.spec import ModelSpec
    from textgen.tokenizers import ByteTokenizer

    spec = ModelSpec(arch="gru", units=8, embedding=4, seq_len=8)
    # Writes "a. b" forever: never ends by itself.
    never_ends = Generator(
        Bundle(None, spec, ByteTokenizer(), byte_heavy_model(spec, [ord(c) + 4 for c in "a. b"]))
    )
    [cut] = never_ends.generate_many(
        [""], [SamplingParams(max_tokens=20, temperature=1.0, seed=1, overrun=0.5)]
    )
    assert cut.endswith(".") and len(cut.encode()) <= 30
    [hard] = never_ends.generate_many([""], [SamplingParams(max_tokens=20, temperature=1.0, seed=1)])
    assert len(hard.encode()) == 20  # without overrun: cut at the length, as before

    ends_soon = Generator(Bundle(None, spec, ByteTokenizer(), byte_heavy_model(spec, [ord("x") + 4, EOS_ID])))
    texts = ends_soon.generate_many(
        [""] * 20, [SamplingParams(max_tokens=50, seed=s, overrun=0.5) for s in range(20)]
    )
    assert all(set(text) <= {"x"} for text in texts)  # ended by the model: nothing trimmed
