import numpy as np
import pytest

from textgen.errors import TextgenError
from textgen.tokenizers import (
    BOS_ID,
    EOS_ID,
    UNK_ID,
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
    with pytest.raises(TextgenError, match="unknown tokenizer 'bpe'"):
        build_tokenizer("bpe", ["x"])
