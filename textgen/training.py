"""Training a model on a corpus, step by step: the held-out parts, the data as the model reads it, the
model (new, or the parent's weights), the epoch loop under the time budget (`textgen.fit`), the final
evaluation, and the bundle.

The compiled training step lives in `textgen.train_step`, the learning-rate schedule in
`textgen.schedule`, the held-out splits in `textgen.holdout`.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from textgen.architectures.unrolled_gru import MIN_STEPS_TO_UNROLL, set_unrolling
from textgen.bundle import Bundle, ServingBundle, check_bundle_destination, load_serving_bundle, save_bundle
from textgen.copyguard import CopyGuard, build_copy_guard
from textgen.data import encode_compact, num_batches, stream_num_batches
from textgen.errors import TextgenError
from textgen.evaluate import Evaluation, evaluate_messages, evaluation_seconds
from textgen.fit import EpochLoop, FitResult, ProgressCallback, TrainingProgress
from textgen.holdout import head_of, split_validation
from textgen.lexicon import SPELLING_TOKENIZERS, Lexicon, load_lexicon
from textgen.model import build_model
from textgen.slurs import contains_slur
from textgen.spec import ModelSpec, TrainConfig
from textgen.strategy import is_chief, pick_precision_policy, pick_strategy, set_precision_policy
from textgen.token_corpus import MessageRange
from textgen.tokenizers import BPE_FIT_CHARS, Tokenizer, build_tokenizer
from textgen.train_step import Trainer
from textgen.weights import weight_names

__all__ = ["TrainResult", "TrainingFailed", "TrainingProgress", "train_model"]

# The final evaluation reads at most this many characters of each held-out part (the first messages),
# so that its cost is bounded and can be kept inside the time budget.
FINAL_EVALUATION_CHARS = 120_000
# Seconds kept for building the float32 copy and writing the bundle.
SAVE_SECONDS = 2.0
# The final evaluation's estimated time is multiplied by this, to stay inside the budget on a busy machine.
EVALUATION_TIME_MARGIN = 2.0


class TrainingFailed(TextgenError):
    """Training ended with a model no better than a uniform guess; nothing was saved."""


@dataclass
class TrainResult:
    bundle: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Parts:
    """The corpus split: what trains, what picks the best epoch, what gives the reported figure."""

    train: Sequence[str]
    val: Sequence[str]
    test: Sequence[str]


@dataclass(frozen=True)
class _Data:
    """The run's text as the model reads it, and the shape of an epoch."""

    spec: ModelSpec
    tokenizer: Tokenizer
    train_tokens: np.ndarray
    val_tokens: np.ndarray
    steps_per_epoch: int
    carry_state: bool
    # The heads of the held-out parts the final evaluation reads, by name ("val", "test").
    final_parts: dict[str, list[str]]

    @property
    def has_validation(self) -> bool:
        return len(self.val_tokens) > self.spec.seq_len + 1


