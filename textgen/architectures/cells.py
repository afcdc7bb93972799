"""Recurrent cells in NumPy, Keras' equations: one step of a SimpleRNN, LSTM or GRU cell for a batch.

Each cell takes its input already projected (`x @ kernel + bias`), so a caller can project a whole
window in one product, or fold the first layer's projection into the embedding table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from textgen._gru import gru_step_half, gru_update
from textgen.architectures.family import Weights
from textgen.half_weights import HalfMatrix


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Keras' sigmoid."""
    # tanh form: no overflow warnings for large negative inputs, and cheaper than exp + divide.
    return 0.5 * np.tanh(0.5 * x) + 0.5


@dataclass
class SimpleRNNCell:
    """A SimpleRNN cell; its state is `h` `(batch, units)`."""

    # Blocks of `units` columns in the kernels: one per gate.
    gates: ClassVar[int] = 1
    # State tensors per layer.
    state_parts: ClassVar[int] = 1

    units: int
    kernel: np.ndarray  # (input, gates * units)
    recurrent: np.ndarray  # (units, gates * units)
    bias: np.ndarray  # (gates * units,) input bias

    @classmethod
    def from_weights(cls, weights: Weights, prefix: str, units: int) -> SimpleRNNCell:
        """The cell whose arrays are `{prefix}/kernel`, `{prefix}/recurrent_kernel`, `{prefix}/bias`."""
        return cls(
            units,
            weights[f"{prefix}/kernel"],
            weights[f"{prefix}/recurrent_kernel"],
            weights[f"{prefix}/bias"],
        )

    @classmethod
    def bias_shape(cls, units: int) -> tuple[int, ...]:
        return (cls.gates * units,)

    def zero_state(self, batch: int) -> Any:
        return np.zeros((batch, self.units), dtype=np.float32)

    def step(self, projected: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """The output and new state after one input, given `x @ kernel + bias` as `projected`."""
        h = np.tanh(projected + state @ self.recurrent)
        return h, h


@dataclass
class LSTMCell(SimpleRNNCell):
    """An LSTM cell (gates i, f, g, o); its state is the pair `(h, c)`."""

    gates: ClassVar[int] = 4
    state_parts: ClassVar[int] = 2

    def zero_state(self, batch: int) -> Any:
        zeros = np.zeros((batch, self.units), dtype=np.float32)
        return zeros, zeros.copy()

    def step(self, projected: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        units = self.units
        h_prev, c_prev = state
        z = projected + h_prev @ self.recurrent
        i = sigmoid(z[:, :units])
        f = sigmoid(z[:, units : 2 * units])
        g = np.tanh(z[:, 2 * units : 3 * units])
        o = sigmoid(z[:, 3 * units :])
        c = f * c_prev + i * g
        h = o * np.tanh(c)
        return h, (h, c)


@dataclass
class GRUCell(SimpleRNNCell):
    """A GRU cell with the reset gate applied after the recurrent product (Keras' default,
    `reset_after=True`); its state is `h`."""

    gates: ClassVar[int] = 3

    # (gates * units,) float32, kept apart from the input bias as Keras does; `from_weights` reads it.
    recurrent_bias: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))

    @classmethod
    def from_weights(cls, weights: Weights, prefix: str, units: int) -> GRUCell:
        # Keras keeps the GRU's input and recurrent biases apart, as two rows of one array.
        bias = weights[f"{prefix}/bias"]
        kernel, recurrent = weights[f"{prefix}/kernel"], weights[f"{prefix}/recurrent_kernel"]
        # The compiled step reads the state and both products as float32, as the weights are stored
        # (a float16 recurrent kernel kept for serving multiplies into float32: `textgen.half_weights`).
        recurrent_bias = np.ascontiguousarray(bias[1], dtype=np.float32)
        if not isinstance(recurrent, HalfMatrix):
            recurrent = np.asarray(recurrent, dtype=np.float32)
        return cls(units, kernel, recurrent, bias[0], recurrent_bias)

    @classmethod
    def bias_shape(cls, units: int) -> tuple[int, ...]:
        return (2, cls.gates * units)

    def step(self, projected: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        # `z = sigmoid(p_z + inner_z)`, `r = sigmoid(p_r + inner_r)`, `candidate = tanh(p_c + r * inner_c)`,
        # `h = z * h_prev + (1 - z) * candidate`: the product here, the rest in one compiled loop
        # (`textgen/_gru.c`): at one row per step, a dozen NumPy calls cost more than their arithmetic.
        h_prev = np.ascontiguousarray(state, dtype=np.float32)
        projected = np.ascontiguousarray(projected, dtype=np.float32)
        h = np.empty(h_prev.shape, dtype=np.float32)
        if isinstance(self.recurrent, HalfMatrix):
            # The product too, in the same call (`textgen.half_weights`).
            gru_step_half(projected, h_prev, self.recurrent, self.recurrent_bias, h, len(h_prev), self.units)
        else:
            gru_update(
                projected, h_prev @ self.recurrent, self.recurrent_bias, h_prev, h, len(h_prev), self.units
            )
        return h, h


def cell_shapes(
    cell: type[SimpleRNNCell], prefix: str, inputs: int, units: int
) -> dict[str, tuple[int, ...]]:
    """The arrays of one cell of `units` units reading `inputs` features, named under `prefix`."""
    width = cell.gates * units
    return {
        f"{prefix}/kernel": (inputs, width),
        f"{prefix}/recurrent_kernel": (units, width),
        f"{prefix}/bias": cell.bias_shape(units),
    }


def run_sequence(cell: SimpleRNNCell, inputs: np.ndarray) -> np.ndarray:
    """Every output `(batch, time, units)` of `cell` over `inputs` `(batch, time, features)`, from the
    zero state."""
    batch, length, _ = inputs.shape
    # One product projects every position's input; the loop is left with the recurrent products.
    projected = inputs @ cell.kernel + cell.bias
    state = cell.zero_state(batch)
    outputs = np.empty((batch, length, cell.units), dtype=np.float32)
    for position in range(length):
        outputs[:, position], state = cell.step(projected[:, position], state)
    return outputs
