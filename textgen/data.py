"""Training windows cut on the fly from one token array, never materialised.

The corpus lives in memory once, as token ids in the smallest unsigned type its vocabulary fits
(uint16 for bytes and characters: half of int32), encoded a slice of messages at a time so that no
int32 copy of the whole corpus ever exists. Each batch gathers its windows from that NumPy array (in
NumPy on one device, inside a `tf.data` pipeline under a distribution strategy: `EpochBatches`) and
widens only those to int32: TensorFlow never holds a copy of the whole array, and memory grows with
the corpus and never with corpus x window x vocabulary as padded n-grams with one-hot labels would.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from textgen.errors import TextgenError

if TYPE_CHECKING:
    from textgen.tokenizers import Tokenizer

# Messages encoded at once: the int32 stream of one slice is a passing few megabytes.
ENCODE_SLICE_MESSAGES = 50_000


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned type that holds every id of a vocabulary of `vocab_size`."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise TextgenError(f"Received a vocabulary of {vocab_size} ids, expected at most 2**32")


def encode_compact(tokenizer: Tokenizer, messages: Sequence[str]) -> np.ndarray:
    """`BOS m1 EOS BOS m2 EOS ...` as `token_dtype(tokenizer.vocab_size)`, encoded slice by slice."""
    dtype = token_dtype(tokenizer.vocab_size)
    pieces = [
        tokenizer.encode_messages(messages[start : start + ENCODE_SLICE_MESSAGES]).astype(dtype)
        for start in range(0, len(messages), ENCODE_SLICE_MESSAGES)
    ]
    if len(pieces) == 1:
        return pieces[0]
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype)


def cut_windows(tokens: np.ndarray, starts: np.ndarray, span: int) -> np.ndarray:
    """The int32 windows `tokens[start : start + span]` for each of `starts` (any shape): `starts.shape +
    (span,)`."""
    return tokens[starts[..., None] + np.arange(span, dtype=np.int64)].astype(np.int32)


def _inputs_and_labels(windows: np.ndarray, causal: bool) -> tuple[np.ndarray, np.ndarray]:
    return windows[..., :-1], windows[..., 1:] if causal else windows[..., -1]


def gather_windows(tokens: np.ndarray, starts: tf.Tensor, span: int) -> tf.Tensor:
    """The int32 windows `tokens[start : start + span]` for each of `starts` (a 1-D int64 tensor), read
    from the NumPy array itself: a `tf.constant` of the tokens would copy the whole corpus into
    TensorFlow (and once more into every epoch's dataset graph)."""

    def cut(batch_starts: np.ndarray) -> np.ndarray:
        return cut_windows(tokens, batch_starts, span)

    windows = tf.numpy_function(cut, [starts], tf.int32, stateful=False)
    windows.set_shape([starts.shape[0], span])
    return windows


def window_starts(num_tokens: int, seq_len: int, causal: bool, rng: np.random.Generator | None) -> np.ndarray:
    """Offsets of the windows of one epoch.

    Causal models learn from every position of a window, so an epoch tiles the stream with
    non-overlapping windows (shifted by a random phase each epoch). A BiLSTM learns one next token per
    window, so its epoch has a window ending at every position.
    """
    span = seq_len + 1  # inputs plus the label(s) one step ahead
    last_start = num_tokens - span
    if last_start < 0:
        raise TextgenError(
            f"corpus has {num_tokens} tokens, fewer than one window of {span}; "
            f"add text or lower --seq-len below {max(1, num_tokens - 1)}"
        )
    if causal:
        phase = int(rng.integers(0, seq_len)) if rng is not None else 0
        phase = min(phase, last_start)
        starts = np.arange(phase, last_start + 1, seq_len, dtype=np.int64)
    else:
        starts = np.arange(0, last_start + 1, dtype=np.int64)
    if rng is not None:
        rng.shuffle(starts)
    return starts


@dataclass(frozen=True)
class EpochBatches:
    """One epoch's batches, planned in NumPy: which windows each optimizer step reads, in order.

    Iterating it yields each batch as NumPy arrays, cut from the token array when asked for. A model
    on one device trains from those directly: no `tf.data` pipeline is built (and its functions traced)
    for every epoch and no iterator threads start for every validation, which together cost more than
    the steps of a small channel's epoch. `dataset()` is the same batches as a `tf.data.Dataset`, for
    distribution strategies, which split a dataset's batches across replicas and workers.

    Elements: `(inputs, labels)` for windows, `(inputs, labels, carry)` for streams; shapes as
    `window_batches` and `stream_window_batches` describe.
    """

    tokens: np.ndarray
    seq_len: int
    batch_size: int
    causal: bool
    grad_accum: int
    drop_remainder: bool
    # Windows: the start of every window, in epoch order. Streams: the numbers of the micro-steps, in order.
    order: np.ndarray
    # Streams only: where each batch row's stream starts, and (optimizer steps, batch) keep-state flags.
    row_starts: np.ndarray | None = None
    carry: np.ndarray | None = None

    def __len__(self) -> int:
        if self.carry is not None:
            return min(len(self.order) // self.grad_accum, len(self.carry))
        per_step = self.batch_size * self.grad_accum
        full, rest = divmod(len(self.order), per_step)
        # A last, smaller batch is kept only without accumulation (validation).
        return full + (rest > 0 and not self.drop_remainder and self.grad_accum == 1)

    def __iter__(self) -> Iterator[tuple[np.ndarray, ...]]:
        for step in range(len(self)):
            yield self.batch(step)

    def take(self, steps: int) -> EpochBatches:
        """The first `steps` optimizer steps (all of them when there are fewer)."""
        if steps >= len(self):
            return self
        if self.carry is not None:
            return replace(self, order=self.order[: steps * self.grad_accum], carry=self.carry[:steps])
        return replace(self, order=self.order[: steps * self.batch_size * self.grad_accum])

    def batch(self, step: int) -> tuple[np.ndarray, ...]:
        """Optimizer step `step`'s arrays: int32 windows, and float32 carry flags for streams."""
        k = self.grad_accum
        if self.row_starts is not None:
            micro_steps = self.order[step * k : (step + 1) * k]
            starts = self.row_starts[None, :] + micro_steps[:, None] * self.seq_len  # (k, B)
        else:
            per_step = self.batch_size * k
            starts = self.order[step * per_step : (step + 1) * per_step].reshape(k, -1)
        windows = cut_windows(self.tokens, starts, self.seq_len + 1)  # (k, B, span)
        inputs, labels = _inputs_and_labels(windows, self.causal)
        if k == 1:
            inputs, labels = inputs[0], labels[0]
        else:  # the batch axis first: a strategy splits axis 0
            inputs, labels = np.swapaxes(inputs, 0, 1), np.swapaxes(labels, 0, 1)
        if self.carry is None:
            return inputs, labels
        return inputs, labels, self.carry[step]

    def dataset(self) -> tf.data.Dataset:
        """These batches as a `tf.data.Dataset`, the windows gathered inside the pipeline."""
        tokens, span, causal = self.tokens, self.seq_len + 1, self.causal

        def split(windows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return windows[:, :-1], windows[:, 1:] if causal else windows[:, -1]

        dataset = tf.data.Dataset.from_tensor_slices(self.order)
        if self.row_starts is not None:
            row_starts = tf.constant(self.row_starts)
            dataset = dataset.map(
                lambda step: split(gather_windows(tokens, row_starts + step * self.seq_len, span))
            )
        else:
            dataset = dataset.batch(self.batch_size, drop_remainder=self.drop_remainder)
            dataset = dataset.map(lambda starts: split(gather_windows(tokens, starts, span)))
        if self.grad_accum > 1:
            dataset = dataset.batch(self.grad_accum, drop_remainder=True).map(_micro_batches_second)
        if self.carry is not None:
            dataset = tf.data.Dataset.zip(dataset, tf.data.Dataset.from_tensor_slices(self.carry))
            dataset = dataset.map(lambda windows, keep: (*windows, keep))
        return _without_autotune(dataset.prefetch(PREFETCH_BATCHES))


def window_batches(
    tokens: np.ndarray,
    seq_len: int,
    batch_size: int,
    causal: bool,
    *,
    seed: int | None = None,
    epoch: int = 0,
    grad_accum: int = 1,
    drop_remainder: bool = True,
    sample_steps: int | None = None,
) -> EpochBatches:
    """Batches of `(inputs, labels)` for one epoch.

    Causal: inputs `(B, L)`, labels `(B, L)` (the next token at each position). BiLSTM: inputs `(B, L)`,
    labels `(B,)`. With `grad_accum > 1` each element stacks that many micro-batches on axis 1,
    `(B, k, L)`, so a distribution strategy still splits the batch axis across replicas.

    Args:
        tokens: the whole token stream, of any integer type (`encode_compact`'s); batches read it
            while they are iterated (it is not copied), so it must not change meanwhile.
        seed: with `epoch`, fixes the order; None gives the in-order windows (validation).
        sample_steps: keep this many steps' windows drawn at random (from `seed`) instead of all of
            them, in their order in the text (a validation sample, the same every time it is read).
    """
    rng = np.random.default_rng([seed, epoch]) if seed is not None else None
    starts = window_starts(len(tokens), seq_len, causal, rng if sample_steps is None else None)
    if sample_steps is not None and len(starts) > sample_steps * batch_size:
        chosen = np.random.default_rng([seed or 0, epoch]).choice(
            len(starts), sample_steps * batch_size, replace=False
        )
        starts = starts[np.sort(chosen)]
    return EpochBatches(tokens, seq_len, batch_size, causal, grad_accum, drop_remainder, starts)


def stream_window_batches(
    tokens: np.ndarray,
    seq_len: int,
    batch_size: int,
    *,
    seed: int | None = None,
    epoch: int = 0,
    grad_accum: int = 1,
    max_steps: int | None = None,
    reset_rate: float = 0.0,
) -> EpochBatches:
    """Batches of consecutive windows for training with the state carried from step to step.

    The stream is cut into `batch_size` contiguous parts; row `b` of step `t + 1` continues exactly where
    row `b` of step `t` ended, so the final state of one step is the right initial state of the next
    (truncated backpropagation through time). A random phase per epoch moves the window boundaries.
    Shapes as in `window_batches` for causal models: `(B, L)`, or `(B, k, L)` with `grad_accum=k`,
    the k micro-batches being consecutive in time.

    With `max_steps` (epochs capped at that many optimizer steps), each epoch starts where the last one
    stopped, so capped epochs still cover the whole text rather than its first windows again and again.

    Each element is `(inputs, labels, carry)`: `carry` `(B,)` is 0.0 for the rows whose state is reset
    to zeros before this step and 1.0 for the others. With `reset_rate` r, each row is reset with
    probability r at every optimizer step (drawn from `seed` and `epoch`, so runs repeat); the first
    step of an epoch resets every row. Resets teach the model to start from the zero state at any point
    of the text, as a reply or an evaluation segment does (without them a model can learn the zero
    state only as "start of the stream" and never recover from it elsewhere).
    """
    stream_length = (len(tokens) - 1) // batch_size
    rng = np.random.default_rng([seed, epoch]) if seed is not None else None
    phase = int(rng.integers(0, seq_len)) if rng is not None and stream_length > 2 * seq_len else 0
    steps = (stream_length - phase) // seq_len
    if steps < 1:
        raise TextgenError(
            f"corpus has {len(tokens)} tokens, too few for {batch_size} streams of one {seq_len}-token window; "
            f"add text or lower --batch-size / --seq-len"
        )
    row_starts = np.arange(batch_size, dtype=np.int64) * stream_length + phase
    order = np.arange(steps, dtype=np.int64)
    if max_steps is not None and max_steps * grad_accum < steps:
        start = ((max(epoch, 1) - 1) * max_steps * grad_accum) % steps
        order = np.roll(order, -start)[: max_steps * grad_accum]
    optimizer_steps = steps // grad_accum
    carry = np.ones((max(1, optimizer_steps), batch_size), dtype=np.float32)
    if reset_rate > 0:
        draws = np.random.default_rng([seed or 0, epoch, 1]).random(carry.shape)
        carry[draws < reset_rate] = 0.0
    carry[0] = 0.0
    return EpochBatches(tokens, seq_len, batch_size, True, grad_accum, True, order, row_starts, carry)


def stream_num_batches(num_tokens: int, seq_len: int, batch_size: int, grad_accum: int = 1) -> int:
    """Optimizer steps in one epoch of `stream_window_batches` (at phase 0)."""
    return ((num_tokens - 1) // batch_size // seq_len) // grad_accum


# Gathering a batch of windows costs microseconds next to a training step: a small fixed prefetch
# keeps the step fed. tf.data's autotuner is switched off because its optimisation thread sleeps
# with a doubling back-off and the iterator's end waits for that sleep: up to tens of seconds at the
# end of every epoch (measured: epochs padded to multiples of 20.5 s).
PREFETCH_BATCHES = 4


def _without_autotune(dataset: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def _micro_batches_second(inputs: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    # (k, B, ...) -> (B, k, ...): the strategy splits axis 0, so the batch axis must come first.
    def swap(tensor: tf.Tensor) -> tf.Tensor:
        rank = len(tensor.shape)
        return tf.transpose(tensor, [1, 0] + list(range(2, rank)))

    return swap(inputs), swap(labels)


def num_batches(num_tokens: int, seq_len: int, batch_size: int, causal: bool, grad_accum: int = 1) -> int:
    """Optimizer steps in one epoch of `window_batches` (drop_remainder)."""
    if causal:
        windows = (num_tokens - seq_len - 1) // seq_len + 1 if num_tokens > seq_len else 0
    else:
        windows = max(0, num_tokens - seq_len)
    return windows // (batch_size * grad_accum)