def train_model(
    train_messages: Sequence[str],
    out_dir: Path | str,
    *,
    spec: ModelSpec | None = None,
    config: TrainConfig | None = None,
    tokenizer: str = "byte",
    num_words: int = 10000,
    val_messages: list[str] | None = None,
    test_messages: list[str] | None = None,
    base: Path | str | ServingBundle | None = None,
    progress: ProgressCallback | None = None,
    started: float | None = None,
    precision: str = "auto",
    strategy: tf.distribute.Strategy | None = None,
    extra_manifest: dict[str, Any] | None = None,
) -> TrainResult:
    """Train (or fine-tune from `base`) a model on `train_messages` and save a bundle to `out_dir`.

    Args:
        train_messages: the corpus: the texts, or a `textgen.token_corpus.TokenCorpus`'s messages
            (already encoded: nothing is encoded again, and the texts are decoded only a slice at a
            time). Without `test_messages`, its last `config.test_fraction` of the characters is held
            out as the test part; without `val_messages`, the `config.val_fraction` before that is held
            out for validation.
        spec: model shape (ignored with `base`, whose spec and tokenizer are kept so ids agree).
        tokenizer: `byte` (default, fixed vocabulary), `char` or `word`; character and word
            vocabularies are built from the training part only.
        base: a bundle to fine-tune from: its path, or the bundle already loaded with
            `textgen.bundle.load_serving_bundle` (its weights are read once, by whoever loaded it).
        progress: called after every step.
        started: `time.monotonic()` when the run began (corpus loading counts against the budget).
        precision: Keras dtype policy, or `auto` (mixed bfloat16 on capable accelerators).
        strategy: a distribution strategy; by default picked for the hardware (`pick_strategy`).

    Returns:
        The bundle path and metrics: `val_loss`, `val_accuracy` (per token, in training),
        `val_nats_per_char` (validation, which picked the weights), `test_nats_per_char` (the test part,
        when there is one), `train_tokens_per_sec`, `params`, `seconds`, `epochs`, `steps`, `stopped`.

    Raises:
        TrainingFailed: the held-out figure is no better than a uniform guess (nothing is saved).
    """
    started = time.monotonic() if started is None else started
    config = config or TrainConfig()
    out_dir = Path(out_dir)
    check_bundle_destination(out_dir)
    keras.utils.set_random_seed(config.seed)

    base_bundle = load_serving_bundle(base) if isinstance(base, Path | str) else base
    train_messages = _as_read(train_messages)
    parts = _held_out_parts(train_messages, val_messages, test_messages, config)
    strategy = strategy or pick_strategy()
    data = _prepare_data(parts, base_bundle, spec, tokenizer, num_words, config, strategy)
    # Built before training, so that its seconds (several on a large corpus) count in the budget.
    guard = _copy_guard(parts) if is_chief(strategy) else None
    lexicon = _lexicon(data.tokenizer.kind, itertools.chain(parts.train, parts.val), base_bundle)

    policy = pick_precision_policy(strategy, precision)
    model, fitted = _train(data, base_bundle, config, strategy, policy, started, progress)

    # The final figures come from a float32 copy: what the generation engine will serve.
    float_model = build_model(data.spec, data.tokenizer.vocab_size)
    float_model.set_weights([np.asarray(w, dtype=np.float32) for w in model.get_weights()])
    metrics = _run_metrics(float_model, data, policy, strategy, config, fitted.summary)
    evaluated = Bundle(out_dir, data.spec, data.tokenizer, float_model)
    metrics.update(_final_evaluation(evaluated, data.final_parts, fitted.summary["loss"]))

    extra = {"train_config": config.to_dict(), **(extra_manifest or {})}
    if base_bundle is not None:
        extra["parent"] = str(base_bundle.path)
    metrics["saved"] = is_chief(strategy)
    bundle_path = out_dir
    if metrics["saved"]:
        bundle_path = _save(
            out_dir, float_model, data, metrics, fitted.history, extra, guard, lexicon, started
        )
    metrics["seconds"] = time.monotonic() - started
    return TrainResult(bundle=bundle_path, metrics=metrics, history=fitted.history)


def _as_read(messages: Sequence[str]) -> Sequence[str]:
    """An encoded corpus as it is when it holds more than one document (a single document is cut inside
    its text); else its texts. A run whose tokenizer is not the corpus's encodes its parts again, a slice
    at a time (`_encoded`), so the texts are never all held at once either way."""
    if not isinstance(messages, MessageRange):
        return messages
    return messages if len(messages) > 1 else list(messages)


def _held_out_parts(
    train: Sequence[str], val: Sequence[str] | None, test: Sequence[str] | None, config: TrainConfig
) -> _Parts:
    """The parts not given are taken from the end of `train`: the test part last, validation before it."""
    kept = 1.0
    if test is None:
        train, test = _split(train, config.test_fraction)
        kept -= config.test_fraction
    if val is None:
        train, val = _split(train, config.val_fraction / kept)
    return _Parts(train, val, test)


def _split(messages: Sequence[str], fraction: float) -> tuple[Sequence[str], Sequence[str]]:
    if isinstance(messages, MessageRange):
        return messages.split(fraction)
    return split_validation(messages if isinstance(messages, list) else list(messages), fraction)


def _encoded(tokenizer: Tokenizer, messages: Sequence[str]) -> np.ndarray:
    """The compact token stream of `messages`; an encoded corpus's is a view of its array when the
    tokenizers agree, else encoded again from it a slice at a time."""
    if isinstance(messages, MessageRange):
        if messages.corpus.tokenizer.kind == tokenizer.kind:
            return messages.tokens
        return messages.encoded_with(tokenizer)
    return encode_compact(tokenizer, messages)


def _newest(messages: Sequence[str], max_chars: int) -> Sequence[str]:
    """The newest messages of `messages` that make about `max_chars` characters (the end of a single
    document); all of them when they are fewer."""
    chars = _chars(messages)
    if chars <= max_chars:
        return messages
    if len(messages) == 1:
        return [messages[0][-max_chars:]]
    return _split(messages, max_chars / chars)[1]


