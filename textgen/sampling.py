"""Choosing the next token from logits: temperature, top-k, top-p, typical and min-p, and a repetition penalty.

Typical sampling and min-p are truncations looked up by name (`TRUNCATIONS`): each one takes a batch of
temperature-scaled logits and one setting per row, and returns the logits with the dropped tokens at -inf.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from textgen.errors import TextgenError
from textgen.tokenizers import BOS_ID, EOS_ID, PAD_ID, UNK_ID

# Tokens a sample never contains: they frame or pad text, they are not text.
_NEVER_SAMPLED = (PAD_ID, BOS_ID, UNK_ID)
# Below this temperature, dividing the logits by it can overflow to infinities and NaN; the
# distribution is then a point mass on the most likely token anyway, so such rows decode greedily.
GREEDY_BELOW_TEMPERATURE = 1e-6


@dataclass(frozen=True)
class SamplingParams:
    """How one request samples.

    Args:
        max_tokens: tokens to generate, give or take the end of a character or word: a byte-level model
            may add up to 3 bytes to finish the character it is in, and a model with a lexicon
            (`textgen.lexicon`) finishes the word it is spelling.
        temperature: 0 (or anything below 1e-6) picks the most likely token (greedy); higher is more
            varied.
        top_k: sample among the k most likely tokens (None or >= vocabulary: all).
        top_p: sample among the most likely tokens whose probabilities add up to p (1.0: all).
        repetition_penalty: >1 makes tokens already in the text less likely (1.0: off).
        seed: the same seed, prompt and model give the same text.
        stop_at_end: stop at the end-of-message token (False: never sample it).
        overrun: how far past `max_tokens` (a share of it) a reply may run to reach the end of its
            message; one that still has not ended is cut back to its last sentence end, else its last
            whole word (`textgen.endings`). 0: cut at `max_tokens`.
        typical_p: typical sampling (Meister et al., 2023): keep the tokens whose surprise is nearest the
            distribution's entropy, until their probabilities add up to this share (None: off).
        min_p: keep the tokens at least this share as likely as the most likely one (None: off).
        best_of: candidates sampled for the request (in the same batch); the one the model finds most
            fluent, the highest mean log-probability per token, is kept (`textgen.generator`).
    """

    max_tokens: int = 200
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop_at_end: bool = True
    overrun: float = 0.0
    typical_p: float | None = None
    min_p: float | None = None
    best_of: int = 1

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
        if not self.overrun >= 0:
            raise TextgenError(f"overrun must be 0 or more, received {self.overrun!r}")
        if self.typical_p is not None and not 0 < self.typical_p <= 1:
            raise TextgenError(f"typical-p must be in (0, 1], received {self.typical_p!r}")
        if self.min_p is not None and not 0 <= self.min_p < 1:
            raise TextgenError(f"min-p must be in [0, 1), received {self.min_p!r}")
        if not isinstance(self.best_of, int) or self.best_of < 1:
            raise TextgenError(f"best-of must be a positive whole number, received {self.best_of!r}")
        if not self.repetition_penalty >= 1:
            raise TextgenError(f"repetition penalty must be 1 or more, received {self.repetition_penalty!r}")


def sample_tokens(
    logits: np.ndarray,
    params: list[SamplingParams],
    rngs: list[np.random.Generator],
    seen: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """One token per row of `logits` (batch, vocab), each row under its own params and generator.

    The whole batch is processed with array operations; a row draws one number from its own generator
    per sampled token (none when greedy), so a request gives the same text alone or in any batch.

    Args:
        seen: (batch, vocab) booleans, tokens already in each row's text (for the repetition penalty).
        allowed: (batch, vocab) booleans, the tokens each row may sample (None: all but the framing
            and padding tokens, which are never sampled).
    """
    logits = logits.astype(np.float64, copy=True)
    batch, vocab = logits.shape
    if allowed is not None:
        logits[~allowed] = -np.inf
    logits[:, list(_NEVER_SAMPLED)] = -np.inf
    never_end = [row for row, p in enumerate(params) if not p.stop_at_end]
    logits[never_end, EOS_ID] = -np.inf
    penalty = np.array([p.repetition_penalty for p in params])[:, None]
    if seen is not None and (penalty != 1.0).any():
        # CTRL's penalty: shrink the logit of every token already present, whatever its sign.
        penalised = np.where(logits > 0, logits / penalty, logits * penalty)
        logits = np.where(seen & (penalty != 1.0), penalised, logits)
    chosen = np.argmax(logits, axis=1)
    temperature = np.array([p.temperature for p in params])
    rows = np.nonzero(temperature >= GREEDY_BELOW_TEMPERATURE)[0]
    if len(rows) == 0:
        return chosen
    scaled = logits[rows] / temperature[rows, None]
    top_k = np.array([params[r].top_k or vocab for r in rows])
    top_p = np.array([params[r].top_p if params[r].top_p is not None else 1.0 for r in rows])
    if (top_k < vocab).any() or (top_p < 1.0).any():
        scaled = _keep_head(scaled, top_k, top_p)
    for name, truncate in TRUNCATIONS.items():
        settings = [getattr(params[r], name) for r in rows]
        chosen_rows = np.array([index for index, value in enumerate(settings) if value is not None])
        if len(chosen_rows):
            values = np.array([settings[index] for index in chosen_rows], dtype=np.float64)
            scaled[chosen_rows] = truncate(scaled[chosen_rows], values)
    probs = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    uniform = np.array([rngs[r].random() for r in rows])
    # Inverse-CDF sampling: the first token whose cumulative probability passes the draw.
    chosen[rows] = np.minimum((cdf <= uniform[:, None]).sum(axis=1), vocab - 1)
    return chosen


def _keep_head(scaled: np.ndarray, top_k: np.ndarray, top_p: np.ndarray) -> np.ndarray:
    """Mask all but each row's top-k tokens, then all but the smallest set whose probability reaches p.

    By thresholds on the sorted probabilities rather than by permuting indices: a token stays if its
    probability is at least that of the last token kept (ties at the edge stay too).
    """
    probs = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    ranked = -np.sort(-probs, axis=1)
    ranks = np.arange(scaled.shape[1])[None, :]
    ranked = np.where(ranks < top_k[:, None], ranked, 0.0)
    cumulative = np.cumsum(ranked, axis=1)
    cumulative /= cumulative[:, -1:]
    # The last rank kept: the first whose cumulative probability reaches p (the most likely always stays,
    # so p near 0 is greedy rather than empty), and never past top-k.
    last = np.minimum((cumulative < top_p[:, None]).sum(axis=1), top_k - 1)
    threshold = ranked[np.arange(len(ranked)), last]
    return np.where(probs >= threshold[:, None], scaled, -np.inf)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities of each row of `logits` (tokens at -inf get -inf)."""
    top = logits.max(axis=-1, keepdims=True)
    shifted = logits - top
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def min_p_truncation(scaled: np.ndarray, min_p: np.ndarray) -> np.ndarray:
    """Keep each row's tokens at least `min_p` times as likely as its most likely token."""
    relative = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return np.where(relative >= min_p[:, None], scaled, -np.inf)


