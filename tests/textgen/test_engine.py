"""The decoding engine against the Keras forward pass for every registered architecture, and sampling
behaviour."""

from dataclasses import replace

import keras
import numpy as np
import pytest

from textgen.architectures import ARCHITECTURES, Stepper
from textgen.bundle import Bundle
from textgen.engine import make_stepper
from textgen.generator import Generator
from textgen.model import build_model
from textgen.sampling import SamplingParams, sample_tokens
from textgen.spec import ModelSpec
from textgen.tokenizers import BOS_ID, EOS_ID, PAD_ID, UNK_ID, ByteTokenizer
from textgen.weights import expected_shapes

VOCAB = ByteTokenizer().vocab_size


def sample_token(
    logits: np.ndarray, params: SamplingParams, rng: np.random.Generator, seen: np.ndarray | None = None
) -> int:
    """One token from `logits` (vocab,): a batch of one through `sample_tokens`, as the generator calls it."""
    seen_rows = None if seen is None else seen[None, :]
    return int(sample_tokens(logits[None, :], [params], [rng], seen_rows)[0])


def random_model(spec: ModelSpec, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = build_model(spec, VOCAB)
    # Larger-than-initial weights so every gate matters and mistakes show.
    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


# Every registered architecture, one layer and stacked: a new family is checked against Keras unasked.
PARITY_SPECS = [
    ModelSpec(arch=arch, layers=layers, units=16, embedding=8, seq_len=6)
    for arch in ARCHITECTURES
    for layers in (1, 2)
]


def keras_logits_after(model: keras.Model, spec: ModelSpec, stepper: Stepper, seen: np.ndarray) -> np.ndarray:
    """What Keras predicts after the tokens `seen` `(batch, time)`: the whole stream for a stepper that
    carries state, else the window the stepper keeps (left-padded, as the stepper pads it)."""
    if stepper.context_window is not None:
        window = np.full((seen.shape[0], stepper.context_window), PAD_ID, dtype=np.int32)
        kept = seen[:, -stepper.context_window :]
        window[:, window.shape[1] - kept.shape[1] :] = kept
        seen = window
    logits = model(seen).numpy()
    return logits[:, -1] if spec.causal else logits


@pytest.mark.parametrize("spec", PARITY_SPECS, ids=lambda spec: f"{spec.arch}x{spec.layers}")
def test_engine_logits_match_keras_after_every_token(spec):
    model = random_model(spec)
    stepper = make_stepper(model, spec)
    tokens = np.random.default_rng(1).integers(4, VOCAB, size=(3, 10)).astype(np.int32)
    state = stepper.initial_state(3)
    for position in range(tokens.shape[1]):
        logits, state = stepper.step(tokens[:, position], state)
        expected = keras_logits_after(model, spec, stepper, tokens[:, : position + 1])
        np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    # Scoring whole windows (evaluation) gives what stepping through them gives.
    window = tokens[:, -spec.seq_len :]
    np.testing.assert_allclose(
        stepper.window_logits(window), keras_logits_after(model, spec, stepper, window), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_reading_a_token_leaves_the_state_stepping_it_leaves(arch):
    spec = ModelSpec(arch=arch, layers=2, units=8, embedding=4, seq_len=4)
    stepper = make_stepper(random_model(spec), spec)
    stepped = read = stepper.initial_state(2)
    for token in (5, 9, 70, 6, 11):
        tokens = np.array([token, token + 1])
        _, stepped = stepper.step(tokens, stepped)
        read = stepper.read(tokens, read)
    rows = np.array([1])
    # The states are opaque: compare what they make the stepper predict next, exactly.
    after_step, _ = stepper.step(np.array([7]), stepper.select(stepped, rows))
    after_read, _ = stepper.step(np.array([7]), stepper.select(read, rows))
    np.testing.assert_array_equal(after_step, after_read)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_each_family_lays_out_the_weights_keras_holds(arch):
    spec = ModelSpec(arch=arch, layers=2, units=8, embedding=4, seq_len=4)
    model = build_model(spec, VOCAB)
    assert list(expected_shapes(spec, VOCAB).values()) == [tuple(w.shape) for w in model.get_weights()]
    # `carried_state_model` answers only for families that carry state, with one input per state tensor.
    if spec.family.carries_state:
        carried = spec.family.carried_state_model(model, spec)
        assert len(carried.inputs) == 1 + len(spec.family.state_sizes(spec))
    else:
        assert spec.family.state_sizes(spec) == []


@pytest.fixture(scope="module")
def generator() -> Generator:
    spec = ModelSpec(arch="gru", units=32, embedding=8, seq_len=16)
    return Generator(
        Bundle(path=None, spec=spec, tokenizer=ByteTokenizer(), model=random_model(spec, seed=5))
    )


def test_a_seed_gives_the_same_text_every_time(generator):
    first = generator.generate("hello", max_tokens=40, temperature=1.0, seed=42, n=3)
    again = generator.generate("hello", max_tokens=40, temperature=1.0, seed=42, n=3)
    assert first == again
    assert len(set(first)) > 1, "samples of one call use different seeds"
    assert all(sample.startswith("hello") for sample in first)


def test_batched_requests_equal_the_same_requests_run_alone(generator):
    prompts = ["a", "longer prompt here", "", "zz"]
    params = [
        SamplingParams(max_tokens=length, temperature=t, top_k=k, seed=s)
        for length, t, k, s in [(5, 1.0, None, 1), (30, 0.5, 20, 2), (1, 0.0, None, 3), (17, 1.3, 5, 4)]
    ]
    batched = generator.generate_many(prompts, params)
    alone = [generator.generate_many([p], [q])[0] for p, q in zip(prompts, params, strict=True)]
    assert batched == alone
    tokens = generator.generate_tokens([generator.tokenizer.encode(p) for p in prompts], params)
    # A byte model may add up to 3 bytes past the limit to finish a character.
    assert all(1 <= len(ids) <= q.max_tokens + 3 for ids, q in zip(tokens, params, strict=True))
    assert 1 <= len(tokens[2]) <= 4


def test_requests_at_the_bots_settings_decode_the_same_alone_and_batched(generator):
    # One request samples by the compiled one-row path (`textgen.row_sampling`), a batch by NumPy arrays.
    bot = SamplingParams(max_tokens=40, temperature=1.0, top_p=0.95, end_untempered=True)
    params = [replace(bot, seed=seed, min_p=0.05 if seed % 2 else None) for seed in range(8)]
    prompts = ["", "the", "hello the", "", "a", "zz", "longer prompt here", "x"]
    assert generator.generate_many(prompts, params) == [
        generator.generate_many([prompt], [request])[0]
        for prompt, request in zip(prompts, params, strict=True)
    ]


def test_generation_stops_at_end_of_message():
    spec = ModelSpec(arch="gru", units=8, embedding=4, seq_len=8)
    model = random_model(spec)
    # Make end-of-message overwhelmingly likely: the logits bias decides.
    kernel, bias = model.get_layer("logits").get_weights()
    bias[:] = -10
    bias[EOS_ID] = 50
    model.get_layer("logits").set_weights([kernel * 0, bias])
    generator = Generator(Bundle(None, spec, ByteTokenizer(), model))
    # A reply is never empty: the end comes after the first token at the earliest (`min_tokens`).
    [reply] = generator.generate("hi", max_tokens=50, temperature=1.0, seed=0)
    assert reply.startswith("hi") and len(reply) == 3
    [tokens] = generator.generate_tokens([[70]], [SamplingParams(max_tokens=50, min_tokens=0, seed=0)])
    assert tokens == []
    [tokens] = generator.generate_tokens([[70]], [SamplingParams(max_tokens=50, min_tokens=4, seed=0)])
    assert len(tokens) == 4 and EOS_ID not in tokens
    [tokens] = generator.generate_tokens(
        [[70]], [SamplingParams(max_tokens=50, end_untempered=True, min_p=0.05, seed=0)]
    )
    assert len(tokens) == 1 and EOS_ID not in tokens
    [tokens] = generator.generate_tokens([[70]], [SamplingParams(max_tokens=10, stop_at_end=False, seed=0)])
    assert 10 <= len(tokens) <= 13 and EOS_ID not in tokens


def logits_for(probabilities):
    return np.log(np.asarray(probabilities, dtype=np.float64))


def test_temperature_zero_is_greedy():
    logits = np.full(10, -5.0)
    logits[7] = 3.0
    logits[BOS_ID] = 100.0  # never sampled, however likely
    assert all(
        sample_token(logits, SamplingParams(temperature=0), np.random.default_rng(s)) == 7 for s in range(5)
    )


def test_top_k_larger_than_the_vocabulary_keeps_everything():
    logits = np.zeros(8)
    rng = np.random.default_rng(0)
    drawn = {sample_token(logits, SamplingParams(temperature=1.0, top_k=1000), rng) for _ in range(400)}
    assert drawn == set(range(8)) - {PAD_ID, BOS_ID, UNK_ID}


def test_top_k_one_is_greedy_and_top_k_two_keeps_two():
    logits = np.array([0, 0, 0, 0, 1.0, 2.0, 3.0, 0.5])
    rng = np.random.default_rng(0)
    assert {sample_token(logits, SamplingParams(temperature=5.0, top_k=1), rng) for _ in range(50)} == {6}
    assert {sample_token(logits, SamplingParams(temperature=5.0, top_k=2), rng) for _ in range(200)} == {5, 6}


def test_top_p_one_keeps_everything_and_small_p_keeps_the_head():
    probabilities = np.array([1e-9, 1e-9, 0.05, 1e-9, 0.6, 0.25, 0.1])
    logits = logits_for(probabilities)
    rng = np.random.default_rng(1)
    everything = {sample_token(logits, SamplingParams(temperature=1.0, top_p=1.0), rng) for _ in range(2000)}
    assert {2, 4, 5, 6} <= everything
    head = {sample_token(logits, SamplingParams(temperature=1.0, top_p=0.8), rng) for _ in range(500)}
    assert head == {4, 5}
    assert {sample_token(logits, SamplingParams(temperature=1.0, top_p=0.01), rng) for _ in range(50)} == {4}


def test_repetition_penalty_discourages_tokens_already_used():
    logits = np.array([0, 0, 0, 0, 2.0, 1.9])
    seen = np.array([False, False, False, False, True, False])
    params = SamplingParams(temperature=0, repetition_penalty=1.5)
    assert sample_token(logits, params, np.random.default_rng(0), seen) == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": -1}, "temperature"),
        ({"top_k": 0}, "top-k"),
        ({"top_p": 0}, "top-p"),
        ({"top_p": 1.5}, "top-p"),
        ({"max_tokens": 0}, "max tokens"),
        ({"min_tokens": -1}, "min tokens"),
    ],
)
def test_nonsensical_sampling_settings_are_refused(kwargs, message):
    from textgen.errors import TextgenError

    with pytest.raises(TextgenError, match=message):
        SamplingParams(**kwargs)


