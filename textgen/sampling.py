"""Choosing the next token from logits: temperature, top-k, top-p and a repetition penalty."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from textgen.errors import TextgenError
from textgen.tokenizers import BOS_ID, EOS_ID, PAD_ID, UNK_ID

# Tokens a sample never contains: they frame or pad text, they are not text.
_NEVER_SAMPLED = (PAD_ID, BOS_ID, UNK_ID)


@dataclass(frozen=True)
class SamplingParams:
    """How one request samples.

    Args:
        max_tokens: tokens to generate at most.
        temperature: 0 picks the most likely token (greedy); higher is more varied.
        top_k: sample among the k most likely tokens (None or >= vocabulary: all).
        top_p: sample among the most likely tokens whose probabilities add up to p (1.0: all).
        repetition_penalty: >1 makes tokens already in the text less likely (1.0: off).
        seed: the same seed, prompt and model give the same text.
        stop_at_end: stop at the end-of-message token (False: never sample it).
    """

    max_tokens: int = 200
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop_at_end: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise TextgenError(f"max tokens must be a positive whole number, received {self.max_tokens!r}")
        if not self.temperature >= 0:
            raise TextgenError(
                f"temperature must be 0 or more, received {self.temperature!r}; use 0 for greedy"
            )
        if self.top_k is not None and self.top_k < 1:
            raise TextgenError(f"top-k must be at least 1, received {self.top_k!r}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise TextgenError(f"top-p must be in (0, 1], received {self.top_p!r}")
        if not self.repetition_penalty >= 1:
            raise TextgenError(f"repetition penalty must be 1 or more, received {self.repetition_penalty!r}")


def sample_token(
    logits: np.ndarray, params: SamplingParams, rng: np.random.Generator, seen: np.ndarray | None = None
) -> int:
    """One token id from `logits` (vocab,) under `params`; `seen` marks tokens already in the text."""
    logits = logits.astype(np.float64, copy=True)
    logits[list(_NEVER_SAMPLED)] = -np.inf
    if not params.stop_at_end:
        logits[EOS_ID] = -np.inf
    if params.repetition_penalty != 1.0 and seen is not None and seen.any():
        # CTRL's penalty: shrink the logit of every token already present, whatever its sign.
        penalised = logits[seen]
        logits[seen] = np.where(
            penalised > 0, penalised / params.repetition_penalty, penalised * params.repetition_penalty
        )
    if params.temperature == 0:
        return int(np.argmax(logits))
    logits /= params.temperature
    if params.top_k is not None and params.top_k < logits.size:
        cutoff = np.partition(logits, -params.top_k)[-params.top_k]
        logits[logits < cutoff] = -np.inf
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    if params.top_p is not None and params.top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        # Keep the smallest prefix reaching p; the most likely token always stays.
        keep = int(np.searchsorted(cumulative, params.top_p) + 1)
        mask = np.zeros_like(probs, dtype=bool)
        mask[order[:keep]] = True
        probs = np.where(mask, probs, 0.0)
        probs /= probs.sum()
    return int(rng.choice(probs.size, p=probs))