def _chars(messages: Sequence[str]) -> int:
    if isinstance(messages, MessageRange):
        return messages.chars
    return sum(len(message) for message in messages)


def _prepare_data(
    parts: _Parts,
    base: ServingBundle | None,
    spec: ModelSpec | None,
    tokenizer: str,
    num_words: int,
    config: TrainConfig,
    strategy: tf.distribute.Strategy,
) -> _Data:
    """The spec and tokenizer (the parent's when fine-tuning, so ids agree), the encoded parts, and the
    number of steps in an epoch.

    Raises:
        TextgenError: the training part is shorter than one batch.
    """
    if base is not None:
        spec, tok = base.spec, base.tokenizer
    else:
        spec = spec or ModelSpec()
        # A BPE vocabulary is learned from the newest of the training part only (`BPE_FIT_CHARS`).
        texts = _newest(parts.train, BPE_FIT_CHARS) if tokenizer == "bpe" else parts.train
        tok = build_tokenizer(tokenizer, texts, num_words=num_words)
    train_tokens = _encoded(tok, parts.train)
    val_tokens = _encoded(tok, parts.val)
    steps_per_epoch = num_batches(
        len(train_tokens), spec.seq_len, config.batch_size, spec.causal, config.grad_accum
    )
    if steps_per_epoch == 0:
        need = config.batch_size * config.grad_accum * (spec.seq_len if spec.causal else 1) + spec.seq_len + 1
        raise TextgenError(
            f"training text has {len(train_tokens)} tokens, fewer than one batch needs ({need}); "
            f"add text, or lower --batch-size / --seq-len"
        )
    carry_state = _can_carry_state(config, spec, strategy, len(train_tokens))
    if carry_state:
        steps_per_epoch = stream_num_batches(
            len(train_tokens), spec.seq_len, config.batch_size, config.grad_accum
        )
    if config.steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, config.steps_per_epoch)
    final_parts = {
        name: head_of(messages, FINAL_EVALUATION_CHARS)
        for name, messages in (("val", parts.val), ("test", parts.test))
        if _chars(messages) > 0
    }
    return _Data(spec, tok, train_tokens, val_tokens, steps_per_epoch, carry_state, final_parts)


def _copy_guard(parts: _Parts) -> CopyGuard:
    """The guard of every message of the corpus, held-out parts too: replies must not copy any
    member's message. Only this corpus: the bot checks the guards of the models it descends from apart
    (each loaded once for all their descendants) rather than copying them into every version."""
    return build_copy_guard(itertools.chain(parts.train, parts.val, parts.test))


def _train(
    data: _Data,
    base: ServingBundle | None,
    config: TrainConfig,
    strategy: tf.distribute.Strategy,
    policy: str,
    started: float,
    progress: ProgressCallback | None,
) -> tuple[keras.Model, FitResult]:
    """Build the model under `policy` and run the epoch loop; the model ends with its best weights."""
    set_precision_policy(policy)
    try:
        model = _build_model(data, base, strategy)
        planned_steps = config.epochs * data.steps_per_epoch
        set_unrolling(model, planned_steps >= MIN_STEPS_TO_UNROLL)
        final_reserve = _final_reserve(model, data, config)
        trainer = Trainer(model, data.spec, config, strategy, carry_state=data.carry_state)
        validation = data.val_tokens if data.has_validation else None
        loop = EpochLoop(
            trainer, data.train_tokens, validation, data.steps_per_epoch, started, progress, final_reserve
        )
        fitted = loop.run()
    finally:
        set_precision_policy("float32")
    return model, fitted


def _build_model(data: _Data, base: ServingBundle | None, strategy: tf.distribute.Strategy) -> keras.Model:
    """A new model under `strategy`, starting from the parent's weights when fine-tuning."""
    with strategy.scope():
        model = build_model(data.spec, data.tokenizer.vocab_size)
        if base is not None:
            model.set_weights([np.asarray(base.weights[name]) for name in weight_names(base.spec)])
    return model


def _final_reserve(model: keras.Model, data: _Data, config: TrainConfig) -> float:
    """Seconds of the time budget kept for the final evaluation and the save."""
    reserve = SAVE_SECONDS
    if config.time_budget:
        tokens = sum(len(data.tokenizer.encode_messages(part)) for part in data.final_parts.values())
        estimate = evaluation_seconds(model, data.spec, tokens, len(data.final_parts))
        reserve += EVALUATION_TIME_MARGIN * estimate
    return reserve


