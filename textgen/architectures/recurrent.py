"""Causal recurrent language models: stacked SimpleRNN, LSTM or GRU layers that predict every next token.

Weights (`textgen.weights`), in Keras' order:

    embedding                                     (vocab, embedding)
    rnn_{i}/kernel, rnn_{i}/recurrent_kernel, rnn_{i}/bias
    logits/kernel, logits/bias

The stepper decodes one token per step with the state carried between steps: O(1) work per token, and
a batch of requests costs one matrix-matrix product per layer. Calling a Keras model once per token
would re-run the whole window and pay the framework's dispatch cost every time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from textgen.architectures.cells import GRUCell, LSTMCell, SimpleRNNCell, cell_shapes
from textgen.architectures.family import EMBEDDING, LOGITS, KerasLayer, Weights, framed_shapes

if TYPE_CHECKING:
    import keras

    from textgen.spec import ModelSpec

# Largest embedding table (tokens) for which layer 0's input projection is precomputed per token: byte
# and character vocabularies (a few hundred entries) cost well under a millisecond; a word vocabulary of
# tens of thousands would cost a bundle load tens of milliseconds and megabytes, to save one small
# product per step.
_FUSED_TABLE_MAX_TOKENS = 4096


class CausalStepper:
    """Runs a causal recurrent model (stacked) one token at a time for a batch.

    The state is a list with one entry per layer: `h` arrays of shape (batch, units), or `(h, c)`
    pairs for LSTM layers.
    """

    carries_state: bool = True
    context_window: int | None = None

    def __init__(self, weights: Weights, spec: ModelSpec, cell: type[SimpleRNNCell]) -> None:
        self.spec = spec
        self.embeddings = weights["embedding"]
        self.layers = [cell.from_weights(weights, f"rnn_{i}", spec.units) for i in range(spec.layers)]
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
        return [layer.zero_state(batch) for layer in self.layers]

    def step(self, tokens: np.ndarray, state: list[Any]) -> tuple[np.ndarray, list[Any]]:
        """Logits `(batch, vocab)` for the next token after `tokens` `(batch,)`, and the new state."""
        x, new_state = self._advance(tokens, state)
        logits = x @ self.output_kernel
        logits += self.output_bias
        return logits, new_state

    def read(self, tokens: np.ndarray, state: list[Any]) -> list[Any]:
        """The state after `tokens`, without computing the logits."""
        return self._advance(tokens, state)[1]

    def _advance(self, tokens: np.ndarray, state: list[Any]) -> tuple[np.ndarray, list[Any]]:
        """The last layer's output after `tokens`, and the new state."""
        new_state = []
        if self.input_table is not None:
            x = self.input_table[tokens]
        else:
            first = self.layers[0]
            x = self.embeddings[tokens] @ first.kernel + first.bias
        for index, layer in enumerate(self.layers):
            projected = x if index == 0 else x @ layer.kernel + layer.bias
            x, layer_state = layer.step(projected, state[index])
            new_state.append(layer_state)
        return x, new_state

    def window_logits(self, windows: np.ndarray) -> np.ndarray:
        """Logits of the token after each window `(batch, length)`, read from the zero state."""
        state = self.initial_state(windows.shape[0])
        for position in range(windows.shape[1] - 1):
            state = self.read(windows[:, position], state)
        return self.step(windows[:, -1], state)[0]

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


class RecurrentFamily:
    """Causal stacked recurrent layers of one cell type; the state carries from window to window.

    Args:
        arch: the `ModelSpec.arch` it answers to.
        cell: the NumPy cell (`textgen.architectures.cells`).
        keras_layer: the name of the matching Keras layer class (`keras.layers.<name>`).
        keras_class: where a layer computing the same as that Keras layer trains faster, a function that
            imports and returns its class (its weights are the Keras layer's).
    """

    causal: bool = True
    carries_state: bool = True

    def __init__(
        self,
        arch: str,
        cell: type[SimpleRNNCell],
        keras_layer: str,
        keras_class: Callable[[], type[keras.layers.Layer]] | None = None,
    ) -> None:
        self.arch = arch
        self.cell = cell
        self.keras_layer = keras_layer
        self.keras_class = keras_class

    def weight_shapes(self, spec: ModelSpec, vocab_size: int) -> dict[str, tuple[int, ...]]:
        body: dict[str, tuple[int, ...]] = {}
        for index in range(spec.layers):
            inputs = spec.embedding if index == 0 else spec.units
            body.update(cell_shapes(self.cell, f"rnn_{index}", inputs, spec.units))
        return framed_shapes(spec, vocab_size, body, spec.units)

    def keras_layers(self, spec: ModelSpec) -> list[KerasLayer]:
        layers = [KerasLayer(f"rnn_{index}", ("cell/vars",)) for index in range(spec.layers)]
        return [EMBEDDING, *layers, LOGITS]

    def make_stepper(self, weights: Weights, spec: ModelSpec) -> CausalStepper:
        return CausalStepper(weights, spec, self.cell)

    def build_keras(self, spec: ModelSpec, vocab_size: int) -> keras.Model:
        """Maps `(batch, time)` token ids to `(batch, time, vocab)` logits, one prediction per position."""
        import keras

        from textgen.architectures.keras_frame import language_model

        layer_class = self.keras_class() if self.keras_class else getattr(keras.layers, self.keras_layer)

        def recurrent_layer(index: int, x: keras.KerasTensor) -> keras.KerasTensor:
            # return_state lets `carried_state_model` reuse the layer with state in and out.
            layer = layer_class(spec.units, return_sequences=True, return_state=True, name=f"rnn_{index}")
            return layer(x)[0]

        return language_model(spec, vocab_size, None, recurrent_layer)

    def state_sizes(self, spec: ModelSpec) -> list[int]:
        """Sizes of the recurrent state tensors, in layer order (LSTM: h then c)."""
        return [spec.units] * (self.cell.state_parts * spec.layers)

    def carried_state_model(self, model: keras.Model, spec: ModelSpec) -> keras.Model:
        """Maps `[tokens, *states]` to `[logits, *final_states]`, so training can carry the state from one
        window to the next window of the same text (truncated backpropagation through time)."""
        import keras

        tokens = keras.Input(shape=(spec.seq_len,), dtype="int32", name="tokens")
        sizes = self.state_sizes(spec)
        states_in = [keras.Input(shape=(size,), name=f"state_{i}") for i, size in enumerate(sizes)]
        x = model.get_layer("embedding")(tokens)
        states_out = []
        per_layer = self.cell.state_parts
        for index in range(spec.layers):
            initial = states_in[index * per_layer : (index + 1) * per_layer]
            x, *final = model.get_layer(f"rnn_{index}")(x, initial_state=initial)
            states_out.extend(final)
            if spec.dropout:
                x = model.get_layer(f"dropout_{index}")(x)
        logits = model.get_layer("logits")(x)
        return keras.Model([tokens, *states_in], [logits, *states_out], name=f"{spec.arch}_lm_carried_state")


def _unrolled_gru() -> type[keras.layers.Layer]:
    from textgen.architectures import unrolled_gru

    return unrolled_gru.GRU


SIMPLE_RNN = RecurrentFamily("simplernn", SimpleRNNCell, "SimpleRNN")
LSTM = RecurrentFamily("lstm", LSTMCell, "LSTM")
GRU = RecurrentFamily("gru", GRUCell, "GRU", keras_class=_unrolled_gru)