def byte_heavy_model(spec: ModelSpec, favoured: list[int], seed: int = 0) -> keras.Model:
    """A model whose logits put almost all mass on the `favoured` tokens, whatever it has read."""
    model = random_model(spec, seed)
    kernel, bias = model.get_layer("logits").get_weights()
    bias[:] = -20
    bias[favoured] = 20
    model.get_layer("logits").set_weights([kernel * 0, bias])
    return model


def test_a_reply_never_ends_before_it_has_text_beyond_whitespace():
    spec = ModelSpec(arch="gru", units=8, embedding=4, seq_len=8)
    # The model wants a space, a letter or the end of the message, equally, whatever it has read.
    space, letter = ord(" ") + 4, ord("a") + 4
    generator = Generator(
        Bundle(None, spec, ByteTokenizer(), byte_heavy_model(spec, [space, letter, EOS_ID]))
    )
    replies = generator.generate("", max_tokens=30, temperature=1.0, seed=0, n=60)
    assert all(reply.strip() for reply in replies)
    assert any(reply.startswith(" ") for reply in replies)  # blank tokens are allowed, just not alone
    tokens = generator.generate_tokens(
        [[]] * 60, [SamplingParams(max_tokens=30, min_tokens=0, seed=s) for s in range(60)]
    )
    assert any(not ByteTokenizer().decode(ids).strip() for ids in tokens)  # without the minimum, some are


