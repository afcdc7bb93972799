"""Replies spell only words of the lexicon: no invented words, whatever the model would like to write."""

import re

import keras
import numpy as np
import pytest

from textgen.bundle import Bundle
from textgen.generator import Generator
from textgen.lexicon import Lexicon, LexiconConstraint, load_lexicon
from textgen.model import build_model
from textgen.spec import ModelSpec, TrainConfig
from textgen.tokenizers import BpeTokenizer, ByteTokenizer, Tokenizer
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


def test_a_trained_bundle_carries_its_lexicon_and_a_fine_tune_keeps_its_parents(tmp_path):
    parent_messages = ["kernel panic again"] * 10
    channel_messages = ["stripe webhook retries", "the webhook retries twice", "webhook fired"] * 10
    config = TrainConfig(batch_size=4, epochs=1, steps_per_epoch=2, val_fraction=0.2, test_fraction=0.0)
    # From scratch: the words of its own messages only.
    train_model(parent_messages, tmp_path / "parent", spec=SPEC, config=config, precision="float32")
    lexicon = load_lexicon(tmp_path / "parent")
    assert "kernel" in lexicon and "panic" in lexicon and "webhook" not in lexicon
    # A fine-tune: its messages' words and its parent's.
    train_model(
        channel_messages,
        tmp_path / "child",
        spec=SPEC,
        config=config,
        base=tmp_path / "parent",
        precision="float32",
    )
    lexicon = load_lexicon(tmp_path / "child")
    assert "webhook" in lexicon and "retries" in lexicon and "kernel" in lexicon
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


CHAT = [
    "anyone else seeing the webhook retries pile up since this morning?",
    "yes, ours are stuck on 500s from the endpoint; it's a timeout on their side",
    "did you try bumping the timeout in the dashboard settings",
    "under developers then webhooks, click the endpoint and edit. Thanks!",
] * 30


def spelled_one_character_at_a_time(lexicon: Lexicon, tokenizer: Tokenizer, word: str) -> np.ndarray:
    """The tokens allowed after `word`, by the module's rules applied to each character of a token in
    turn: a letter starts a word or continues it towards some lexicon word (an apostrophe never starts
    one), and anything else ends the word, which must then be a lexicon word or a single letter."""
    allowed = np.zeros(tokenizer.vocab_size, dtype=bool)
    for token in range(tokenizer.vocab_size):
        text = tokenizer.decode([token]).lower() if token >= 4 else ""
        current, ok = word, True
        for char in text or " ":
            if char in "abcdefghijklmnopqrstuvwxyz'":
                if current:
                    ok = char in lexicon.next_letters(current)[1]
                    current += char
                else:
                    ok, current = char != "'", char
            else:
                ok, current = len(current) <= 1 or current in lexicon, ""
            if not ok:
                break
        allowed[token] = ok
    return allowed


@pytest.mark.parametrize("kind", ["byte", "bpe"])
def test_a_token_of_several_characters_is_allowed_exactly_when_each_of_its_characters_is(kind):
    tokenizer = ByteTokenizer() if kind == "byte" else BpeTokenizer.fit(CHAT, vocab_size=400)
    assert kind == "byte" or max(len(tokenizer.decode([t])) for t in range(4, 400)) > 4
    # Words the tokens were learned from but the lexicon lacks: tokens that spell them whole (" the ")
    # or in part (" endp") must be refused.
    lacking = {"the", "then", "timeout", "endpoint"}
    lexicon = Lexicon([word for word in Lexicon.build(CHAT).words if word not in lacking])
    constraint = LexiconConstraint(lexicon, tokenizer)
    words = ["", "w", "we", "webh", "webhook", "it", "it'", "it's", "th", "s", "dashboard"]
    for word in words:
        expected = spelled_one_character_at_a_time(lexicon, tokenizer, word)
        assert expected.any(), word
        assert np.array_equal(constraint.allowed(word), expected), word
    # The word spelled after a token: through its characters, to the letters after its last break.
    for token in range(4, tokenizer.vocab_size):
        text = tokenizer.decode([token]).lower()
        tail = re.split(r"[^a-z']", "webh" + text)[-1].lstrip("'")
        assert constraint.advance("webh", token) == tail, text


def test_a_bpe_model_with_a_lexicon_spells_only_its_words():
    tokenizer = BpeTokenizer.fit(CHAT, vocab_size=400)
    keras.utils.set_random_seed(3)
    model = build_model(SPEC, tokenizer.vocab_size)
    rng = np.random.default_rng(3)
    model.set_weights([w + rng.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])
    bundle = Bundle(path=None, spec=SPEC, tokenizer=tokenizer, model=model)
    lexicon = Lexicon(["the", "webhook", "retries", "timeout", "endpoint", "on", "it's", "yes"])
    free = generated_words(Generator(bundle))
    assert sum(word not in lexicon for word in free) > len(free) / 4  # the check can fail
    words = generated_words(Generator(bundle, lexicon))
    assert len(words) > 20
    assert all(word in lexicon for word in words), [w for w in words if w not in lexicon][:5]
