"""Keras 3 recurrent language models built from a `ModelSpec`.

Layer names are fixed (`embedding`, `rnn_0`..., `logits`) so the generation engine can read the
weights by name. The logits layer always computes in float32: under mixed precision a bfloat16
softmax over the vocabulary loses the small probabilities that nats-per-character is made of.
"""

from __future__ import annotations

import keras

from textgen.spec import ModelSpec

_RECURRENT_LAYERS = {
    "simplernn": keras.layers.SimpleRNN,
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
}


def build_model(spec: ModelSpec, vocab_size: int) -> keras.Model:
    """A language model for `spec` over `vocab_size` tokens.

    Causal models map `(batch, time)` token ids to `(batch, time, vocab)` logits, one prediction per
    position. The BiLSTM maps a `(batch, seq_len)` window to `(batch, vocab)` logits for the next token.
    """
    length = None if spec.causal else spec.seq_len
    tokens = keras.Input(shape=(length,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, spec.embedding, name="embedding")(tokens)
    for index in range(spec.layers):
        last = index == spec.layers - 1
        if spec.causal:
            layer = _RECURRENT_LAYERS[spec.arch](spec.units, return_sequences=True, name=f"rnn_{index}")
        else:
            layer = keras.layers.Bidirectional(
                keras.layers.LSTM(spec.units, return_sequences=not last), name=f"rnn_{index}"
            )
        x = layer(x)
        if spec.dropout:
            x = keras.layers.Dropout(spec.dropout, name=f"dropout_{index}")(x)
    logits = keras.layers.Dense(vocab_size, dtype="float32", name="logits")(x)
    return keras.Model(tokens, logits, name=f"{spec.arch}_lm")
