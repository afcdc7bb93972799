"""Choosing the next token from logits: temperature, top-k, top-p, typical and min-p, and a repetition penalty.

Typical sampling and min-p are truncations looked up by name (`TRUNCATIONS`): each one takes a batch of
temperature-scaled logits and one setting per row, and returns the logits with the dropped tokens at -inf.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from textgen.errors import TextgenError
from textgen.tokenizers import BOS_ID, EOS_ID, PAD_ID, UNK_ID

try:
    from textgen._sampler import MAX_VOCAB as COMPILED_MAX_VOCAB
    from textgen._sampler import sample_row as compiled_sample_row
except ImportError as error:  # a source tree that was never installed
    raise ImportError(
        "textgen._sampler is not built: install chatsmith (`make install`, or `pip install -e .`), "
        "which compiles it"
    ) from error

# Tokens a sample never contains: they frame or pad text, they are not text.
_NEVER_SAMPLED = [PAD_ID, BOS_ID, UNK_ID]
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
        min_tokens: the end-of-message token is not sampled before this many tokens of text (not
            whitespace alone): with the default 1 a reply is never empty or blank, even where the model
            would end the message at once (`textgen.generator`).
        overrun: how far past `max_tokens` (a share of it) a reply may run to reach the end of its
            message; one that still has not ended is cut back to its last sentence end, else its last
            whole word (`textgen.endings`). 0: cut at `max_tokens`.
        typical_p: typical sampling (Meister et al., 2023): keep the tokens whose surprise is nearest the
            distribution's entropy, until their probabilities add up to this share (None: off).
        min_p: keep the tokens at least this share as likely as the most likely one (None: off).
        best_of: candidates sampled for the request (in the same batch); the one the model finds most
            fluent, the highest mean log-probability per token, is kept (`textgen.generator`).
        end_untempered: whether the message ends at the model's own probability of ending it (temperature
            1, nothing truncated): temperature and truncation then shape the words but not the length. A
            temperature below 1 (and top-p or min-p) otherwise shrinks the end token's small probability
            at every step, and replies run longer than the channel's messages.
    """

    max_tokens: int = 200
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop_at_end: bool = True
    min_tokens: int = 1
    overrun: float = 0.0
    typical_p: float | None = None
    min_p: float | None = None
    best_of: int = 1
    end_untempered: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise TextgenError(f"max tokens must be a positive whole number, received {self.max_tokens!r}")
        if not isinstance(self.min_tokens, int) or self.min_tokens < 0:
            raise TextgenError(f"min tokens must be a whole number, 0 or more, received {self.min_tokens!r}")
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
    # Called once per decoding step, mostly for one row, which the compiled sampler takes; below, each
    # NumPy call costs more than its arithmetic on a few hundred logits, so steps that change nothing for
    # these params are skipped.
    if len(params) == 1 and plain(params[0], logits.shape[1]):
        return np.array(
            [sample_one(logits[0], params[0], rngs[0], None if allowed is None else allowed[0])[0]]
        )
    logits = logits.astype(np.float64, copy=True)
    batch, vocab = logits.shape
    if allowed is not None:
        logits[~allowed] = -np.inf
    logits[:, _NEVER_SAMPLED] = -np.inf
    never_end = [row for row, p in enumerate(params) if not p.stop_at_end]
    if never_end:
        logits[never_end, EOS_ID] = -np.inf
    if seen is not None and any(p.repetition_penalty != 1.0 for p in params):
        # CTRL's penalty: shrink the logit of every token already present, whatever its sign.
        penalty = np.array([p.repetition_penalty for p in params])[:, None]
        penalised = np.where(logits > 0, logits / penalty, logits * penalty)
        logits = np.where(seen & (penalty != 1.0), penalised, logits)
    rows = [row for row, p in enumerate(params) if p.temperature >= GREEDY_BELOW_TEMPERATURE]
    chosen = np.argmax(logits, axis=1) if len(rows) < batch else np.zeros(batch, dtype=np.intp)
    if not rows:
        return chosen
    ending = _ends_at_model_rate(logits, params, rows, rngs)
    chosen[ending] = EOS_ID
    rows = [row for row in rows if not ending[row]]  # a row that ends samples nothing else
    if not rows:
        return chosen
    temperatures = [params[r].temperature for r in rows]
    # One temperature for all (one row, or a best-of batch) divides by a number: the same quotients.
    divisor = temperatures[0] if len(set(temperatures)) == 1 else np.array(temperatures)[:, None]
    scaled = (logits if len(rows) == batch else logits[rows]) / divisor
    top_k = [params[r].top_k or vocab for r in rows]
    top_p = [1.0 if share is None else share for share in (params[r].top_p for r in rows)]
    probs: np.ndarray | None = None
    if any(k < vocab for k in top_k) or any(share < 1.0 for share in top_p):
        scaled, probs = _keep_head(scaled, np.array(top_k), np.array(top_p))
    for name, truncate in TRUNCATIONS.items():
        settings = [getattr(params[r], name) for r in rows]
        if all(value is None for value in settings):
            continue
        chosen_rows = np.array([index for index, value in enumerate(settings) if value is not None])
        if len(chosen_rows):
            values = np.array([settings[index] for index in chosen_rows], dtype=np.float64)
            scaled[chosen_rows] = truncate(scaled[chosen_rows], values)
            probs = None
    if probs is None:
        probs = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    cdf = probs.cumsum(axis=1)
    cdf /= cdf[:, -1:]
    uniform = [rngs[r].random() for r in rows]
    # Inverse-CDF sampling: the first token whose cumulative probability passes the draw.
    chosen[rows] = np.minimum(_count_sorted(cdf, uniform, below=False), vocab - 1)
    return chosen