def test_replies_never_contain_a_replacement_character_from_cut_utf8():
    spec = ModelSpec(arch="gru", units=8, embedding=4, seq_len=8)
    # The model wants lone continuation bytes, an invalid lead (0xFF), multi-byte leads and the end of the
    # message, all at once; sampled freely they decode to U+FFFD.
    favoured = [0x80 + 4, 0xBF + 4, 0xFF + 4, 0xE2 + 4, 0xF0 + 4, 0xC3 + 4, EOS_ID]
    generator = Generator(Bundle(None, spec, ByteTokenizer(), byte_heavy_model(spec, favoured)))
    for max_tokens in (1, 2, 5, 17):
        texts = generator.generate("é", max_tokens=max_tokens, temperature=1.5, seed=3, n=40)
        assert all("\ufffd" not in text for text in texts)
        # Every reply is valid UTF-8 as bytes, and stops at most 3 bytes past the limit to end a character.
        for text in texts:
            assert len(text[1:].encode()) <= max_tokens + 3
    assert any(len(text) > 1 for text in texts)


def test_a_temperature_too_small_to_divide_by_is_greedy():
    logits = np.full(10, -5.0)
    logits[7] = 3.0
    logits[8] = 2.999
    for temperature in (1e-300, 5e-324, 1e-7):
        picked = {
            sample_token(logits, SamplingParams(temperature=temperature), np.random.default_rng(s))
            for s in range(5)
        }
        assert picked == {7}


@pytest.mark.parametrize(
    "params",
    [
        SamplingParams(temperature=0),
        SamplingParams(temperature=1e-300),
        SamplingParams(temperature=1.0),
        SamplingParams(temperature=3.0, top_k=2),
        SamplingParams(temperature=3.0, top_p=0.5),
    ],
    ids=["greedy", "tiny-temperature", "plain", "top-k", "top-p"],
)
def test_padding_and_begin_of_message_are_never_sampled(params):
    spec = ModelSpec(arch="gru", units=8, embedding=4, seq_len=8)
    generator = Generator(
        Bundle(None, spec, ByteTokenizer(), byte_heavy_model(spec, [PAD_ID, BOS_ID, UNK_ID]))
    )
    [tokens] = generator.generate_tokens(
        [[70]], [SamplingParams(**{**params.__dict__, "max_tokens": 30, "seed": 1, "stop_at_end": False})]
    )
    assert tokens and not {PAD_ID, BOS_ID, UNK_ID} & set(tokens)
