"""Replies spell only words of the lexicon: no invented words, whatever the model would like to write."""

import re

import keras
import numpy as np
import pytest

from textgen.bundle import Bundle
from textgen.generator import Generator
from textgen.lexicon import Lexicon, load_lexicon
from textgen.model import build_model
from textgen.spec import ModelSpec, TrainConfig
from textgen.tokenizers import ByteTokenizer
from textgen.training import train_model

WORDS = re.compile(r"[a-z][a-z']+")
SPEC = ModelSpec(arch="gru", units=24, embedding=8, seq_len=12)


def letter_loving_model(seed: int = 0) -> keras.Model:
    """Random weights that favour lowercase letters and spaces: unconstrained, it writes gibberish words."""
    keras.utils.set_random_seed(seed)
    model = build_model(SPEC, ByteTokenizer().vocab_size)
    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    kernel, bias = model.get_layer("logits").get_weights()
    bias[:] = -5
    bias[[ord(c) + 4 for c in "abcdefghijklmnopqrstuvwxyz '"]] = 3
    model.get_layer("logits").set_weights([kernel, bias])
    return model


def generated_words(generator: Generator, prompt: str = "", n: int = 40) -> list[str]:
    texts = generator.generate(prompt, max_tokens=60, temperature=1.0, seed=11, n=n)
    return [word for text in texts for word in WORDS.findall(text[len(prompt) :].lower())]


def test_without_a_lexicon_the_model_invents_words_and_with_one_it_never_does():
    lexicon = Lexicon(["hello", "help", "world", "word", "it's", "apt", "install"])
    bundle = Bundle(path=None, spec=SPEC, tokenizer=ByteTokenizer(), model=letter_loving_model())
    free = generated_words(Generator(bundle))
    assert sum(word not in lexicon for word in free) > len(free) / 2  # the check can fail

    words = generated_words(Generator(bundle, lexicon))
    assert len(words) > 50
    assert all(word in lexicon for word in words), [w for w in words if w not in lexicon][:5]
    assert len(set(words)) >= 4  # still chooses among the words, not one of them


def test_a_prompt_ending_inside_a_word_is_finished_as_a_lexicon_word():
    lexicon = Lexicon(["install", "instance", "hello"])
    generator = Generator(Bundle(None, SPEC, ByteTokenizer(), letter_loving_model(1)), lexicon)
    for text in generator.generate("please inst", max_tokens=20, temperature=1.0, seed=2, n=20):
        assert WORDS.findall(text.lower())[1] in {"install", "instance"}


def test_a_prompt_ending_in_a_word_the_lexicon_lacks_still_gets_a_reply():
    generator = Generator(Bundle(None, SPEC, ByteTokenizer(), letter_loving_model(2)), Lexicon(["hello"]))
    texts = generator.generate("zzzq", max_tokens=15, temperature=1.0, seed=4, n=5)
    assert all(text.startswith("zzzq") and len(text) > 4 for text in texts)


def test_the_lexicon_holds_words_seen_twice_and_never_a_slur(tmp_path):
    messages = ["the apt cache", "apt cache again", "a typo: instalx", *["one more line"] * 2]
    lexicon = Lexicon.build(messages, exclude=lambda word: word == "cache")
    assert "apt" in lexicon and "more" in lexicon
    assert "instalx" not in lexicon  # seen once
    assert "cache" not in lexicon  # excluded
    assert load_lexicon(tmp_path) is None
    lexicon.save(tmp_path)
    assert load_lexicon(tmp_path).words == lexicon.words


@pytest.mark.parametrize("with_parent", [False, True])
def test_a_trained_bundle_carries_its_lexicon_and_a_fine_tune_keeps_its_parents(tmp_path, with_parent):
    parent_messages = ["kernel panic again"] * 10
    channel_messages = ["stripe webhook retries", "the webhook retries twice", "webhook fired"] * 10
    config = TrainConfig(batch_size=4, epochs=1, steps_per_epoch=2, val_fraction=0.2, test_fraction=0.0)
    base = None
    if with_parent:
        base = train_model(
            parent_messages, tmp_path / "parent", spec=SPEC, config=config, precision="float32"
        )
        base = tmp_path / "parent"
    train_model(
        channel_messages, tmp_path / "child", spec=SPEC, config=config, base=base, precision="float32"
    )
    lexicon = load_lexicon(tmp_path / "child")
    assert "webhook" in lexicon and "retries" in lexicon
    assert ("kernel" in lexicon) is with_parent
    # The bot's loader picks it up.
    assert Generator.from_bundle(tmp_path / "child").lexicon is not None


def test_next_letters_agree_with_the_words_for_short_and_long_runs():
    # "s" begins 21 words (a long run, read at once), "sa" three, "ta" one.
    words = [f"s{a}{b}" for a in "abcdefg" for b in "xyz"] + ["sa", "ta'b", "zz"]
    lexicon = Lexicon(words)
    for prefix in ["s", "sa", "sb", "sax", "saxe", "t", "ta", "ta'", "u", "z", "zz"]:
        kept = [word for word in lexicon.words if word.startswith(prefix)]
        following = sorted({word[len(prefix)] for word in kept if len(word) > len(prefix)})
        assert lexicon.next_letters(prefix) == (prefix in kept, "".join(following)), prefix
