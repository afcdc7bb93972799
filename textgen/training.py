"""Training a model on a corpus: held-out parts, the epoch loop under a time budget, the final
evaluation, and the bundle.

The compiled training step lives in `textgen.train_step`, the learning-rate schedule in
`textgen.schedule`, the held-out splits in `textgen.holdout`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from textgen.bundle import Bundle, check_bundle_destination, load_bundle, save_bundle
from textgen.copyguard import build_copy_guard, load_copy_guard
from textgen.data import num_batches, stream_num_batches, stream_windows_dataset, windows_dataset
from textgen.errors import TextgenError
from textgen.evaluate import Evaluation, evaluate_messages, evaluation_seconds
from textgen.holdout import head_of, split_validation
from textgen.lexicon import Lexicon, load_lexicon
from textgen.model import build_model
from textgen.schedule import LearningRateSchedule
from textgen.slurs import contains_slur
from textgen.spec import ModelSpec, TrainConfig
from textgen.strategy import is_chief, pick_precision_policy, pick_strategy, set_precision_policy
from textgen.tokenizers import Tokenizer, build_tokenizer
from textgen.train_step import Trainer

log = logging.getLogger(__name__)

# In-training validation looks at this many batches at most.
MAX_VALIDATION_BATCHES = 48
# Until the first validation is timed, it is guessed at this many seconds (compiling its step) plus
# this share of a training step per batch (forward only).
FIRST_VALIDATION_SECONDS = 2.0
VALIDATION_STEP_SHARE = 0.5
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
class TrainingProgress:
    """What a progress display needs, reported after every step."""

    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    loss: float
    accuracy: float
    elapsed: float
    eta_seconds: float | None
    fraction: float
    val_loss: float | None = None
    learning_rate: float | None = None


@dataclass
class TrainResult:
    bundle: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


def train_model(
    train_messages: list[str],
    out_dir: Path | str,
    *,
    spec: ModelSpec | None = None,
    config: TrainConfig | None = None,
    tokenizer: str = "byte",
    num_words: int = 10000,
    val_messages: list[str] | None = None,
    test_messages: list[str] | None = None,
    base: Path | str | None = None,
    progress: Callable[[TrainingProgress], None] | None = None,
    started: float | None = None,
    precision: str = "auto",
    strategy: tf.distribute.Strategy | None = None,
    extra_manifest: dict[str, Any] | None = None,
) -> TrainResult:
    """Train (or fine-tune from `base`) a model on `train_messages` and save a bundle to `out_dir`.

    Args:
        train_messages: the corpus. Without `test_messages`, its last `config.test_fraction` of the
            characters is held out as the test part; without `val_messages`, the `config.val_fraction`
            before that is held out for validation.
        spec: model shape (ignored with `base`, whose spec and tokenizer are kept so ids agree).
        tokenizer: `byte` (default, fixed vocabulary), `char` or `word`; character and word
            vocabularies are built from the training part only.
        base: a bundle to fine-tune from.
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
    check_bundle_destination(Path(out_dir))
    keras.utils.set_random_seed(config.seed)

    kept = 1.0
    if test_messages is None:
        train_messages, test_messages = split_validation(train_messages, config.test_fraction)
        kept -= config.test_fraction
    if val_messages is None:
        train_messages, val_messages = split_validation(train_messages, config.val_fraction / kept)

    base_bundle = load_bundle(base) if base is not None else None
    if base_bundle is not None:
        spec, tok = base_bundle.spec, base_bundle.tokenizer
    else:
        spec = spec or ModelSpec()
        tok = build_tokenizer(tokenizer, train_messages, num_words=num_words)

    train_tokens = tok.encode_messages(train_messages)
    val_tokens = tok.encode_messages(val_messages) if val_messages else np.zeros(0, np.int32)
    strategy = strategy or pick_strategy()
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
    has_validation = len(val_tokens) > spec.seq_len + 1
    final_parts = {
        name: head_of(messages, FINAL_EVALUATION_CHARS)
        for name, messages in (("val", val_messages), ("test", test_messages))
        if sum(len(message) for message in messages) > 0
    }

    guard = None
    if is_chief(strategy):
        # Built before training, so that its seconds (several on a large corpus) count in the budget.
        # Every message of the corpus, held-out parts too: replies must not copy any member's message.
        guard = build_copy_guard([*train_messages, *(val_messages or []), *(test_messages or [])])
        if base_bundle is not None and "parent" in base_bundle.manifest:
            # A fine-tuned parent learned a scope's messages (a workspace's, for a channel model): they
            # are in these weights too. A parent trained from scratch is a base model, whose guard the
            # bot checks apart rather than copying it into every version.
            guard = guard.merged(load_copy_guard(base_bundle.path))
    lexicon = _lexicon(tok.kind, [*train_messages, *(val_messages or [])], base_bundle)

    policy = pick_precision_policy(strategy, precision)
    set_precision_policy(policy)
    try:
        with strategy.scope():
            model = build_model(spec, tok.vocab_size)
            if base_bundle is not None:
                model.set_weights(base_bundle.model.get_weights())
        final_reserve = SAVE_SECONDS
        if config.time_budget:
            tokens = sum(len(tok.encode_messages(part)) for part in final_parts.values())
            estimate = evaluation_seconds(model, spec, tokens, len(final_parts))
            final_reserve += EVALUATION_TIME_MARGIN * estimate
        trainer = Trainer(model, spec, config, strategy, carry_state=carry_state)
        history, summary = _fit(
            trainer,
            tok,
            train_tokens,
            val_tokens if has_validation else None,
            steps_per_epoch,
            started,
            progress,
            final_reserve,
        )
    finally:
        set_precision_policy("float32")

    # The final figures come from a float32 copy: what the generation engine will serve.
    float_model = build_model(spec, tok.vocab_size)
    float_model.set_weights([np.asarray(w, dtype=np.float32) for w in model.get_weights()])
    metrics: dict[str, Any] = {
        "params": int(float_model.count_params()),
        "tokenizer": tok.kind,
        "vocab_size": tok.vocab_size,
        "train_tokens": int(len(train_tokens)),
        "val_tokens": int(len(val_tokens)),
        "precision": policy,
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "carry_state": carry_state,
        "state_reset": config.state_reset if carry_state else None,
        **summary,
    }
    evaluated = Bundle(Path(out_dir), spec, tok, float_model)
    evaluations = {name: evaluate_messages(evaluated, part) for name, part in final_parts.items()}
    for name, evaluation in evaluations.items():
        metrics[f"{name}_nats_per_char"] = evaluation.nats_per_char
        metrics[f"{name}_chars"] = evaluation.chars
    if evaluations:
        headline_name = "test" if "test" in evaluations else "val"
        _refuse_failed_run(evaluations[headline_name], headline_name, tok.vocab_size, summary["loss"])

    extra = {"train_config": config.to_dict(), **(extra_manifest or {})}
    if base_bundle is not None:
        extra["parent"] = str(base_bundle.path)
    metrics["saved"] = is_chief(strategy)
    if metrics["saved"]:
        # The manifest's figure: the run up to its save.
        metrics["seconds"] = time.monotonic() - started
        bundle_path = save_bundle(
            Path(out_dir),
            float_model,
            spec,
            tok,
            metrics=metrics,
            history=history,
            extra=extra,
            copy_guard=guard,
            lexicon=lexicon,
        )
    else:
        bundle_path = Path(out_dir)
    metrics["seconds"] = time.monotonic() - started
    return TrainResult(bundle=bundle_path, metrics=metrics, history=history)


