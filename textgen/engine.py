"""The decoding engine: recurrent steps with explicit state, in NumPy (architecture decision 3).

Keras evaluates a whole sequence per call; generation needs one token at a time. Calling the model
once per token (the seed project's `model.predict` loop) re-runs the whole window and pays the
framework's dispatch cost every time. Here a causal model's weights are read once into NumPy arrays
and each token costs one step of matrix-vector products per layer, with the state carried between
steps: O(1) work per token, and a batch of requests costs one matrix-matrix product per layer.

A BiLSTM cannot carry state (its backward direction sees the whole window), so it re-encodes the last
window per token through one compiled `tf.function` call for the whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from textgen.spec import ModelSpec
from textgen.tokenizers import PAD_ID


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: no overflow warnings for large negative inputs, and cheaper than exp + divide.
    return 0.5 * np.tanh(0.5 * x) + 0.5


@dataclass
class _Layer:
    arch: str
    units: int
    kernel: np.ndarray  # (input, gates * units); None-equivalent for layer 0, folded into the table
    recurrent: np.ndarray  # (units, gates * units)
    bias: np.ndarray  # (gates * units,) input bias
    recurrent_bias: np.ndarray | None  # GRU (reset_after) only


class CausalStepper:
    """Runs a causal model (SimpleRNN, LSTM, GRU, stacked) one token at a time for a batch.

    The state is a list with one entry per layer: `h` arrays of shape (batch, units), or `(h, c)`
    pairs for LSTM layers.
    """

    def __init__(self, model: Any, spec: ModelSpec) -> None:
        if not spec.causal:
            raise ValueError("CausalStepper runs causal models only; use WindowStepper for a BiLSTM")
        self.spec = spec
        embeddings = np.asarray(model.get_layer("embedding").get_weights()[0], dtype=np.float32)
        self.layers: list[_Layer] = []
        for index in range(spec.layers):
            weights = [np.asarray(w, dtype=np.float32) for w in model.get_layer(f"rnn_{index}").get_weights()]
            kernel, recurrent, bias = weights
            recurrent_bias = None
            if spec.arch == "gru":
                # Keras' GRU keeps input and recurrent biases apart (reset_after=True): shape (2, 3u).
                bias, recurrent_bias = bias[0], bias[1]
            self.layers.append(_Layer(spec.arch, spec.units, kernel, recurrent, bias, recurrent_bias))
        # Embedding lookup followed by the first layer's input projection is a lookup in one table.
        first = self.layers[0]
        self.input_table = embeddings @ first.kernel + first.bias
        dense_kernel, dense_bias = model.get_layer("logits").get_weights()
        self.output_kernel = np.asarray(dense_kernel, dtype=np.float32)
        self.output_bias = np.asarray(dense_bias, dtype=np.float32)
        self.vocab_size = self.output_kernel.shape[1]

    def initial_state(self, batch: int) -> list[Any]:
        state: list[Any] = []
        for layer in self.layers:
            zeros = np.zeros((batch, layer.units), dtype=np.float32)
            state.append((zeros, zeros.copy()) if layer.arch == "lstm" else zeros)
        return state

    def step(self, tokens: np.ndarray, state: list[Any]) -> tuple[np.ndarray, list[Any]]:
        """Logits `(batch, vocab)` for the next token after `tokens` `(batch,)`, and the new state."""
        new_state = []
        x = self.input_table[tokens]
        for index, layer in enumerate(self.layers):
            projected = x if index == 0 else x @ layer.kernel + layer.bias
            x, layer_state = _cell(layer, projected, state[index])
            new_state.append(layer_state)
        return x @ self.output_kernel + self.output_bias, new_state

    @staticmethod
    def select(state: list[Any], rows: np.ndarray) -> list[Any]:
        """The state of the batch rows `rows` (to drop finished sequences from a batch)."""
        return [
            tuple(part[rows] for part in entry) if isinstance(entry, tuple) else entry[rows]
            for entry in state
        ]

    @staticmethod
    def concat(first: list[Any], second: list[Any]) -> list[Any]:
        """Two batches' states joined along the batch axis (to add new requests to a running batch)."""
        joined: list[Any] = []
        for a, b in zip(first, second, strict=True):
            if isinstance(a, tuple):
                joined.append(tuple(np.concatenate([x, y]) for x, y in zip(a, b, strict=True)))
            else:
                joined.append(np.concatenate([a, b]))
        return joined


