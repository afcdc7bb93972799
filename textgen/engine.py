"""The decoding engine: recurrent steps with explicit state, in NumPy only (serving needs no TensorFlow).

Keras evaluates a whole sequence per call; generation needs one token at a time. Calling the model
once per token (the seed project's `model.predict` loop) re-runs the whole window and pays the
framework's dispatch cost every time. Here a causal model's weights (`textgen.weights`) are used as NumPy
arrays and each token costs one step of matrix-vector products per layer, with the state carried
between steps: O(1) work per token, and a batch of requests costs one matrix-matrix product per layer.

A BiLSTM cannot carry state (its backward direction sees the whole window), so it re-encodes the last
window per token, the whole batch at once. Nothing here imports TensorFlow: the bots decode without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from textgen.spec import ModelSpec
from textgen.tokenizers import PAD_ID
from textgen.weights import Weights, weights_from_keras

# Largest embedding table (tokens) for which layer 0's input projection is precomputed per token: byte
# and character vocabularies (a few hundred entries) cost well under a millisecond; a word vocabulary of
# tens of thousands would cost a bundle load tens of milliseconds and megabytes, to save one small
# product per step.
_FUSED_TABLE_MAX_TOKENS = 4096


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: no overflow warnings for large negative inputs, and cheaper than exp + divide.
    return 0.5 * np.tanh(0.5 * x) + 0.5


@dataclass
class _Layer:
    arch: str
    units: int
    kernel: np.ndarray  # (input, gates * units)
    recurrent: np.ndarray  # (units, gates * units)
    bias: np.ndarray  # (gates * units,) input bias
    recurrent_bias: np.ndarray | None  # GRU (reset_after) only


def _layer(weights: Weights, prefix: str, arch: str, units: int) -> _Layer:
    bias = weights[f"{prefix}/bias"]
    recurrent_bias = None
    if arch == "gru":
        bias, recurrent_bias = bias[0], bias[1]
    return _Layer(
        arch, units, weights[f"{prefix}/kernel"], weights[f"{prefix}/recurrent_kernel"], bias, recurrent_bias
    )


def as_weights(source: Any, spec: ModelSpec) -> Weights:
    """`source` as named arrays: already `Weights`, or a Keras model whose arrays are read out."""
    return source if isinstance(source, dict) else weights_from_keras(source, spec)


class CausalStepper:
    """Runs a causal model (SimpleRNN, LSTM, GRU, stacked) one token at a time for a batch.

    The state is a list with one entry per layer: `h` arrays of shape (batch, units), or `(h, c)`
    pairs for LSTM layers.
    """

    def __init__(self, weights: Weights, spec: ModelSpec) -> None:
        if not spec.causal:
            raise ValueError("CausalStepper runs causal models only; use WindowStepper for a BiLSTM")
        self.spec = spec
        self.embeddings = weights["embedding"]
        self.layers = [_layer(weights, f"rnn_{i}", spec.arch, spec.units) for i in range(spec.layers)]
        first = self.layers[0]
        # Embedding lookup followed by the first layer's input projection is a lookup in one table.
        self.input_table: np.ndarray | None = None
        if self.embeddings.shape[0] <= _FUSED_TABLE_MAX_TOKENS:
            self.input_table = self.embeddings @ first.kernel + first.bias
        self.output_kernel = weights["logits/kernel"]
        self.output_bias = weights["logits/bias"]
        self.vocab_size = int(self.output_kernel.shape[1])

    @property
    def nbytes(self) -> int:
        """Bytes of arrays this stepper made itself (the weights are counted where they are held)."""
        return 0 if self.input_table is None else int(self.input_table.nbytes)

    def initial_state(self, batch: int) -> list[Any]:
        state: list[Any] = []
        for layer in self.layers:
            zeros = np.zeros((batch, layer.units), dtype=np.float32)
            state.append((zeros, zeros.copy()) if layer.arch == "lstm" else zeros)
        return state

    def step(self, tokens: np.ndarray, state: list[Any]) -> tuple[np.ndarray, list[Any]]:
        """Logits `(batch, vocab)` for the next token after `tokens` `(batch,)`, and the new state."""
        new_state = []
        if self.input_table is not None:
            x = self.input_table[tokens]
        else:
            first = self.layers[0]
            x = self.embeddings[tokens] @ first.kernel + first.bias
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
    if layer.arch in ("lstm", "bilstm"):
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


def _lstm_sequence(layer: _Layer, inputs: np.ndarray) -> np.ndarray:
    """Every output `(batch, time, units)` of one LSTM direction over `inputs` `(batch, time, features)`."""
    batch, length, _ = inputs.shape
    # One product projects every position's input; the loop is left with the recurrent products.
    projected = inputs @ layer.kernel + layer.bias
    h = np.zeros((batch, layer.units), dtype=np.float32)
    state: Any = (h, h.copy())
    outputs = np.empty((batch, length, layer.units), dtype=np.float32)
    for position in range(length):
        h, state = _cell(layer, projected[:, position], state)
        outputs[:, position] = h
    return outputs


class WindowStepper:
    """Runs a BiLSTM: the last `seq_len` tokens of each row, re-encoded for the whole batch per step.

    Rows shorter than the window are left-padded with the padding token. The state is the window itself,
    so the same batching code drives both steppers.
    """

    def __init__(self, weights: Weights, spec: ModelSpec) -> None:
        if spec.causal:
            raise ValueError("WindowStepper runs a BiLSTM only; use CausalStepper for causal models")
        self.spec = spec
        self.seq_len = spec.seq_len
        self.embeddings = weights["embedding"]
        self.layers = [
            tuple(_layer(weights, f"rnn_{i}/{d}", "bilstm", spec.units) for d in ("forward", "backward"))
            for i in range(spec.layers)
        ]
        self.output_kernel = weights["logits/kernel"]
        self.output_bias = weights["logits/bias"]
        self.vocab_size = int(self.output_kernel.shape[1])

    @property
    def nbytes(self) -> int:
        return 0

    def forward(self, windows: np.ndarray) -> np.ndarray:
        """Logits `(batch, vocab)` of the token after each window `(batch, seq_len)`: Keras' forward pass.

        Each layer runs both directions over the whole window; Keras' `Bidirectional` joins them per
        position (the backward outputs put back in time order), and the last layer keeps only each
        direction's final output (forward: after the last token; backward: after the first).
        """
        x = self.embeddings[windows]
        for index, (forward, backward) in enumerate(self.layers):
            ahead = _lstm_sequence(forward, x)
            behind = _lstm_sequence(backward, x[:, ::-1])
            if index == len(self.layers) - 1:
                x = np.concatenate([ahead[:, -1], behind[:, -1]], axis=-1)
            else:
                x = np.concatenate([ahead, behind[:, ::-1]], axis=-1)
        return x @ self.output_kernel + self.output_bias

    def initial_state(self, batch: int) -> np.ndarray:
        return np.full((batch, self.seq_len), PAD_ID, dtype=np.int32)

    def step(self, tokens: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        window = self.advance(tokens, state)
        return self.forward(window), window

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


def make_stepper(source: Any, spec: ModelSpec) -> CausalStepper | WindowStepper:
    """The stepper for `spec`'s architecture, from `Weights` or a Keras model (and BLAS limited to one
    thread, see `limit_blas_threads`)."""
    limit_blas_threads()
    weights = as_weights(source, spec)
    return CausalStepper(weights, spec) if spec.causal else WindowStepper(weights, spec)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
