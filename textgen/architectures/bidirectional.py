"""Windowed bidirectional language models: stacked BiLSTM layers encode the last `seq_len` tokens and
predict the one after them.

Weights (`textgen.weights`), in Keras' order:

    embedding                                             (vocab, embedding)
    rnn_{i}/forward/kernel, .../recurrent_kernel, .../bias  then the same under rnn_{i}/backward
    logits/kernel, logits/bias

A BiLSTM cannot carry state (its backward direction sees the whole window), so the stepper re-encodes
the last window per token, the whole batch at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from textgen.architectures.cells import LSTMCell, cell_shapes, run_sequence
from textgen.architectures.family import EMBEDDING, LOGITS, KerasLayer, Weights, framed_shapes
from textgen.tokenizers import PAD_ID

if TYPE_CHECKING:
    import keras

    from textgen.spec import ModelSpec

_DIRECTIONS = ("forward", "backward")


class WindowStepper:
    """Runs a BiLSTM: the last `seq_len` tokens of each row, re-encoded for the whole batch per step.

    Rows shorter than the window are left-padded with the padding token. The state is the window itself.
    """

    carries_state: bool = False

    def __init__(self, weights: Weights, spec: ModelSpec) -> None:
        self.spec = spec
        self.context_window: int | None = spec.seq_len
        self.seq_len = spec.seq_len
        self.embeddings = weights["embedding"]
        self.layers = [
            tuple(LSTMCell.from_weights(weights, f"rnn_{i}/{d}", spec.units) for d in _DIRECTIONS)
            for i in range(spec.layers)
        ]
        self.output_kernel = weights["logits/kernel"]
        self.output_bias = weights["logits/bias"]
        self.vocab_size = int(self.output_kernel.shape[1])

    @property
    def nbytes(self) -> int:
        return 0

    def window_logits(self, windows: np.ndarray) -> np.ndarray:
        """Logits `(batch, vocab)` of the token after each window `(batch, seq_len)`: Keras' forward pass.

        Each layer runs both directions over the whole window; Keras' `Bidirectional` joins them per
        position (the backward outputs put back in time order), and the last layer keeps only each
        direction's final output (forward: after the last token; backward: after the first).
        """
        x = self.embeddings[windows]
        for index, (forward, backward) in enumerate(self.layers):
            ahead = run_sequence(forward, x)
            behind = run_sequence(backward, x[:, ::-1])
            if index == len(self.layers) - 1:
                x = np.concatenate([ahead[:, -1], behind[:, -1]], axis=-1)
            else:
                x = np.concatenate([ahead, behind[:, ::-1]], axis=-1)
        return x @ self.output_kernel + self.output_bias

    def initial_state(self, batch: int) -> np.ndarray:
        return np.full((batch, self.seq_len), PAD_ID, dtype=np.int32)

    def step(self, tokens: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        window = self.read(tokens, state)
        return self.window_logits(window), window

    @staticmethod
    def read(tokens: np.ndarray, state: np.ndarray) -> np.ndarray:
        """The windows after `tokens`, without a forward pass."""
        return np.concatenate([state[:, 1:], tokens[:, None].astype(np.int32)], axis=1)

    @staticmethod
    def select(state: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return state[rows]

    @staticmethod
    def concat(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return np.concatenate([first, second])


class BidirectionalFamily:
    """Stacked bidirectional LSTM layers over a window of `seq_len` tokens; no state between windows."""

    arch: str = "bilstm"
    causal: bool = False
    carries_state: bool = False

    def weight_shapes(self, spec: ModelSpec, vocab_size: int) -> dict[str, tuple[int, ...]]:
        body: dict[str, tuple[int, ...]] = {}
        for index in range(spec.layers):
            # Past the first layer, each layer reads both directions of the one below, joined.
            inputs = spec.embedding if index == 0 else 2 * spec.units
            for direction in _DIRECTIONS:
                body.update(cell_shapes(LSTMCell, f"rnn_{index}/{direction}", inputs, spec.units))
        return framed_shapes(spec, vocab_size, body, 2 * spec.units)

    def keras_layers(self, spec: ModelSpec) -> list[KerasLayer]:
        groups = tuple(f"{direction}_layer/cell/vars" for direction in _DIRECTIONS)
        return [EMBEDDING, *(KerasLayer(f"rnn_{index}", groups) for index in range(spec.layers)), LOGITS]

    def make_stepper(self, weights: Weights, spec: ModelSpec) -> WindowStepper:
        return WindowStepper(weights, spec)

    def build_keras(self, spec: ModelSpec, vocab_size: int) -> keras.Model:
        """Maps a `(batch, seq_len)` window to `(batch, vocab)` logits for the next token."""
        import keras

        from textgen.architectures.keras_frame import language_model

        def bidirectional_layer(index: int, x: keras.KerasTensor) -> keras.KerasTensor:
            last = index == spec.layers - 1
            layer = keras.layers.Bidirectional(
                keras.layers.LSTM(spec.units, return_sequences=not last), name=f"rnn_{index}"
            )
            return layer(x)

        return language_model(spec, vocab_size, spec.seq_len, bidirectional_layer)

    def state_sizes(self, spec: ModelSpec) -> list[int]:
        return []

    def carried_state_model(self, model: keras.Model, spec: ModelSpec) -> keras.Model:
        raise ValueError(
            "only models that carry state have a carried-state model; a BiLSTM re-reads its window"
        )


BIDIRECTIONAL_LSTM = BidirectionalFamily()