def _ends_at_model_rate(
    logits: np.ndarray, params: list[SamplingParams], rows: list[int], rngs: list[np.random.Generator]
) -> np.ndarray:
    """For the sampled `rows` with `end_untempered`: whether each ends its message now, drawn (before its
    token) at the end token's probability under `logits` as they stand, untempered and untruncated. Those
    that go on choose their token without the end token (set to -inf in `logits`)."""
    ending = np.zeros(len(params), dtype=bool)
    untempered = [row for row in rows if params[row].end_untempered]
    if not untempered:
        return ending
    end_probability = np.exp(log_softmax(logits[untempered])[:, EOS_ID])
    for row, probability in zip(untempered, end_probability.tolist(), strict=True):
        ending[row] = rngs[row].random() < probability
    logits[untempered, EOS_ID] = -np.inf
    return ending


def plain(params: SamplingParams, vocab: int) -> bool:
    """Whether `sample_one` samples for `params` over `vocab` tokens: temperature, top-k, top-p, min-p and
    the end at the model's own rate (the bot's settings), without a repetition penalty or typical
    sampling, for vocabularies of bytes or characters."""
    return (
        vocab <= COMPILED_MAX_VOCAB
        and params.temperature >= GREEDY_BELOW_TEMPERATURE
        and params.repetition_penalty == 1.0
        and params.typical_p is None
    )


def sample_one(
    logits: np.ndarray,
    params: SamplingParams,
    rng: np.random.Generator,
    allowed: np.ndarray | None = None,
    may_end: bool = True,
) -> tuple[int, float]:
    """`sample_tokens` for one row under `plain` params: the next token after `logits` (vocab,), and its
    log-probability under them (`token_logprobs`).

    Compiled (`textgen/_sampler.c`): one row's sampling as NumPy calls cost more than the model's step.
    `allowed` (vocab,) restricts the tokens as in `sample_tokens`; `may_end` False keeps the end token out
    as well (a reply shorter than its `min_tokens`). A row that ends at the model's own rate has drawn its
    token's number too; it samples nothing after its end.
    """
    vocab = len(logits)
    if allowed is None:
        allowed = _all_allowed(vocab)
    end_draw = rng.random() if params.end_untempered else 0.0
    return compiled_sample_row(
        logits,
        allowed,
        params.stop_at_end and may_end,
        params.end_untempered,
        params.temperature,
        min(params.top_k or vocab, vocab),
        1.0 if params.top_p is None else params.top_p,
        params.min_p or 0.0,
        end_draw,
        rng.random(),
    )


@functools.cache
def _all_allowed(vocab: int) -> np.ndarray:
    return np.ones(vocab, dtype=bool)


def _count_sorted(ascending: np.ndarray, values: Sequence[float] | np.ndarray, *, below: bool) -> np.ndarray:
    """Per row of `ascending` (rows sorted in ascending order), how many entries are below `values[row]`
    (or at most it, with `below` False): `(ascending < values[:, None]).sum(axis=1)`, by binary search
    for a single row."""
    if len(ascending) == 1:
        side = "left" if below else "right"
        return np.array([ascending[0].searchsorted(values[0], side=side)])
    column = np.asarray(values, dtype=np.float64)[:, None]
    compared = ascending < column if below else ascending <= column
    return compared.sum(axis=1)


def _keep_head(scaled: np.ndarray, top_k: np.ndarray, top_p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mask all but each row's top-k tokens, then all but the smallest set whose probability reaches p;
    and the (unnormalised) probabilities of what is kept, 0 for the rest.

    By thresholds on the sorted probabilities rather than by permuting indices: a token stays if its
    probability is at least that of the last token kept (ties at the edge stay too).
    """
    probs = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    ranked = np.sort(probs, axis=1)[:, ::-1]  # most likely first
    if (top_k < scaled.shape[1]).any():
        ranks = np.arange(scaled.shape[1])[None, :]
        ranked = np.where(ranks < top_k[:, None], ranked, 0.0)
    cumulative = ranked.cumsum(axis=1)
    cumulative /= cumulative[:, -1:]
    # The last rank kept: the first whose cumulative probability reaches p (the most likely always stays,
    # so p near 0 is greedy rather than empty), and never past top-k.
    last = np.minimum(_count_sorted(cumulative, top_p, below=True), top_k - 1)
    keep = probs >= np.take_along_axis(ranked, last[:, None], axis=1)
    # The most likely token stays, so the kept logits' maximum is the same and `exp(kept - max)` is
    # exactly these probabilities where kept and 0 (exp of -inf) elsewhere.
    return np.where(keep, scaled, -np.inf), np.where(keep, probs, 0.0)


def token_logprobs(logits: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """The log-probability of `tokens[i]` under row i of `logits` (batch, vocab): `log_softmax(logits)`'s
    entries, computed the same way without the rest of the rows."""
    if len(tokens) == 1:  # one row: the same operations on it alone
        row = logits[0]
        shifted_row = row - row.max()
        return shifted_row[int(tokens[0])] - np.log(np.exp(shifted_row).sum(keepdims=True))
    top = logits.max(axis=-1, keepdims=True)
    shifted = logits - top
    totals = np.log(np.exp(shifted).sum(axis=-1))
    return np.array([row[token] for row, token in zip(shifted, tokens.tolist(), strict=True)]) - totals


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
