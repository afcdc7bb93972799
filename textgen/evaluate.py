"""Held-out evaluation in nats per character, comparable across byte, character and word tokenizers.

Nats per character = total negative log-likelihood (natural log) of the held-out text, framing tokens
included, divided by its number of characters.

A causal model reads the held-out text as a few segments that run side by side as one batch, each from
the zero state, as generation does. Where a segment may start matters: a recurrent model starts every
reply from the zero state at the beginning of a message, never in the middle of one.

- Messages (chat): segments are runs of whole messages, so each one starts at a message boundary and
  every token of every message counts.
- One document (a book): segments start anywhere; each reads the `burn_in` tokens before its start
  first, without counting them, so that no figure depends on where the text was cut.

A model that carries no state (a BiLSTM) predicts each token from the window of tokens before it
(`Stepper.context_window`), so segments do not apply.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from textgen.architectures import Stepper
from textgen.bundle import Bundle, ServingBundle
from textgen.context import DEFAULT_CONTEXT_TOKENS, prompt_with_context
from textgen.engine import log_softmax, make_stepper
from textgen.errors import TextgenError
from textgen.spec import ModelSpec
from textgen.tokenizers import BOS_ID, EOS_ID, PAD_ID

# Tokens a one-document segment reads before its figures count: about two lines of prose, enough
# context for a model trained with carried state to have settled (measured: the per-token loss of a
# fresh state is back at the stream's level well within this many tokens).
DEFAULT_BURN_IN = 128
# A windowed model scores this many windows per forward pass.
_WINDOW_BATCH = 512


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


@dataclass(frozen=True)
class _Segment:
    """Tokens read from the zero state; the predictions of `tokens[count_from:]` count."""

    tokens: np.ndarray
    count_from: int


def evaluate_messages(
    bundle: Bundle | ServingBundle, messages: list[str], segments: int = 64, burn_in: int = DEFAULT_BURN_IN
) -> Evaluation:
    """Nats per character of `bundle`'s model on `messages` (one entry: one document).

    Args:
        segments: causal models read this many segments side by side (a speed setting: with a model
            that recovers from the zero state, the figure barely depends on it).
        burn_in: for one document, the tokens each segment after the first reads before it counts.
    """
    chars = sum(len(message) for message in messages)
    if chars == 0:
        raise TextgenError("nothing to evaluate: the held-out text is empty; give a corpus with text in it")
    tokenizer = bundle.tokenizer
    source = bundle.weights if isinstance(bundle, ServingBundle) else bundle.model
    stepper = make_stepper(source, bundle.spec)
    if not stepper.carries_state:
        stream = tokenizer.encode_messages(messages)
        total, predicted = _window_nll(stepper, stream), len(stream) - 1
        return Evaluation(total / chars, total / max(1, predicted), chars, len(stream))
    if len(messages) > 1:
        pieces = [tokenizer.encode_messages([message]) for message in messages]
        parts = [_Segment(np.concatenate(group), 1) for group in _balanced_runs(pieces, segments)]
        token_count = sum(len(piece) for piece in pieces)
    else:
        stream = tokenizer.encode_messages(messages)
        parts, token_count = _document_segments(stream, segments, burn_in), len(stream)
    total, predicted = causal_nll(stepper, parts)
    return Evaluation(total / chars, total / max(1, predicted), chars, token_count)


def recovery_gap(
    bundle: Bundle, messages: list[str], starts: np.ndarray, burn_in: int, span: int
) -> tuple[float, float]:
    """How well the model recovers from a fresh state in the middle of the text.

    For each offset in `starts`, the `span` tokens after `start + burn_in` are scored twice: by one
    stream read from the beginning of the text, and by a fresh (zero) state started at `start`, which
    reads `burn_in` tokens before it counts. Returns (fresh, stream) nats per token over the same
    tokens; a model that recovers gives nearly equal figures.
    """
    stepper = make_stepper(bundle.model, bundle.spec)
    if not stepper.carries_state:
        raise TextgenError(
            f"recovery from a fresh state applies to models that carry state; a {bundle.spec.arch} has none"
        )
    tokens = bundle.tokenizer.encode_messages(messages)
    starts = np.asarray(starts, dtype=np.int64)
    if len(starts) == 0 or int(starts.max()) + burn_in + span >= len(tokens):
        raise TextgenError(f"the text has {len(tokens)} tokens, too few for these offsets, burn-in and span")
    fresh = [_Segment(tokens[start : start + burn_in + span + 1], burn_in + 1) for start in starts]
    fresh_total, counted = causal_nll(stepper, fresh)
    # The same targets, scored by one stream read from the start of the text.
    _, per_position = _stream_losses(stepper, tokens[: int(starts.max()) + burn_in + span + 1])
    targets = np.concatenate([np.arange(start + burn_in + 1, start + burn_in + span + 1) for start in starts])
    return fresh_total / counted, float(per_position[targets].mean())


def evaluate_in_context(
    bundle: Bundle | ServingBundle,
    messages: list[str],
    context_messages: int = 8,
    max_context_tokens: int = DEFAULT_CONTEXT_TOKENS,
) -> tuple[Evaluation, Evaluation]:
    """Nats per character of each message after the first `context_messages`, read after the messages
    before it and alone (see `evaluate_with_contexts`)."""
    if len(messages) <= context_messages:
        raise TextgenError(f"{len(messages)} messages are too few for a context of {context_messages}")
    contexts = [
        messages[index - context_messages : index] for index in range(context_messages, len(messages))
    ]
    return evaluate_with_contexts(bundle, messages[context_messages:], contexts, max_context_tokens)


def evaluate_with_contexts(
    bundle: Bundle | ServingBundle,
    targets: list[str],
    contexts: list[list[str]],
    max_context_tokens: int = DEFAULT_CONTEXT_TOKENS,
) -> tuple[Evaluation, Evaluation]:
    """Nats per character of each target message scored twice: read after its context (oldest first),
    framed and bounded as a reply gets it (`textgen.context`), and alone from the zero state.

    Returns (in context, alone); only the target's own tokens (and its end of message) count in either.
    """
    source = bundle.weights if isinstance(bundle, ServingBundle) else bundle.model
    stepper = make_stepper(source, bundle.spec)
    if not stepper.carries_state:
        raise TextgenError(
            f"conversation context applies to models that carry state; a {bundle.spec.arch} reads a fixed window"
        )
    if len(targets) != len(contexts) or not targets:
        raise TextgenError("give one context per target message, and at least one target")
    tokenizer = bundle.tokenizer
    in_context, alone = [], []
    for target, context in zip(targets, contexts, strict=True):
        own = [*tokenizer.encode(target), EOS_ID]
        framed = prompt_with_context(tokenizer, context, "", max_context_tokens)
        in_context.append(_Segment(np.array([BOS_ID, *framed, *own], dtype=np.int32), 1 + len(framed)))
        alone.append(_Segment(np.array([BOS_ID, *own], dtype=np.int32), 1))
    chars = sum(len(target) for target in targets)
    figures = []
    for segments in (in_context, alone):
        total, counted = causal_nll(stepper, segments)
        figures.append(Evaluation(total / max(1, chars), total / max(1, counted), chars, counted))
    return figures[0], figures[1]


def evaluation_seconds(model: object, spec: ModelSpec, tokens: int, parts: int = 1) -> float:
    """About how long `evaluate_messages` takes on this machine for `tokens` tokens in `parts` texts,
    timed on a small sample with `model`'s shape (so a time budget can keep room for it)."""
    if tokens == 0:
        return 0.0
    stepper = make_stepper(model, spec)
    if not stepper.carries_state:
        stream = np.full(2 * _WINDOW_BATCH + 1, PAD_ID + 4, dtype=np.int32)
        _window_nll(stepper, stream[: _WINDOW_BATCH + 1])  # warm-up
        began = time.perf_counter()
        _window_nll(stepper, stream)
        return (time.perf_counter() - began) / 2 * (tokens / _WINDOW_BATCH + 1)
    rows, length = 64, 17
    sample = [_Segment(np.full(length, PAD_ID + 4, dtype=np.int32), 1) for _ in range(rows)]
    began = time.perf_counter()
    causal_nll(stepper, sample)
    per_step = (time.perf_counter() - began) / (length - 1)
    # Segments of `rows` run side by side: one batched step per `rows` tokens, plus each burn-in.
    return per_step * (tokens / rows + DEFAULT_BURN_IN * parts)


