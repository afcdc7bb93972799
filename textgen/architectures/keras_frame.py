"""The Keras frame every family's model shares: token ids, an embedding, the family's stacked layers
(each followed by dropout while training), and logits over the vocabulary.

Imports TensorFlow: families import this module inside their Keras methods only.

Layer names are fixed (`embedding`, `rnn_0`..., `logits`) so that weights are found by name. The logits
layer always computes in float32: under mixed precision a bfloat16 softmax over the vocabulary loses the
small probabilities that nats-per-character is made of.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import keras

if TYPE_CHECKING:
    from textgen.spec import ModelSpec


def language_model(
    spec: ModelSpec,
    vocab_size: int,
    length: int | None,
    layer: Callable[[int, keras.KerasTensor], keras.KerasTensor],
) -> keras.Model:
    """A model from `(batch, length)` token ids (`length` None: any) to the logits of `spec.layers` layers,
    `layer(index, x)` applying layer `index` (named `rnn_{index}`) to `x`."""
    tokens = keras.Input(shape=(length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, spec.embedding, name="embedding")(tokens)
    for index in range(spec.layers):
        x = layer(index, x)
        if spec.dropout:
            x = keras.layers.Dropout(spec.dropout, name=f"dropout_{index}")(x)
    logits = keras.layers.Dense(vocab_size, dtype="float32", name="logits")(x)
    return keras.Model(tokens, logits, name=f"{spec.arch}_lm")