def _run_metrics(
    float_model: keras.Model,
    data: _Data,
    policy: str,
    strategy: tf.distribute.Strategy,
    config: TrainConfig,
    summary: dict[str, Any],
) -> dict[str, Any]:
    """What the run did, as the manifest keeps it (the loop's summary included)."""
    return {
        "params": int(float_model.count_params()),
        "tokenizer": data.tokenizer.kind,
        "vocab_size": data.tokenizer.vocab_size,
        "train_tokens": int(len(data.train_tokens)),
        "val_tokens": int(len(data.val_tokens)),
        "precision": policy,
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "carry_state": data.carry_state,
        "state_reset": config.state_reset if data.carry_state else None,
        **summary,
    }


def _final_evaluation(
    evaluated: Bundle, final_parts: dict[str, list[str]], train_loss: float | None
) -> dict[str, float | int]:
    """Nats per character and characters read of each held-out part.

    Raises:
        TrainingFailed: the headline part (test, else validation) is no better than a uniform guess.
    """
    evaluations = {name: evaluate_messages(evaluated, part) for name, part in final_parts.items()}
    metrics: dict[str, float | int] = {}
    for name, evaluation in evaluations.items():
        metrics[f"{name}_nats_per_char"] = evaluation.nats_per_char
        metrics[f"{name}_chars"] = evaluation.chars
    if evaluations:
        headline_name = "test" if "test" in evaluations else "val"
        _refuse_failed_run(
            evaluations[headline_name], headline_name, evaluated.tokenizer.vocab_size, train_loss
        )
    return metrics


def _save(
    out_dir: Path,
    float_model: keras.Model,
    data: _Data,
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    extra: dict[str, Any],
    guard: CopyGuard | None,
    lexicon: Lexicon | None,
    started: float,
) -> Path:
    """Write the bundle; its manifest's `seconds` is the run up to its save."""
    metrics["seconds"] = time.monotonic() - started
    return save_bundle(
        out_dir,
        float_model,
        data.spec,
        data.tokenizer,
        metrics=metrics,
        history=history,
        extra=extra,
        copy_guard=guard,
        lexicon=lexicon,
    )


def _lexicon(
    tokenizer_kind: str, messages: Iterable[str], base_bundle: ServingBundle | None
) -> Lexicon | None:
    """The words replies may spell (`textgen.lexicon`): the corpus's, not the test part's, and the
    parent's. Word tokenizers spell no words, so they need none."""
    if tokenizer_kind not in SPELLING_TOKENIZERS:
        return None
    lexicon = Lexicon.build(messages, exclude=contains_slur)
    parent = load_lexicon(base_bundle.path) if base_bundle is not None else None
    return lexicon.union(parent) if parent is not None else lexicon


def _refuse_failed_run(evaluation: Evaluation, part: str, vocab_size: int, train_loss: float | None) -> None:
    """Raise `TrainingFailed` when the held-out figure is no better than a uniform guess over the
    vocabulary (or not a number): such a model writes noise, and nothing must serve it."""
    uniform_per_token = math.log(vocab_size)
    if math.isfinite(evaluation.nats_per_token) and evaluation.nats_per_token < uniform_per_token:
        return
    uniform_per_char = evaluation.nats_per_char / evaluation.nats_per_token * uniform_per_token
    trained = f" (training loss {train_loss:.3f} nats/token)" if train_loss is not None else ""
    raise TrainingFailed(
        f"training failed: {part} {evaluation.nats_per_char:.3f} nats/char is no better than a uniform "
        f"guess ({uniform_per_char:.3f}){trained}; nothing was saved; retry with a lower "
        f"--learning-rate or another --seed"
    )


def _can_carry_state(
    config: TrainConfig, spec: ModelSpec, strategy: tf.distribute.Strategy, num_tokens: int
) -> bool:
    """Whether this run can carry the state across windows (see `TrainConfig.carry_state`)."""
    if not (config.carry_state and spec.family.carries_state):
        return False
    # Each worker of a multi-worker run reads its own shard of batches, which breaks the row-to-row
    # continuity the carried state relies on; an uneven split across replicas would too.
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    if config.batch_size % strategy.num_replicas_in_sync:
        return False
    return stream_num_batches(num_tokens, spec.seq_len, config.batch_size, config.grad_accum) > 0
