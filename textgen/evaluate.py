"""Held-out evaluation in nats per character, comparable across byte, character and word tokenizers.

Nats per character = total negative log-likelihood (natural log) of the held-out messages, framing
tokens included, divided by their number of characters. Causal models read the held-out stream with
continuous state: the stream is cut into a few long contiguous segments that run side by side as one
batch, so only the first token of each segment is predicted without context. A BiLSTM predicts each
token from the `seq_len` tokens before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from textgen.bundle import Bundle
from textgen.engine import CausalStepper, WindowStepper, log_softmax, make_stepper
from textgen.errors import TextgenError
from textgen.tokenizers import PAD_ID


@dataclass(frozen=True)
class Evaluation:
    nats_per_char: float
    nats_per_token: float
    chars: int
    tokens: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "nats_per_char": self.nats_per_char,
            "nats_per_token": self.nats_per_token,
            "chars": self.chars,
            "tokens": self.tokens,
        }


def evaluate_messages(bundle: Bundle, messages: list[str], segments: int = 64) -> Evaluation:
    """Nats per character of `bundle`'s model on `messages`."""
    chars = sum(len(message) for message in messages)
    if chars == 0:
        raise TextgenError("nothing to evaluate: the held-out text is empty; give a corpus with text in it")
    tokens = bundle.tokenizer.encode_messages(messages)
    stepper = make_stepper(bundle.model, bundle.spec)
    if isinstance(stepper, CausalStepper):
        total = _causal_nll(stepper, tokens, segments)
    else:
        total = _window_nll(stepper, tokens)
    predicted = len(tokens) - 1
    return Evaluation(total / chars, total / max(1, predicted), chars, int(len(tokens)))


def _causal_nll(stepper: CausalStepper, tokens: np.ndarray, segments: int) -> float:
    predicted = len(tokens) - 1
    segments = max(1, min(segments, predicted // 32))
    length = -(-predicted // segments)
    # Segment i reads tokens[i*length : (i+1)*length] and predicts the token after each; together the
    # segments predict every token but the first. The stream is padded so all segments are equally long.
    padded = np.concatenate(
        [tokens, np.full(segments * length + 1 - len(tokens), PAD_ID, dtype=tokens.dtype)]
    )
    starts = np.arange(segments) * length
    state = stepper.initial_state(segments)
    total = 0.0
    for offset in range(length):
        positions = starts + offset
        logits, state = stepper.step(padded[positions], state)
        valid = positions < predicted
        logp = log_softmax(logits[valid].astype(np.float64))
        total -= float(logp[np.arange(int(valid.sum())), padded[positions[valid] + 1]].sum())
    return total


def _window_nll(stepper: WindowStepper, tokens: np.ndarray, batch: int = 512) -> float:
    seq_len = stepper.seq_len
    padded = np.concatenate([np.full(seq_len - 1, PAD_ID, dtype=np.int32), tokens.astype(np.int32)])
    total = 0.0
    targets = np.arange(1, len(tokens))
    for start in range(0, len(targets), batch):
        chunk = targets[start : start + batch]
        # The window ending at token t-1 (left-padded at the start of the stream) predicts token t.
        windows = padded[chunk[:, None] + np.arange(seq_len)[None, :] - 1]
        logits = stepper._forward(windows).numpy()
        logp = log_softmax(logits.astype(np.float64))
        total -= float(logp[np.arange(len(chunk)), tokens[chunk]].sum())
    return total
