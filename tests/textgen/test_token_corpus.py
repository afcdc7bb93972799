"""A chat log read straight into one compact token array: the same tokens, parts and runs as its texts."""

import sys
import tracemalloc

import numpy as np
import pytest

from textgen import token_corpus
from textgen.corpus import load_corpus
from textgen.data import encode_compact
from textgen.holdout import split_holdout
from textgen.spec import ModelSpec, TrainConfig
from textgen.token_corpus import read_token_corpus
from textgen.tokenizers import ByteTokenizer
from textgen.training import train_model

# Bob addresses alice before she speaks: the address goes only once the whole log is known.
LOG = """[09:14] <bob> alice: are you there? 🎉
[09:15] <alice> yes, here
[09:15] * carol waves
[09:16] <carol> Note: the build is green, déjà vu
[09:17] <bob> carol, thanks
"""


def chat_log(tmp_path, lines: int, name: str = "chat.log"):
    path = tmp_path / name
    words = ["apt", "kernel", "boots", "fine", "grub", "again", "thanks", "anyone"]
    with path.open("w", encoding="utf-8") as out:
        for i in range(lines):
            text = " ".join(words[(i * k) % len(words)] for k in range(1, 2 + i % 6))
            # Every third message speaks to someone: the address is not trained on.
            address = f"user{(i + 1) % 7}: " if i % 3 == 0 else ""
            out.write(f"[10:{i % 60:02d}] <user{i % 7}> {address}{text} {i}\n")
    return path


def test_a_log_reads_into_the_compact_tokens_of_its_messages(tmp_path):
    path = tmp_path / "chat.log"
    path.write_text(LOG * 3, encoding="utf-8")
    messages = load_corpus(path, "irc", keep_records=False).messages
    corpus = read_token_corpus(path, "irc")
    assert corpus.tokens.dtype == np.uint16
    np.testing.assert_array_equal(corpus.tokens, encode_compact(ByteTokenizer(), messages))
    assert list(corpus.messages) == messages
    assert corpus.messages[0] == "are you there? 🎉" and corpus.messages[-1] == messages[-1]
    assert corpus.messages.chars == sum(len(message) for message in messages)


@pytest.mark.parametrize(("val", "test"), [(0.1, 0.05), (0.2, 0.0), (0.0, 0.1)])
def test_held_out_parts_are_those_of_the_texts(tmp_path, val, test):
    path = chat_log(tmp_path, 3000)
    messages = load_corpus(path, "irc", keep_records=False).messages
    expected = split_holdout(messages, val, test)
    rest, test_part = read_token_corpus(path, "irc").messages.split(test)
    train_part, val_part = rest.split(val / (1 - test))
    for part, texts in zip((train_part, val_part, test_part), expected, strict=True):
        assert list(part) == texts
        np.testing.assert_array_equal(part.tokens, encode_compact(ByteTokenizer(), texts))


def test_max_chars_keeps_the_newest_messages_that_fit(tmp_path):
    path = chat_log(tmp_path, 500)
    messages = load_corpus(path, "irc", keep_records=False).messages
    corpus = read_token_corpus(path, "irc", max_chars=2000)
    kept = list(corpus.messages)
    assert kept == messages[-len(kept) :]
    assert sum(map(len, kept)) <= 2000 < sum(map(len, messages[-len(kept) - 1 :]))
    assert corpus.older == len(messages) - len(kept)


def test_reading_holds_the_tokens_and_a_slice_of_messages_never_all_of_them(tmp_path, monkeypatch):
    # Slices of 1,000 messages over 40,000: the same proportion as 10,000 over 400,000, in a tenth of the time.
    monkeypatch.setattr(token_corpus, "SLICE_MESSAGES", 1_000)
    path = chat_log(tmp_path, 40_000)
    tracemalloc.start()
    try:
        corpus = read_token_corpus(path, "irc")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    arrays = corpus.tokens.nbytes + corpus.token_ends.nbytes + corpus.char_ends.nbytes
    as_strings = sum(sys.getsizeof(message) for message in corpus.messages)
    assert len(corpus.messages) == 40_000
    # Holding every message as a string, even for a moment, would add all of `as_strings`.
    assert peak - arrays < as_strings / 2


@pytest.mark.parametrize("tokenizer", ["byte", "bpe"])
def test_training_on_the_encoded_log_is_the_run_on_its_texts(tmp_path, monkeypatch, tokenizer):
    """A BPE run learns its merges from the byte tokens' texts (the newest of the training part only)
    and encodes them again: the same run."""
    from textgen import training
    from textgen.holdout import split_validation
    from textgen.tokenizers import BpeTokenizer, load_tokenizer

    monkeypatch.setattr(training, "BPE_FIT_CHARS", 20_000)
    path = chat_log(tmp_path, 4000)
    messages = load_corpus(path, "irc", keep_records=False).messages
    spec = ModelSpec(units=16, embedding=8, seq_len=16)
    config = TrainConfig(epochs=2, batch_size=8, steps_per_epoch=4, test_fraction=0.05, seed=3)
    runs = [
        train_model(
            corpus, tmp_path / name, spec=spec, config=config, tokenizer=tokenizer, precision="float32"
        ).metrics
        for name, corpus in (("texts", messages), ("encoded", read_token_corpus(path, "irc").messages))
    ]
    for key in ("train_tokens", "val_tokens", "val_loss", "val_nats_per_char", "test_nats_per_char"):
        assert runs[0][key] == runs[1][key], key
    for name in ("copyguard.npz", "tokenizer.json"):
        assert (tmp_path / "texts" / name).read_bytes() == (tmp_path / "encoded" / name).read_bytes()
    if tokenizer == "bpe":
        train, _, _ = split_holdout(messages, 0.1, 0.05)
        newest = split_validation(train, 20_000 / sum(map(len, train)))[1]
        assert 0 < sum(map(len, newest)) <= 20_000 + max(map(len, train))
        learned = load_tokenizer(tmp_path / "encoded" / "tokenizer.json").to_json()
        assert learned == BpeTokenizer.fit(newest).to_json() != BpeTokenizer.fit(train).to_json()


def test_bpe_encoding_of_the_log_holds_a_slice_of_messages_never_all_of_them(tmp_path, monkeypatch):
    from textgen.tokenizers import BpeTokenizer

    # Slices of 250 messages over 10,000: the proportion of 10,000 over 400,000.
    monkeypatch.setattr(token_corpus, "SLICE_MESSAGES", 250)
    corpus = read_token_corpus(chat_log(tmp_path, 10_000), "irc")
    tokenizer = BpeTokenizer.fit(corpus.messages[:2_000])
    tracemalloc.start()
    try:
        encoded = corpus.messages[100:].encoded_with(tokenizer)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    texts = list(corpus.messages)[100:]
    assert np.array_equal(encoded, encode_compact(tokenizer, texts))
    assert encoded.dtype == np.uint16
    # The array is allocated at the byte tokens' length; only the pages written count.
    assert peak - corpus.tokens.nbytes < sum(sys.getsizeof(message) for message in texts) / 2