def _lexicon(tokenizer_kind: str, messages: list[str], base_bundle: Bundle | None) -> Lexicon | None:
    """The words replies may spell (`textgen.lexicon`): the corpus's, not the test part's, and the
    parent's. Word tokenizers spell no words, so they need none."""
    if tokenizer_kind not in ("byte", "char"):
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


def _validation_dataset(trainer: Trainer, val_tokens: np.ndarray) -> tuple[tf.data.Dataset, bool]:
    """Held-out windows read the way the model trains (streamed with carried state, when the held-out
    text is long enough for one window per stream), else fresh windows. Returns (dataset, carry)."""
    config, spec = trainer.config, trainer.spec
    if trainer.carry_state and stream_num_batches(len(val_tokens), spec.seq_len, config.batch_size) > 0:
        return stream_windows_dataset(val_tokens, spec.seq_len, config.batch_size), True
    dataset = windows_dataset(val_tokens, spec.seq_len, config.batch_size, spec.causal, drop_remainder=False)
    if not spec.causal:
        # Every position is a BiLSTM window; a sample of them is enough to pick the best epoch.
        dataset = dataset.shuffle(4 * MAX_VALIDATION_BATCHES, seed=config.seed)
    return dataset, False


def _fit(
    trainer: Trainer,
    tok: Tokenizer,
    train_tokens: np.ndarray,
    val_tokens: np.ndarray | None,
    steps_per_epoch: int,
    started: float,
    progress: Callable[[TrainingProgress], None] | None,
    final_reserve: float = 0.0,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The epoch loop: time budget, learning-rate schedule, validation, early stopping, best weights.

    Training stops `final_reserve` seconds before the time budget, leaving that time to the final
    evaluation and the save; the learning rate decays over the time training has.
    """
    config, spec = trainer.config, trainer.spec
    budget = math.inf
    if config.time_budget:
        # A budget too small for its own final evaluation still trains for a quarter of it.
        budget = max(config.time_budget - final_reserve, 0.25 * config.time_budget)
    schedule = LearningRateSchedule(
        config.learning_rate, steps_per_epoch * config.epochs, budget if config.time_budget else None
    )
    history: list[dict[str, Any]] = []
    best_loss, best_weights, stale_epochs = math.inf, None, 0
    step = 0
    trained_tokens = 0.0
    train_seconds = 0.0
    validation_seconds = 0.0
    stopped = "epochs"
    val_dataset, val_carry = None, False
    if val_tokens is not None:
        val_dataset, val_carry = _validation_dataset(trainer, val_tokens)

    for epoch in range(1, config.epochs + 1):
        reserve = validation_seconds if val_dataset is not None else 0.0
        if epoch > 1 and trainer.agreed_seconds(time.monotonic() - started + reserve)[0] >= budget:
            stopped = "time budget"
            break
        if trainer.carry_state:
            dataset = stream_windows_dataset(
                train_tokens,
                spec.seq_len,
                config.batch_size,
                seed=config.seed,
                epoch=epoch,
                grad_accum=config.grad_accum,
                max_steps=config.steps_per_epoch,
                reset_rate=config.state_reset,
            )
        else:
            dataset = windows_dataset(
                train_tokens,
                spec.seq_len,
                config.batch_size,
                spec.causal,
                seed=config.seed,
                epoch=epoch,
                grad_accum=config.grad_accum,
            )
        dataset = dataset.take(steps_per_epoch)
        loss_sum = accuracy_sum = 0.0
        epoch_steps = 0
        epoch_start = time.monotonic()
        out_of_time = False
        for loss, accuracy, tokens in trainer.train_batches(dataset):
            step += 1
            epoch_steps += 1
            trained_tokens += tokens
            loss_sum += loss
            accuracy_sum += accuracy
            # Leave room for the epoch's validation so the run still ends inside the budget; before
            # the first one is timed, guess from the training steps (a validation batch runs forward only).
            # A first epoch cut short by the budget is not validated (there are no other weights to
            # choose from), so it needs no room.
            reserve = 0.0
            local_elapsed = time.monotonic() - started
            if val_dataset is not None:
                mean_step = (time.monotonic() - epoch_start) / epoch_steps
                guess = FIRST_VALIDATION_SECONDS + MAX_VALIDATION_BATCHES * mean_step * VALIDATION_STEP_SHARE
                finishes_epoch = (steps_per_epoch - epoch_steps) * mean_step < budget - local_elapsed
                if history or finishes_epoch:
                    reserve = validation_seconds or guess
            elapsed, elapsed_with_reserve = trainer.agreed_seconds(local_elapsed, local_elapsed + reserve)
            learning_rate = schedule(step, elapsed)
            trainer.set_learning_rate(learning_rate)
            if progress is not None:
                done = schedule.progress(step, elapsed)
                progress(
                    TrainingProgress(
                        epoch,
                        config.epochs,
                        epoch_steps,
                        steps_per_epoch,
                        loss,
                        accuracy,
                        elapsed,
                        elapsed / done - elapsed if done > 0 else None,
                        done,
                        learning_rate=learning_rate,
                    )
                )
            if elapsed_with_reserve >= budget:
                out_of_time = True
                break
        epoch_seconds = time.monotonic() - epoch_start
        train_seconds += epoch_seconds
        if epoch_steps == 0:
            stopped = "time budget"
            break
        record: dict[str, Any] = {
            "epoch": epoch,
            "steps": epoch_steps,
            "loss": loss_sum / epoch_steps,
            "accuracy": accuracy_sum / epoch_steps,
            "seconds": epoch_seconds,
        }
        if val_dataset is not None and (history or not out_of_time):
            validation_start = time.monotonic()
            record["val_loss"], record["val_accuracy"] = trainer.evaluate(
                val_dataset, MAX_VALIDATION_BATCHES, carry_state=val_carry
            )
            validation_seconds = time.monotonic() - validation_start
        history.append(record)
        log.info(
            "epoch %d: %s", epoch, {k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}
        )
        monitored = record.get("val_loss", record["loss"])
        if monitored < best_loss - 1e-4:
            best_loss, best_weights, stale_epochs = monitored, trainer.model.get_weights(), 0
        else:
            stale_epochs += 1
        if out_of_time:
            stopped = "time budget"
            break
        if stale_epochs >= config.patience:
            stopped = "early stopping"
            break
    if best_weights is not None:
        trainer.model.set_weights(best_weights)
    best = min(history, key=lambda r: r.get("val_loss", r["loss"])) if history else {}
    summary = {
        "val_loss": best.get("val_loss"),
        "val_accuracy": best.get("val_accuracy"),
        "loss": best.get("loss"),
        "accuracy": best.get("accuracy"),
        "epochs": len(history),
        "best_epoch": best.get("epoch"),
        "steps": step,
        "train_seconds": train_seconds,
        "train_tokens_per_sec": trained_tokens / train_seconds if train_seconds > 0 else 0.0,
        # Wall-clock from the start of the run (data preparation included) to the end of training.
        "budget_seconds_used": time.monotonic() - started,
        "stopped": stopped,
    }
    return history, summary