def causal_nll(stepper: Stepper, segments: list[_Segment]) -> tuple[float, int]:
    """Total negative log-likelihood of the counted tokens of `segments`, and how many were counted.

    All segments run side by side as one batch from the zero state; a segment leaves the batch once
    read, so segments of different lengths cost no padding.
    """
    length = max(len(segment.tokens) for segment in segments)
    batch = np.full((len(segments), length), PAD_ID, dtype=np.int32)
    # counted[b, t]: whether the prediction made after reading batch[b, t] (of batch[b, t + 1]) counts.
    counted = np.zeros((len(segments), length), dtype=bool)
    for row, segment in enumerate(segments):
        batch[row, : len(segment.tokens)] = segment.tokens
        counted[row, max(0, segment.count_from - 1) : len(segment.tokens) - 1] = True
    last_position = np.array([len(segment.tokens) - 2 for segment in segments])
    active = np.arange(len(segments))
    state = stepper.initial_state(len(segments))
    total = 0.0
    for position in range(length - 1):
        keep = np.nonzero(last_position[active] >= position)[0]
        if len(keep) < len(active):
            state = stepper.select(state, keep)
            active = active[keep]
        logits, state = stepper.step(batch[active, position], state)
        scored = np.nonzero(counted[active, position])[0]
        if len(scored):
            logp = log_softmax(logits[scored].astype(np.float64))
            total -= float(logp[np.arange(len(scored)), batch[active[scored], position + 1]].sum())
    return total, int(counted.sum())


