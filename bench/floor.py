"""The NumPy floor: one recurrent step as plain matrix-vector products over the model's own weights.

This is the practical lower bound for single-stream generation on a CPU: no batching logic, no
sampling beyond an argmax, no framework; just the products one token costs and as little Python around
them as possible. It is written independently of `textgen.engine` (the same equations, from Keras'
documentation) so the engine is measured against something it does not share code with; the smoke test
checks both against the Keras forward pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.tanh(0.5 * x) + 0.5


def _weights(model: Any, name: str) -> list[np.ndarray]:
    return [np.asarray(w, dtype=np.float32) for w in model.get_layer(name).get_weights()]


class CausalFloor:
    """SimpleRNN, LSTM or GRU (stacked) on one 1-D state vector per layer, greedy decoding.

    Args:
        model: a causal model from `textgen.model.build_model` (layers `embedding`, `rnn_i`, `logits`).
        arch: `simplernn`, `lstm` or `gru`.
    """

    def __init__(self, model: Any, arch: str) -> None:
        self.arch = arch
        (embeddings,) = _weights(model, "embedding")
        self.layers: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = []
        index = 0
        while True:
            try:
                weights = _weights(model, f"rnn_{index}")
            except ValueError:
                break
            kernel, recurrent, bias = weights
            recurrent_bias = None
            if arch == "gru":
                bias, recurrent_bias = bias[0], bias[1]
            self.layers.append((kernel, recurrent, bias, recurrent_bias))
            index += 1
        self.units = self.layers[0][1].shape[0]
        first_kernel, _, first_bias, _ = self.layers[0]
        # Embedding then input projection is one table lookup; every step needs only the recurrent product.
        self.table = embeddings @ first_kernel + first_bias
        self.output_kernel, self.output_bias = _weights(model, "logits")

    def initial_state(self) -> list:
        zeros = np.zeros(self.units, dtype=np.float32)
        return [(zeros, zeros) if self.arch == "lstm" else zeros for _ in self.layers]

    def step(self, token: int, state: list) -> tuple[np.ndarray, list]:
        """Logits after `token` and the new state."""
        u = self.units
        x = None
        new_state = []
        for index, (kernel, recurrent, bias, recurrent_bias) in enumerate(self.layers):
            projected = self.table[token] if index == 0 else x @ kernel + bias
            if self.arch == "simplernn":
                h = np.tanh(projected + state[index] @ recurrent)
                new_state.append(h)
            elif self.arch == "lstm":
                h, c = state[index]
                z = projected + h @ recurrent
                c = _sigmoid(z[u : 2 * u]) * c + _sigmoid(z[:u]) * np.tanh(z[2 * u : 3 * u])
                h = _sigmoid(z[3 * u :]) * np.tanh(c)
                new_state.append((h, c))
            else:
                h = state[index]
                inner = h @ recurrent + recurrent_bias
                update = _sigmoid(projected[:u] + inner[:u])
                reset = _sigmoid(projected[u : 2 * u] + inner[u : 2 * u])
                candidate = np.tanh(projected[2 * u :] + reset * inner[2 * u :])
                h = update * h + (1.0 - update) * candidate
                new_state.append(h)
            x = h
        return x @ self.output_kernel + self.output_bias, new_state

    def generate(self, prompt: list[int], max_tokens: int) -> list[int]:
        """Read `prompt`, then `max_tokens` greedy tokens."""
        state = self.initial_state()
        logits = None
        for token in prompt:
            logits, state = self.step(token, state)
        out = []
        for _ in range(max_tokens):
            token = int(np.argmax(logits))
            out.append(token)
            logits, state = self.step(token, state)
        return out


class BiLSTMFloor:
    """A BiLSTM re-encoding its window per token in NumPy: both directions over every window position.

    There is no state to carry (the backward direction starts from the newest token), so this floor is
    O(window) steps per token, like the engine; it shows how much of the engine's time is the arithmetic.
    """

    def __init__(self, model: Any, seq_len: int) -> None:
        self.seq_len = seq_len
        (self.embeddings,) = _weights(model, "embedding")
        self.layers: list[list[np.ndarray]] = []
        index = 0
        while True:
            try:
                self.layers.append(_weights(model, f"rnn_{index}"))
            except ValueError:
                break
            index += 1
        self.output_kernel, self.output_bias = _weights(model, "logits")
        # First-layer input projections of every token, per direction: a lookup per window position.
        forward_kernel, _, forward_bias, backward_kernel, _, backward_bias = self.layers[0]
        self.tables = (
            self.embeddings @ forward_kernel + forward_bias,
            self.embeddings @ backward_kernel + backward_bias,
        )

    @staticmethod
    def _run(projected: np.ndarray, recurrent: np.ndarray) -> np.ndarray:
        """LSTM outputs over `projected` (time, 4u) in order, from a zero state."""
        u = recurrent.shape[0]
        h = np.zeros(u, dtype=np.float32)
        c = np.zeros(u, dtype=np.float32)
        outputs = np.empty((projected.shape[0], u), dtype=np.float32)
        for t in range(projected.shape[0]):
            z = projected[t] + h @ recurrent
            c = _sigmoid(z[u : 2 * u]) * c + _sigmoid(z[:u]) * np.tanh(z[2 * u : 3 * u])
            h = _sigmoid(z[3 * u :]) * np.tanh(c)
            outputs[t] = h
        return outputs

    def logits(self, window: np.ndarray) -> np.ndarray:
        """Logits of the token after `window` (seq_len,) token ids."""
        x = None
        for index, weights in enumerate(self.layers):
            (
                forward_kernel,
                forward_recurrent,
                forward_bias,
                backward_kernel,
                backward_recurrent,
                backward_bias,
            ) = weights
            if index == 0:
                forward_in, backward_in = self.tables[0][window], self.tables[1][window]
            else:
                forward_in, backward_in = (
                    x @ forward_kernel + forward_bias,
                    x @ backward_kernel + backward_bias,
                )
            forward = self._run(forward_in, forward_recurrent)
            backward = self._run(backward_in[::-1], backward_recurrent)
            if index == len(self.layers) - 1:
                # Keras' Bidirectional without sequences: each direction's output after its whole pass.
                x = np.concatenate([forward[-1], backward[-1]])
            else:
                x = np.concatenate([forward, backward[::-1]], axis=1)
        return x @ self.output_kernel + self.output_bias

    def generate(self, prompt: list[int], max_tokens: int) -> list[int]:
        """`max_tokens` greedy tokens after `prompt`, re-encoding the left-padded window each time."""
        tokens = [0] * self.seq_len + list(prompt)
        out = []
        for _ in range(max_tokens):
            token = int(np.argmax(self.logits(np.asarray(tokens[-self.seq_len :]))))
            out.append(token)
            tokens.append(token)
        return out