def typical_truncation(scaled: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Keep each row's tokens whose surprise (-log p) is nearest the row's entropy, the nearest first,
    until their probabilities reach `mass` (the nearest always stays)."""
    logp = log_softmax(scaled)
    probs = np.exp(logp)
    finite = np.where(probs > 0, logp, 0.0)  # dropped tokens (-inf) add nothing to the entropy
    entropy = -(probs * finite).sum(axis=1, keepdims=True)
    distance = np.where(probs > 0, np.abs(-logp - entropy), np.inf)
    order = np.argsort(distance, axis=1, kind="stable")
    cumulative = np.cumsum(np.take_along_axis(probs, order, axis=1), axis=1)
    # Tokens ranked up to the first whose cumulative probability reaches the mass.
    kept_count = np.minimum((cumulative < mass[:, None]).sum(axis=1) + 1, scaled.shape[1])
    keep_sorted = np.arange(scaled.shape[1])[None, :] < kept_count[:, None]
    keep = np.zeros_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=1)
    return np.where(keep, scaled, -np.inf)


Truncation = Callable[[np.ndarray, np.ndarray], np.ndarray]
# Truncations by the name of their `SamplingParams` field, applied in this order after top-k and top-p.
TRUNCATIONS: dict[str, Truncation] = {"typical_p": typical_truncation, "min_p": min_p_truncation}