def _stream_losses(stepper: Stepper, tokens: np.ndarray) -> tuple[float, np.ndarray]:
    """Per-position losses of one stream from the zero state: entry t is the loss of predicting token t."""
    losses = np.zeros(len(tokens))
    state = stepper.initial_state(1)
    for position in range(len(tokens) - 1):
        logits, state = stepper.step(tokens[position : position + 1], state)
        losses[position + 1] = -log_softmax(logits.astype(np.float64))[0, tokens[position + 1]]
    return float(losses.sum()), losses


def _balanced_runs(pieces: list[np.ndarray], runs: int) -> list[list[np.ndarray]]:
    """`pieces` cut into at most `runs` runs of consecutive pieces with about equal token counts."""
    runs = max(1, min(runs, len(pieces)))
    sizes = np.cumsum([len(piece) for piece in pieces])
    # Run i ends after the piece where the cumulative count passes (i + 1) / runs of the total.
    bounds = np.searchsorted(sizes, sizes[-1] * np.arange(1, runs) / runs, side="left") + 1
    edges = [0, *sorted(set(int(b) for b in bounds if 0 < b < len(pieces))), len(pieces)]
    return [pieces[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _document_segments(tokens: np.ndarray, segments: int, burn_in: int) -> list[_Segment]:
    """One token stream cut into `segments` equal runs of targets, each read `burn_in` tokens early."""
    predicted = len(tokens) - 1
    segments = max(1, min(segments, predicted // 32))
    length = -(-predicted // segments)
    parts = []
    for first_target in range(1, predicted + 1, length):
        start = max(0, first_target - 1 - burn_in)
        end = min(len(tokens), first_target + length)
        parts.append(_Segment(tokens[start:end], first_target - start))
    return parts


def _window_nll(stepper: Stepper, tokens: np.ndarray, batch: int = _WINDOW_BATCH) -> float:
    """Total negative log-likelihood of every token of `tokens` after the first, each predicted from the
    window of `stepper.context_window` tokens before it."""
    seq_len = stepper.context_window
    if seq_len is None:
        raise ValueError("windowed scoring needs a stepper with a context window")
    padded = np.concatenate([np.full(seq_len - 1, PAD_ID, dtype=np.int32), tokens.astype(np.int32)])
    total = 0.0
    targets = np.arange(1, len(tokens))
    for start in range(0, len(targets), batch):
        chunk = targets[start : start + batch]
        # The window ending at token t-1 (left-padded at the start of the stream) predicts token t.
        windows = padded[chunk[:, None] + np.arange(seq_len)[None, :] - 1]
        logits = stepper.window_logits(windows)
        logp = log_softmax(logits.astype(np.float64))
        total -= float(logp[np.arange(len(chunk)), tokens[chunk]].sum())
    return total
