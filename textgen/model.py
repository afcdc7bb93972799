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
            # return_state lets `carried_state_model` reuse the layer with state in and out.
            layer = _RECURRENT_LAYERS[spec.arch](
                spec.units, return_sequences=True, return_state=True, name=f"rnn_{index}"
            )
            x = layer(x)[0]
        else:
            layer = keras.layers.Bidirectional(
                keras.layers.LSTM(spec.units, return_sequences=not last), name=f"rnn_{index}"
            )
            x = layer(x)
        if spec.dropout:
            x = keras.layers.Dropout(spec.dropout, name=f"dropout_{index}")(x)
    logits = keras.layers.Dense(vocab_size, dtype="float32", name="logits")(x)
    return keras.Model(tokens, logits, name=f"{spec.arch}_lm")


def state_sizes(spec: ModelSpec) -> list[int]:
    """Sizes of the recurrent state tensors of a causal model, in layer order (LSTM: h then c)."""
    per_layer = 2 if spec.arch == "lstm" else 1
    return [spec.units] * (per_layer * spec.layers)


def carried_state_model(model: keras.Model, spec: ModelSpec) -> keras.Model:
    """The same causal model (shared layers and weights) with the recurrent state as input and output.

    Maps `[tokens, *states]` to `[logits, *final_states]`, so training can carry the state from one
    window to the next window of the same text (truncated backpropagation through time).
    """
    if not spec.causal:
        raise ValueError("only causal models carry state; a BiLSTM re-reads its window")
    tokens = keras.Input(shape=(spec.seq_len,), dtype="int32", name="tokens")
    states_in = [keras.Input(shape=(size,), name=f"state_{i}") for i, size in enumerate(state_sizes(spec))]
    x = model.get_layer("embedding")(tokens)
    states_out = []
    per_layer = 2 if spec.arch == "lstm" else 1
    for index in range(spec.layers):
        initial = states_in[index * per_layer : (index + 1) * per_layer]
        x, *final = model.get_layer(f"rnn_{index}")(x, initial_state=initial)
        states_out.extend(final)
        if spec.dropout:
            x = model.get_layer(f"dropout_{index}")(x)
    logits = model.get_layer("logits")(x)
    return keras.Model([tokens, *states_in], [logits, *states_out], name=f"{spec.arch}_lm_carried_state")
