"""The plain Keras character model of TensorFlow's text-generation tutorial, as a quality baseline.

Built the way the tutorial builds it: a character vocabulary from the training text (index 0 stands for
a character the training text never has, as `StringLookup`'s out-of-vocabulary index does); the text cut
into fixed windows of `WINDOW + 1` characters, each split into input and target shifted by one; shuffled
batches; `Embedding` -> one `LSTM(return_sequences=True)` -> `Dense(vocab)`, trained with
`SparseCategoricalCrossentropy(from_logits=True)` and Adam by `model.fit`. Sizes are CPU-sized.

Chat is a list of messages; the tutorial reads one text, so the messages are joined with "\\n".

Training stops on wall-clock time (`WallClockBudget`), like `chatsmith train --time-budget`: the run,
its final scoring included, ends within the budget counted from the process start.

Score: the total negative log-likelihood (natural log) of the test text read in windows of `WINDOW`
characters, each from a fresh state as in training, over the number of characters of the test messages.
The scored stream has a "\\n" before each message and one after the last, so every character of every
message is predicted, and so is one end-of-message newline per message; the newlines are not counted as
characters, as chatsmith counts its framing tokens' loss but not as characters.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf

UNITS = 256
EMBEDDING = 256
WINDOW = 64
BATCH = 32
LEARNING_RATE = 2e-3
# The tutorial's shuffle buffer.
SHUFFLE_BUFFER = 10_000
# Windows per forward pass when scoring.
SCORE_BATCH = 256
# Code points a character can have: the vocabulary lookup is one array indexed by code point.
_CODE_POINTS = 0x110000
# Scoring time is estimated before training from one timed batch; this margin covers a busy machine.
SCORING_MARGIN = 1.5
SCORING_FIXED_SECONDS = 2.0


def _progress(message: str) -> None:
    print(f"[char-baseline] {message}", file=sys.stderr, flush=True)


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


class CharVocabulary:
    """The characters of a training text; id 0 is for characters outside it."""

    def __init__(self, text: str) -> None:
        self.chars = sorted(set(text))
        self._ids = np.zeros(_CODE_POINTS, dtype=np.int32)
        self._ids[[ord(char) for char in self.chars]] = np.arange(1, len(self.chars) + 1, dtype=np.int32)

    @property
    def size(self) -> int:
        return len(self.chars) + 1

    def ids(self, text: str) -> np.ndarray:
        return self._ids[_code_points(text)]


def scored_stream(messages: list[str]) -> str:
    """The test messages as the baseline reads them: each after a "\\n", and a "\\n" after the last."""
    return "\n" + "\n".join(messages) + "\n"


def training_dataset(ids: np.ndarray, seed: int, window: int = WINDOW, batch: int = BATCH) -> tf.data.Dataset:
    """Shuffled batches of (input, target) windows: consecutive `window + 1` characters, shifted by one."""
    count = len(ids) // (window + 1)
    sequences = ids[: count * (window + 1)].reshape(count, window + 1)
    dataset = tf.data.Dataset.from_tensor_slices(sequences)
    dataset = dataset.map(lambda sequence: (sequence[:-1], sequence[1:]))
    return (
        dataset.shuffle(SHUFFLE_BUFFER, seed=seed)
        .batch(batch, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )


def build_char_model(vocab_size: int, units: int = UNITS, embedding: int = EMBEDDING) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input(shape=(None,), dtype="int32"),
            keras.layers.Embedding(vocab_size, embedding),
            keras.layers.LSTM(units, return_sequences=True),
            keras.layers.Dense(vocab_size),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _batch_nll(model: keras.Model, inputs: np.ndarray, targets: np.ndarray) -> float:
    logits = model(inputs, training=False)
    losses = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    return float(np.sum(np.asarray(losses, dtype=np.float64)))


def stream_nll(model: keras.Model, ids: np.ndarray, window: int = WINDOW) -> float:
    """Total negative log-likelihood of `ids[1:]`, read in consecutive windows from a fresh state."""
    full = (len(ids) - 1) // window
    inputs = ids[: full * window].reshape(full, window)
    targets = ids[1 : full * window + 1].reshape(full, window)
    total = sum(
        _batch_nll(model, inputs[start : start + SCORE_BATCH], targets[start : start + SCORE_BATCH])
        for start in range(0, full, SCORE_BATCH)
    )
    if full * window + 1 < len(ids):
        total += _batch_nll(model, ids[full * window : -1][None, :], ids[full * window + 1 :][None, :])
    return total


def scoring_seconds(model: keras.Model, windows: int, window: int = WINDOW) -> float:
    """About how long `stream_nll` takes for `windows` windows, from one timed batch (after a warm-up)."""
    sample = np.ones((min(SCORE_BATCH, max(1, windows)), window), dtype=np.int32)
    _batch_nll(model, sample, sample)
    began = time.perf_counter()
    _batch_nll(model, sample, sample)
    per_window = (time.perf_counter() - began) / len(sample)
    return SCORING_MARGIN * per_window * windows + SCORING_FIXED_SECONDS


class WallClockBudget(keras.callbacks.Callback):
    """Stops `fit` once the time since `started`, plus `reserve` seconds kept for scoring, reaches `budget`."""

    def __init__(self, started: float, budget: float, reserve: float) -> None:
        super().__init__()
        self.started, self.budget, self.reserve = started, budget, reserve
        self.steps = 0
        self._last_note = time.monotonic()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.steps += 1
        now = time.monotonic()
        if now - self._last_note > 10:
            loss = (logs or {}).get("loss")
            _progress(f"step {self.steps}, {now - self.started:.0f} s, loss {loss}")
            self._last_note = now
        if now - self.started + self.reserve >= self.budget:
            self.model.stop_training = True


def train_and_score(
    train_messages: list[str],
    test_messages: list[str],
    *,
    budget: float,
    started: float,
    seed: int = 0,
    units: int = UNITS,
    embedding: int = EMBEDDING,
) -> dict[str, Any]:
    """Train the baseline on `train_messages` until `budget` seconds after `started` (`time.monotonic()`),
    then score it on `test_messages`. Returns its figures, `test_nats_per_char` among them."""
    keras.utils.set_random_seed(seed)
    train_text = "\n".join(train_messages)
    vocabulary = CharVocabulary(train_text)
    train_ids = vocabulary.ids(train_text)
    test_ids = vocabulary.ids(scored_stream(test_messages))
    test_chars = sum(len(message) for message in test_messages)
    model = build_char_model(vocabulary.size, units, embedding)
    windows = (len(test_ids) - 1) // WINDOW + 1
    reserve = scoring_seconds(model, windows)
    budget_callback = WallClockBudget(started, budget, reserve)
    train_started = time.monotonic()
    # More epochs than the budget allows: the budget ends training, as `--time-budget` does.
    # `shuffle=False`: the dataset shuffles itself, as in the tutorial (fit would only warn about it).
    dataset = training_dataset(train_ids, seed)
    model.fit(dataset, epochs=10_000, callbacks=[budget_callback], verbose=0, shuffle=False)
    train_seconds = time.monotonic() - train_started
    total = stream_nll(model, test_ids)
    trained_chars = budget_callback.steps * BATCH * WINDOW
    return {
        "test_nats_per_char": total / test_chars,
        "test_chars": test_chars,
        "test_messages": len(test_messages),
        "unknown_test_chars": int(np.count_nonzero(test_ids == 0)),
        "train_chars": len(train_text),
        "vocab_size": vocabulary.size,
        "params": int(model.count_params()),
        "units": units,
        "embedding": embedding,
        "window": WINDOW,
        "batch": BATCH,
        "learning_rate": LEARNING_RATE,
        "steps": budget_callback.steps,
        "epochs_of_train_text": trained_chars / max(1, len(train_ids)),
        "train_tokens_per_sec": trained_chars / train_seconds if train_seconds > 0 else 0.0,
        "scoring_reserve_seconds": reserve,
        "time_budget": budget,
        "seconds": time.monotonic() - started,
    }
