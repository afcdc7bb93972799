"""Keras language models built from a `ModelSpec`, by its architecture family (`textgen.architectures`).

Layer names are fixed (`embedding`, `rnn_0`..., `logits`) so that weights are found by name
(`textgen.weights`). Imports TensorFlow.
"""

from __future__ import annotations

import keras

from textgen.spec import ModelSpec


def build_model(spec: ModelSpec, vocab_size: int) -> keras.Model:
    """A language model for `spec` over `vocab_size` tokens.

    Causal models map `(batch, time)` token ids to `(batch, time, vocab)` logits, one prediction per
    position. The BiLSTM maps a `(batch, seq_len)` window to `(batch, vocab)` logits for the next token.
    """
    return spec.family.build_keras(spec, vocab_size)
