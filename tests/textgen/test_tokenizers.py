from pathlib import Path

import numpy as np
import pytest

from textgen.errors import TextgenError
from textgen.tokenizers import (
    BOS_ID,
    EOS_ID,
    NUM_SPECIAL,
    UNK_ID,
    BpeTokenizer,
    ByteTokenizer,
    CharTokenizer,
    WordTokenizer,
    build_tokenizer,
    tokenizer_from_json,
)

HARD_TEXT = [
    "plain ascii",
    "café naïve résumé Ærøskøbing",
    "emoji 🎉🔥👩‍👩‍👧 with zero\u200bwidth\u200djoiner",
    "right to left: שלום עולם مرحبا بالعالم \u202eevil\u202c",
    "中文 日本語 한국어",
    "",
]


@pytest.mark.parametrize("text", HARD_TEXT)
def test_byte_tokenizer_round_trips_any_text(text):
    tokenizer = ByteTokenizer()
    ids = tokenizer.encode(text)
    assert all(4 <= i < tokenizer.vocab_size for i in ids)
    assert tokenizer.decode(ids) == text


def test_byte_tokenizer_vocabulary_does_not_depend_on_corpus():
    assert ByteTokenizer().vocab_size == 260
    restored = tokenizer_from_json(ByteTokenizer().to_json())
    assert restored.encode("héllo 🎉") == ByteTokenizer().encode("héllo 🎉")


def test_messages_are_framed_with_begin_and_end_tokens():
    stream = ByteTokenizer().encode_messages(["hi", "yo"])
    assert stream.dtype == np.int32
    assert stream.tolist() == [
        BOS_ID,
        ord("h") + 4,
        ord("i") + 4,
        EOS_ID,
        BOS_ID,
        ord("y") + 4,
        ord("o") + 4,
        EOS_ID,
    ]


@pytest.mark.parametrize("messages", [[], [""], ["", "é🎉", "", "x y", "\u200f\n\t"]])
def test_byte_framing_of_any_messages_matches_message_by_message_encoding(messages):
    tokenizer = ByteTokenizer()
    expected = [token for message in messages for token in [BOS_ID, *tokenizer.encode(message), EOS_ID]]
    assert tokenizer.encode_messages(messages).tolist() == expected


def test_byte_decode_drops_special_tokens_and_survives_cut_characters():
    tokenizer = ByteTokenizer()
    ids = [BOS_ID, *tokenizer.encode("ok"), EOS_ID]
    assert tokenizer.decode(ids) == "ok"
    cut = tokenizer.encode("é")[:1]
    assert tokenizer.decode(cut) == "\ufffd"


def test_char_tokenizer_maps_unseen_characters_to_unknown_and_saves():
    tokenizer = CharTokenizer.fit(["abc", "cab 🎉"])
    assert tokenizer.decode(tokenizer.encode("cab 🎉")) == "cab 🎉"
    assert tokenizer.encode("z") == [UNK_ID]
    restored = tokenizer_from_json(tokenizer.to_json())
    assert restored.vocab_size == tokenizer.vocab_size
    assert restored.encode("ba🎉") == tokenizer.encode("ba🎉")


def test_word_tokenizer_follows_the_seed_scheme():
    tokenizer = WordTokenizer.fit(["The cat, the DOG!", "the cat sat."], num_words=2)
    # lowercased, punctuation filtered, only the 2 most frequent words kept
    assert tokenizer.words == ["the", "cat"]
    assert tokenizer.decode(tokenizer.encode("The CAT sat!")) == "the cat <unk>"
    restored = tokenizer_from_json(tokenizer.to_json())
    assert restored.encode("cat the dog") == tokenizer.encode("cat the dog")


def test_unknown_tokenizer_kind_is_a_clear_error():
    with pytest.raises(TextgenError, match="unknown tokenizer 'sentencepiece'"):
        build_tokenizer("sentencepiece", ["x"])


@pytest.fixture(scope="module")
def chat_bpe() -> BpeTokenizer:
    """Byte-level BPE fitted on the committed slice of a real chat log (text after the speaker)."""
    lines = (Path(__file__).parents[1] / "data" / "stripe-irc-head.log").read_text(encoding="utf-8")
    messages = [line.split("> ", 1)[1] for line in lines.splitlines() if "> " in line]
    return BpeTokenizer.fit(messages, vocab_size=512)


@pytest.mark.parametrize("text", [*HARD_TEXT, "  two leading spaces, tabs\tand\nnewlines  "])
def test_bpe_round_trips_any_text_even_what_it_never_saw(chat_bpe, text):
    ids = chat_bpe.encode(text)
    assert all(NUM_SPECIAL <= i < chat_bpe.vocab_size for i in ids)
    assert chat_bpe.decode(ids) == text


def test_bpe_merges_frequent_chat_into_fewer_tokens_than_bytes(chat_bpe):
    text = "you can set the payment method on the customer and then create the subscription"
    assert chat_bpe.vocab_size == 512
    assert len(chat_bpe.encode(text)) < 0.6 * len(ByteTokenizer().encode(text))


def test_text_that_spells_a_special_token_is_text(chat_bpe):
    # Users can write anything: "<eos>" in a message must not end it, nor a name the vocabulary reserves.
    for text in ("<bos> hi <eos> <pad> <unk>", *BpeTokenizer.RESERVED):
        ids = chat_bpe.encode(text)
        assert min(ids) >= NUM_SPECIAL and chat_bpe.decode(ids) == text
    framed = chat_bpe.encode_messages(["a <eos> b", "c"])
    assert framed.tolist().count(EOS_ID) == 2 and framed[0] == BOS_ID


def test_bpe_saves_and_loads_to_the_same_ids(chat_bpe):
    restored = tokenizer_from_json(chat_bpe.to_json())
    assert isinstance(restored, BpeTokenizer)
    for text in HARD_TEXT:
        assert restored.encode(text) == chat_bpe.encode(text)
    assert build_tokenizer("bpe", ["some text to learn from"]).vocab_size > NUM_SPECIAL + 256


def test_a_bpe_vocabulary_smaller_than_the_bytes_is_refused():
    with pytest.raises(TextgenError, match="at least 260 tokens"):
        BpeTokenizer.fit(["x"], vocab_size=100)
