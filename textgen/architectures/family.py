"""What the rest of textgen asks of an architecture: the `ArchitectureFamily` and `Stepper` protocols.

A family (`textgen.architectures.recurrent`, `textgen.architectures.bidirectional`) holds everything one
kind of model needs: its Keras builder, the layout of its weights as named NumPy arrays
(`textgen.weights`) and its NumPy stepper (`textgen.engine`). Training, evaluation and generation ask the
questions below and never which architecture they hold.

Nothing here imports TensorFlow: the bots decode with the steppers alone. A family imports Keras inside
its Keras methods only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import keras

    from textgen.spec import ModelSpec

Weights = dict[str, np.ndarray]


@dataclass(frozen=True)
class KerasLayer:
    """A Keras layer that holds weights, in model order.

    Args:
        name: the layer's name in the model (`embedding`, `rnn_0`, `logits`...).
        h5_groups: where a Keras 3 `.weights.h5` file keeps its variables, below the layer's group
            (`vars`, `cell/vars`, one group per direction of a bidirectional layer...), in
            `get_weights()` order.
    """

    name: str
    h5_groups: tuple[str, ...]


# Every family reads tokens through an embedding and predicts them with a dense layer of logits.
EMBEDDING = KerasLayer("embedding", ("vars",))
LOGITS = KerasLayer("logits", ("vars",))


def framed_shapes(
    spec: ModelSpec, vocab_size: int, body: dict[str, tuple[int, ...]], outputs: int
) -> dict[str, tuple[int, ...]]:
    """The shapes of a whole model: the embedding, the family's `body` arrays, the logits over `outputs`
    features; in Keras' `get_weights()` order."""
    return {
        "embedding": (vocab_size, spec.embedding),
        **body,
        "logits/kernel": (outputs, vocab_size),
        "logits/bias": (vocab_size,),
    }


class Stepper(Protocol):
    """Decodes a batch of token streams with NumPy, one token per step.

    The state is opaque to callers: they only start it, step it, and keep some of its rows.
    """

    vocab_size: int
    # True: a fixed-size state carries everything read so far, from any length of text (segments of a
    # text can start from the zero state, a conversation can be read before a reply).
    carries_state: bool
    # Tokens a prediction sees: None when the state carries all of them, else the window re-read per step.
    context_window: int | None

    @property
    def nbytes(self) -> int:
        """Bytes of arrays the stepper made itself (the weights are counted where they are held)."""
        ...

    def initial_state(self, batch: int) -> Any:
        """The state of `batch` rows that have read nothing."""
        ...

    def step(self, tokens: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """Logits `(batch, vocab)` for the next token after `tokens` `(batch,)`, and the new state."""
        ...

    def read(self, tokens: np.ndarray, state: Any) -> Any:
        """The state after `tokens`, without the logits (reading a prompt needs none)."""
        ...

    def select(self, state: Any, rows: np.ndarray) -> Any:
        """The state of the batch rows `rows` (to drop finished sequences from a batch)."""
        ...

    def concat(self, first: Any, second: Any) -> Any:
        """Two batches' states joined along the batch axis (to add new requests to a running batch)."""
        ...

    def window_logits(self, windows: np.ndarray) -> np.ndarray:
        """Logits `(batch, vocab)` of the token after each window `(batch, length)`, read from nothing."""
        ...


class ArchitectureFamily(Protocol):
    """One kind of model: how it is built, how its weights are laid out, how it decodes."""

    # The `ModelSpec.arch` this family answers to.
    arch: str
    # True: trained to predict the next token at every position of a window (labels are the window
    # shifted by one); False: to predict the one token after a window.
    causal: bool
    # True: training may carry the state from each window into the next window of the same text, and
    # the stepper carries state (`Stepper.carries_state`).
    carries_state: bool

    def weight_shapes(self, spec: ModelSpec, vocab_size: int) -> dict[str, tuple[int, ...]]:
        """Every named array of a model of `spec` and its shape, in Keras' `get_weights()` order."""
        ...

    def keras_layers(self, spec: ModelSpec) -> list[KerasLayer]:
        """The Keras layers that hold the arrays of `weight_shapes`, in the same order."""
        ...

    def make_stepper(self, weights: Weights, spec: ModelSpec) -> Stepper:
        """The NumPy stepper over `weights` (checked against `weight_shapes` by the caller)."""
        ...

    def build_keras(self, spec: ModelSpec, vocab_size: int) -> keras.Model:
        """The Keras model of `spec` (imports TensorFlow)."""
        ...

    def state_sizes(self, spec: ModelSpec) -> list[int]:
        """Sizes of the state tensors carried between training windows, in layer order (empty when the
        family carries none)."""
        ...

    def carried_state_model(self, model: keras.Model, spec: ModelSpec) -> keras.Model:
        """`model` (shared layers and weights) with the carried state as input and output:
        `[tokens, *states]` to `[logits, *final_states]`. Only for families that carry state."""
        ...