def _cell(layer: _Layer, projected: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
    """One recurrent step given the input already projected (`x @ kernel + bias`); Keras' equations."""
    units = layer.units
    if layer.arch == "simplernn":
        h = np.tanh(projected + state @ layer.recurrent)
        return h, h
    if layer.arch == "lstm":
        h_prev, c_prev = state
        z = projected + h_prev @ layer.recurrent
        i = _sigmoid(z[:, :units])
        f = _sigmoid(z[:, units : 2 * units])
        g = np.tanh(z[:, 2 * units : 3 * units])
        o = _sigmoid(z[:, 3 * units :])
        c = f * c_prev + i * g
        h = o * np.tanh(c)
        return h, (h, c)
    # GRU, reset gate applied after the recurrent matmul (Keras' default, reset_after=True).
    h_prev = state
    inner = h_prev @ layer.recurrent + layer.recurrent_bias
    z = _sigmoid(projected[:, :units] + inner[:, :units])
    r = _sigmoid(projected[:, units : 2 * units] + inner[:, units : 2 * units])
    candidate = np.tanh(projected[:, 2 * units :] + r * inner[:, 2 * units :])
    h = z * h_prev + (1.0 - z) * candidate
    return h, h


class WindowStepper:
    """Runs a BiLSTM: the last `seq_len` tokens of each row, re-encoded in one compiled call per step.

    Rows shorter than the window are left-padded with the padding token. The state is the window itself,
    so the same batching code drives both steppers.
    """

    def __init__(self, model: Any, spec: ModelSpec) -> None:
        self.spec = spec
        self.seq_len = spec.seq_len
        self.vocab_size = int(model.get_layer("logits").get_weights()[1].shape[0])
        signature = [tf.TensorSpec(shape=(None, spec.seq_len), dtype=tf.int32)]
        self._forward = tf.function(
            lambda x: model(x, training=False), input_signature=signature, jit_compile=False
        )

    def initial_state(self, batch: int) -> np.ndarray:
        return np.full((batch, self.seq_len), PAD_ID, dtype=np.int32)

    def step(self, tokens: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        window = self.advance(tokens, state)
        logits = self._forward(tf.constant(window)).numpy()
        return logits.astype(np.float32), window

    @staticmethod
    def advance(tokens: np.ndarray, state: np.ndarray) -> np.ndarray:
        """The windows after `tokens`, without a forward pass (reading a prompt needs no logits)."""
        return np.concatenate([state[:, 1:], tokens[:, None].astype(np.int32)], axis=1)

    @staticmethod
    def select(state: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return state[rows]

    @staticmethod
    def concat(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        return np.concatenate([first, second])


_blas_limited = False


def limit_blas_threads() -> None:
    """Run NumPy's BLAS on one thread in this process, once.

    A decoding step multiplies a (batch, units) matrix by (units, gates*units): far too small to split
    across threads, and on a busy small machine OpenBLAS's thread hand-offs were measured at 10 to 100
    times the cost of the product itself. Concurrency comes from decoding requests in parallel instead.
    Process-wide on purpose: a per-call limit would be undone by another thread's exit from it.
    TensorFlow's own thread pools are not affected.
    """
    global _blas_limited
    if _blas_limited:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    _blas_limited = True


def make_stepper(model: object, spec: ModelSpec) -> CausalStepper | WindowStepper:
    """The stepper for `spec`'s architecture (and BLAS limited to one thread, see `limit_blas_threads`)."""
    limit_blas_threads()
    return CausalStepper(model, spec) if spec.causal else WindowStepper(model, spec)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
