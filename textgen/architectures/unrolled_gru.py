"""Keras' GRU layer, computed as straight-line graph with the input projection taken out of the time loop.

A training step of the default model spends most of its time in the GRU's loop over a window's
positions. Keras runs that loop as a graph `while` loop and projects each position's input inside it:
at batch 32 on a CPU the per-position kernels are small (32 rows by 256 units), so the loop's
bookkeeping and the dispatch of many small products cost about as much as the arithmetic. This layer
computes the same GRU (Keras' `reset_after` form, the same operations in the same order on each
position) with the inputs of every position projected in one product, and the positions unrolled, so
TensorFlow schedules one graph without a loop. Its weights are Keras' GRU weights: a bundle trained with
it loads in a plain `keras.layers.GRU`, and the other way round.

A training run too short to repay building the larger graph turns unrolling off (`set_unrolling`).
Where it cannot compute the same thing (a mask, dropout inside the cell, a window length unknown when
the graph is built or longer than `MAX_UNROLLED_POSITIONS`) it runs Keras' own loop, and on a GPU or a TPU
Keras' own path (cuDNN's fused kernel, XLA).

Imports Keras: families import this module inside their Keras methods only.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops

# Longest window the layer unrolls. Graph building grows with the positions (about 1.2 CPU-s more than
# Keras' loop for 64, once per training run); beyond this the loop's fixed cost is a small share anyway.
MAX_UNROLLED_POSITIONS = 128
# Fewest optimizer steps a training run must plan for its GRU layers to unroll. The larger graph costs
# about as much to build as 100 steps save (the default model: 1.2 CPU-s against 12 ms a step at batch
# 32; a 16-unit model: 0.12 CPU-s against about 1 ms), so shorter runs keep Keras' loop.
MIN_STEPS_TO_UNROLL = 200


def set_unrolling(model: keras.Model, enabled: bool) -> None:
    """Let the GRU layers of `model` unroll their windows (the default), or keep them on Keras' loop."""
    for layer in model.layers:
        if isinstance(layer, GRU):
            layer.unroll_positions = enabled


@keras.saving.register_keras_serializable(package="chatsmith")
class GRU(keras.layers.GRU):
    """`keras.layers.GRU` with the input projection hoisted and the positions unrolled (same results).

    Named `GRU` on purpose: Keras files a layer's weights under its class name, so this name keeps the
    bundles' weight files those of a plain `keras.layers.GRU`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unroll_positions = True

    def _unrollable(self, sequences: Any, mask: Any) -> bool:
        cell = self.cell
        positions = sequences.shape[1]
        return (
            self.unroll_positions
            # On a GPU Keras' own path runs cuDNN's fused kernel; on a TPU, XLA compiles the loop.
            and not tf.config.list_logical_devices("GPU")
            and not tf.config.list_logical_devices("TPU")
            and mask is None
            and not self.go_backwards
            and cell.reset_after
            and not cell.dropout
            and not cell.recurrent_dropout
            and positions is not None
            and 0 < positions <= MAX_UNROLLED_POSITIONS
        )

    def inner_loop(self, sequences: Any, initial_state: Any, mask: Any, training: bool = False) -> Any:
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if not self._unrollable(sequences, mask):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        cell = self.cell
        h = initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state
        # Every position's input projection in one product: the loop below only multiplies the state.
        projected = ops.matmul(sequences, cell.kernel)
        recurrent_bias = None
        if cell.use_bias:
            input_bias, recurrent_bias = (
                ops.squeeze(part, axis=0) for part in ops.split(cell.bias, 2, axis=0)
            )
            projected = ops.add(projected, input_bias)
        outputs = []
        # One unstack, not a slice per position: each slice's gradient would be a whole window of zeros.
        for position_input in ops.unstack(projected, axis=1):
            x_z, x_r, x_h = ops.split(position_input, 3, axis=-1)
            inner = ops.matmul(h, cell.recurrent_kernel)
            if recurrent_bias is not None:
                inner += recurrent_bias
            # Split, not sliced: a slice's gradient is a zero array the size of the whole, per slice.
            r_z, r_r, r_h = ops.split(inner, 3, axis=-1)
            z = cell.recurrent_activation(x_z + r_z)
            r = cell.recurrent_activation(x_r + r_r)
            hh = cell.activation(x_h + r * r_h)
            h = z * h + (1 - z) * hh
            outputs.append(h)
        return h, ops.stack(outputs, axis=1), [h]
