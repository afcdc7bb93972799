"""A model trained on chat must start well from a fresh state anywhere, and its figures must be sound.

One small real run on a slice of real chat (the Ubuntu IRC log in tests/data), a few seconds, with the
default training settings; then:

- recovery: from the zero state at random offsets (mid-message included), after a burn-in of
  RECOVERY_BURN_IN tokens, the loss is within 0.1 nats/token of one stream read from the start;
- evaluation: 1 and 64 segments agree within 2%, and the evaluator's total equals a Keras cross-entropy
  over the whole stream computed here.

A model trained with the state carried and never reset (the earlier default) could fail the recovery
check by 4 nats/token while its training loss looked fine; this is the check that catches it.
"""

from pathlib import Path

import keras
import numpy as np
import pytest

from textgen.bundle import load_bundle
from textgen.corpus import parse_corpus
from textgen.evaluate import evaluate_messages, recovery_gap
from textgen.spec import ModelSpec, TrainConfig
from textgen.training import TrainingFailed, train_model

# Every test but the last reads one model trained for a few hundred steps (seconds).
pytestmark = pytest.mark.slow

CHAT = Path(__file__).resolve().parents[1] / "data" / "ubuntu-irc-head.log"
RECOVERY_BURN_IN = 64
SPEC = ModelSpec(arch="gru", units=96, embedding=16, seq_len=64)


@pytest.fixture(scope="module")
def chat() -> tuple[list[str], list[str]]:
    messages = parse_corpus(CHAT.read_text(encoding="utf-8"), "irc").messages
    return messages[:-500], messages[-500:]


@pytest.fixture(scope="module")
def chat_bundle(tmp_path_factory, chat):
    train, _ = chat
    out = tmp_path_factory.mktemp("robust") / "model"
    # The default training settings (carried state, its resets, the learning rate), a few hundred steps.
    config = TrainConfig(epochs=2, steps_per_epoch=100, batch_size=16)
    train_model(train, out, spec=SPEC, config=config)
    return load_bundle(out)


def test_model_recovers_from_a_fresh_state_at_any_offset(chat_bundle, chat):
    _, held_out = chat
    tokens = len(chat_bundle.tokenizer.encode_messages(held_out))
    starts = np.random.default_rng(7).integers(0, tokens - RECOVERY_BURN_IN - 200, size=24)
    fresh, stream = recovery_gap(chat_bundle, held_out, starts, burn_in=RECOVERY_BURN_IN, span=128)
    assert stream < 3.0, "the run learned little: the check below would prove nothing"
    assert abs(fresh - stream) < 0.1


def test_evaluation_barely_depends_on_the_number_of_segments(chat_bundle, chat):
    _, held_out = chat
    one = evaluate_messages(chat_bundle, held_out, segments=1).nats_per_char
    many = evaluate_messages(chat_bundle, held_out, segments=64).nats_per_char
    assert abs(many - one) / one < 0.02


def test_evaluation_equals_keras_cross_entropy_over_the_whole_stream(chat_bundle, chat):
    _, held_out = chat
    messages = held_out[:20]
    stream = chat_bundle.tokenizer.encode_messages(messages)
    logits = chat_bundle.model(stream[None, :-1]).numpy()[0]
    keras_total = float(
        np.sum(keras.losses.sparse_categorical_crossentropy(stream[1:], logits, from_logits=True).numpy())
    )
    evaluation = evaluate_messages(chat_bundle, messages, segments=1)
    chars = sum(len(message) for message in messages)
    assert evaluation.nats_per_char == pytest.approx(keras_total / chars, rel=1e-4)
    assert evaluation.nats_per_token == pytest.approx(keras_total / (len(stream) - 1), rel=1e-4)


def test_one_document_segments_read_a_burn_in_before_they_count(chat_bundle, chat):
    _, held_out = chat
    document = ["\n".join(held_out[:150])]
    one = evaluate_messages(chat_bundle, document, segments=1).nats_per_char
    cut = evaluate_messages(chat_bundle, document, segments=32, burn_in=RECOVERY_BURN_IN).nats_per_char
    assert abs(cut - one) / one < 0.02


def test_a_run_worse_than_a_uniform_guess_fails_and_saves_nothing(tmp_path, chat):
    train, _ = chat
    # A learning rate far too high for plain SGD without clipping: the weights blow up.
    config = TrainConfig(
        epochs=1, steps_per_epoch=20, batch_size=8, optimizer="sgd", learning_rate=1e4, clipnorm=1e9
    )
    with pytest.raises(TrainingFailed, match="no better than a uniform guess"):
        train_model(
            train[:800], tmp_path / "m", spec=ModelSpec(units=16, embedding=8, seq_len=32), config=config
        )
    assert not (tmp_path / "m").exists()
