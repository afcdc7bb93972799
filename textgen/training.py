"""Training: the project's own distributed training step around Keras layers, losses and optimizers.

Why not `model.fit`: Keras 3's `fit` fails under MultiWorkerMirroredStrategy, and optimizer-level
gradient accumulation breaks under MirroredStrategy. One `tf.function` step run with `strategy.run`
works under every strategy, accumulates micro-batch gradients itself and applies them once.
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
from textgen.data import num_batches, stream_num_batches, stream_windows_dataset, windows_dataset
from textgen.errors import TextgenError
from textgen.evaluate import evaluate_messages
from textgen.model import build_model, carried_state_model, state_sizes
from textgen.spec import ModelSpec, TrainConfig
from textgen.strategy import is_chief, pick_precision_policy, pick_strategy, set_precision_policy
from textgen.tokenizers import Tokenizer, build_tokenizer

log = logging.getLogger(__name__)

# Share of the steps spent warming the learning rate up from zero (stabilises Adam's first steps),
# at most MAX_WARMUP_STEPS.
WARMUP_FRACTION = 0.03
MAX_WARMUP_STEPS = 50
# The learning rate decays to this share of its peak by the end of the run (time or steps).
FINAL_LR_FRACTION = 0.05
# In-training validation looks at this many batches at most; the final evaluation reads everything.
MAX_VALIDATION_BATCHES = 48


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


def split_validation(messages: list[str], fraction: float) -> tuple[list[str], list[str]]:
    """Hold out the last `fraction` of the characters: whole messages, or the tail of a single document."""
    if fraction <= 0:
        return messages, []
    total = sum(len(message) for message in messages)
    target = total * (1 - fraction)
    if len(messages) == 1:
        cut = int(target)
        return [messages[0][:cut]], [messages[0][cut:]]
    cumulative = np.cumsum([len(message) for message in messages])
    index = int(np.searchsorted(cumulative, target, side="right"))
    index = min(max(index, 1), len(messages) - 1)
    return messages[:index], messages[index:]


class _LearningRateSchedule:
    """Linear warm-up over the first steps, then cosine decay over whichever runs out first: the steps
    or the time budget.

    The warm-up counts steps, not seconds: a time budget's first seconds go to reading the corpus and
    compiling the step, and a model that meets the peak rate on its very first updates can saturate
    its gates and spend the rest of a short run recovering.
    """

    def __init__(self, peak: float, total_steps: int, time_budget: float | None) -> None:
        self.peak = peak
        self.total_steps = max(1, total_steps)
        self.time_budget = time_budget
        self.warmup_steps = max(1, min(MAX_WARMUP_STEPS, int(WARMUP_FRACTION * self.total_steps)))

    def progress(self, step: int, elapsed: float) -> float:
        done = step / self.total_steps
        if self.time_budget:
            done = max(done, elapsed / self.time_budget)
        return min(1.0, done)

    def __call__(self, step: int, elapsed: float) -> float:
        warmup = min(1.0, step / self.warmup_steps)
        cosine = 0.5 * (1 + math.cos(math.pi * self.progress(step, elapsed)))
        return self.peak * warmup * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * cosine)


class Trainer:
    """Owns the model, optimizer and compiled steps for one training run under one strategy.

    With `carry_state`, a causal model's recurrent state flows from each step into the next (the data
    must then come from `stream_windows_dataset`, where row b of a step continues row b of the one
    before); gradients stop at step boundaries (truncated backpropagation through time).
    """

    def __init__(
        self,
        model: keras.Model,
        spec: ModelSpec,
        config: TrainConfig,
        strategy: tf.distribute.Strategy,
        carry_state: bool = False,
    ):
        self.model = model
        self.spec = spec
        self.config = config
        self.strategy = strategy
        self.carry_state = carry_state and spec.causal
        with strategy.scope():
            self.optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)
            self.optimizer.build(model.trainable_variables)
            self.state_model = carried_state_model(model, spec) if self.carry_state else None
        self._train_step = self._compile_train_step()
        self._eval_step = self._compile_eval_step()
        self._agree: Callable | None = None

    def _token_losses(
        self, inputs: tf.Tensor, labels: tf.Tensor, training: bool, states: list[tf.Tensor] | None = None
    ) -> tuple[tf.Tensor, tf.Tensor, list[tf.Tensor]]:
        if states and self.state_model is not None:
            logits, *states = self.state_model([inputs, *states], training=training)
            # Under mixed precision the state comes back in the compute dtype; keep one dtype across steps.
            states = [tf.cast(state, tf.float32) for state in states]
        else:
            logits = self.model(inputs, training=training)
        losses = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), labels), tf.float32)
        return losses, correct, states or []

    def _compile_train_step(self) -> Callable:
        config = self.config
        strategy = self.strategy
        variables = self.model.trainable_variables

        def replica_step(inputs: tf.Tensor, labels: tf.Tensor, states: list[tf.Tensor]):
            context = tf.distribute.get_replica_context()
            replicas = strategy.num_replicas_in_sync
            if config.grad_accum == 1:
                inputs, labels = inputs[:, None], labels[:, None]
            micro_batches = config.grad_accum
            # Every token of the global batch weighs the same: divide by the global token count.
            tokens_per_replica = tf.cast(tf.size(labels), tf.float32)
            global_tokens = tokens_per_replica * replicas
            gradients = [tf.zeros_like(v) for v in variables]
            loss_sum = tf.constant(0.0)
            correct_sum = tf.constant(0.0)
            # A Python range unrolls the single micro-batch; tf.range keeps k of them one graph loop.
            for index in range(1) if micro_batches == 1 else tf.range(micro_batches):
                with tf.GradientTape() as tape:
                    losses, correct, next_states = self._token_losses(
                        inputs[:, index], labels[:, index], training=True, states=states
                    )
                    scaled = tf.reduce_sum(losses) / global_tokens
                step_gradients = tape.gradient(scaled, variables)
                gradients = [g + s for g, s in zip(gradients, step_gradients, strict=True)]
                loss_sum += tf.reduce_sum(losses)
                correct_sum += tf.reduce_sum(correct)
                states = [tf.stop_gradient(state) for state in next_states]
            # Clip the global gradient (summed over replicas) rather than each replica's share...
            gradients = context.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
            gradients, _ = tf.clip_by_global_norm(gradients, config.clipnorm)
            # ...then hand each replica 1/n of it: Keras' optimizer sums over replicas again when applying.
            gradients = [g / replicas for g in gradients]
            self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
            return loss_sum, correct_sum, tokens_per_replica, states

        @tf.function
        def train_step(inputs, labels, states):
            *results, states = strategy.run(replica_step, args=(inputs, labels, states))
            totals = [strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in results]
            return totals, states

        return train_step

    def _compile_eval_step(self) -> Callable:
        strategy = self.strategy

        def replica_step(inputs, labels, states):
            losses, correct, states = self._token_losses(inputs, labels, training=False, states=states)
            totals = (tf.reduce_sum(losses), tf.reduce_sum(correct), tf.cast(tf.size(labels), tf.float32))
            return (*totals, states)

        @tf.function
        def eval_step(inputs, labels, states):
            *results, states = strategy.run(replica_step, args=(inputs, labels, states))
            totals = [strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in results]
            return totals, states

        return eval_step

    def _distribute(self, dataset: tf.data.Dataset):
        # One device needs no distributed iterator: strategy.run takes plain tensors. That matters
        # because the distributed iterator's shutdown stalls for seconds at the end of every epoch
        # (its internal buffer is autotuned; see textgen.data).
        if isinstance(self.strategy, tf.distribute.OneDeviceStrategy):
            return dataset
        return self.strategy.experimental_distribute_dataset(dataset)

    def set_learning_rate(self, value: float) -> None:
        self.optimizer.learning_rate.assign(value)

    def agreed_seconds(self, *seconds: float) -> list[float]:
        """Each figure averaged over all workers (the figures themselves with one worker).

        Every worker must set the same learning rate and stop after the same step, but each reads its
        own clock; agreeing on one clock keeps mirrored weights equal and the collectives paired.
        """
        if not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return list(seconds)
        if self._agree is None:

            @tf.function
            def agree(values: tf.Tensor) -> tf.Tensor:
                local = self.strategy.run(tf.identity, args=(values,))
                return self.strategy.reduce(tf.distribute.ReduceOp.MEAN, local, axis=None)

            self._agree = agree
        return [float(v) for v in self._agree(tf.constant(seconds, dtype=tf.float64))]

    def _zero_states(self) -> list:
        if not self.carry_state:
            return []
        per_replica = self.config.batch_size // self.strategy.num_replicas_in_sync
        return [
            self.strategy.experimental_distribute_values_from_function(
                lambda _context, size=size: tf.zeros((per_replica, size), tf.float32)
            )
            for size in state_sizes(self.spec)
        ]

    def train_batches(self, dataset: tf.data.Dataset):
        """Yields `(loss, accuracy, tokens)` per optimizer step over a distributed dataset.

        The carried state starts from zeros at the start of each call (each epoch).
        """
        states = self._zero_states()
        for inputs, labels in self._distribute(dataset):
            totals, states = self._train_step(inputs, labels, states)
            loss_sum, correct_sum, tokens = (float(v) for v in totals)
            yield loss_sum / tokens, correct_sum / tokens, tokens

    def evaluate(
        self, dataset: tf.data.Dataset, max_batches: int | None = None, carry_state: bool = False
    ) -> tuple[float, float]:
        """Mean per-token loss and accuracy over `dataset`.

        With `carry_state` (for a trainer that carries state) the dataset must come from
        `stream_windows_dataset` and the state flows from window to window, as in training and in the
        final evaluation; otherwise each window starts from zeros.
        """
        loss_total = correct_total = token_total = 0.0
        if max_batches is not None:
            dataset = dataset.take(max_batches)
        states = self._zero_states() if carry_state else []
        for inputs, labels in self._distribute(dataset):
            totals, states = self._eval_step(inputs, labels, states)
            loss_sum, correct_sum, tokens = (float(v) for v in totals)
            loss_total += loss_sum
            correct_total += correct_sum
            token_total += tokens
        if token_total == 0:
            return float("nan"), float("nan")
        return loss_total / token_total, correct_total / token_total


def train_model(
    train_messages: list[str],
    out_dir: Path | str,
    *,
    spec: ModelSpec | None = None,
    config: TrainConfig | None = None,
    tokenizer: str = "byte",
    num_words: int = 10000,
    val_messages: list[str] | None = None,
    base: Path | str | None = None,
    progress: Callable[[TrainingProgress], None] | None = None,
    started: float | None = None,
    precision: str = "auto",
    strategy: tf.distribute.Strategy | None = None,
    extra_manifest: dict[str, Any] | None = None,
) -> TrainResult:
    """Train (or fine-tune from `base`) a model on `train_messages` and save a bundle to `out_dir`.

    Args:
        train_messages: the corpus; without `val_messages`, its tail (`config.val_fraction` of the
            characters) is held out for validation.
        spec: model shape (ignored with `base`, whose spec and tokenizer are kept so ids agree).
        tokenizer: `byte` (default, fixed vocabulary), `char` or `word`.
        base: a bundle to fine-tune from.
        progress: called after every step.
        started: `time.monotonic()` when the run began (corpus loading counts against the budget).
        precision: Keras dtype policy, or `auto` (mixed bfloat16 on capable accelerators).
        strategy: a distribution strategy; by default picked for the hardware (`pick_strategy`).

    Returns:
        The bundle path and metrics: `val_loss`, `val_accuracy`, `val_nats_per_char`,
        `train_tokens_per_sec`, `params`, `seconds`, `epochs`, `steps`, `stopped` (why training ended).
    """
    started = time.monotonic() if started is None else started
    config = config or TrainConfig()
    check_bundle_destination(Path(out_dir))
    keras.utils.set_random_seed(config.seed)

    base_bundle = load_bundle(base) if base is not None else None
    if base_bundle is not None:
        spec, tok = base_bundle.spec, base_bundle.tokenizer
    else:
        spec = spec or ModelSpec()
        tok = build_tokenizer(tokenizer, train_messages, num_words=num_words)

    if val_messages is None:
        train_messages, val_messages = split_validation(train_messages, config.val_fraction)
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

    policy = pick_precision_policy(strategy, precision)
    set_precision_policy(policy)
    try:
        with strategy.scope():
            model = build_model(spec, tok.vocab_size)
            if base_bundle is not None:
                model.set_weights(base_bundle.model.get_weights())
        trainer = Trainer(model, spec, config, strategy, carry_state=carry_state)
        history, summary = _fit(
            trainer,
            tok,
            train_tokens,
            val_tokens if has_validation else None,
            steps_per_epoch,
            started,
            progress,
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
        **summary,
    }
    if val_messages and sum(len(m) for m in val_messages) > 0:
        evaluation = evaluate_messages(Bundle(Path(out_dir), spec, tok, float_model), val_messages)
        metrics["val_nats_per_char"] = evaluation.nats_per_char
        metrics["val_chars"] = evaluation.chars
    metrics["seconds"] = time.monotonic() - started

    extra = {"train_config": config.to_dict(), **(extra_manifest or {})}
    if base_bundle is not None:
        extra["parent"] = str(base_bundle.path)
    metrics["saved"] = is_chief(strategy)
    if metrics["saved"]:
        bundle_path = save_bundle(
            Path(out_dir), float_model, spec, tok, metrics=metrics, history=history, extra=extra
        )
    else:
        bundle_path = Path(out_dir)
    return TrainResult(bundle=bundle_path, metrics=metrics, history=history)


def _can_carry_state(
    config: TrainConfig, spec: ModelSpec, strategy: tf.distribute.Strategy, num_tokens: int
) -> bool:
    """Whether this run can carry the state across windows (see `TrainConfig.carry_state`)."""
    if not (config.carry_state and spec.causal):
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
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The epoch loop: time budget, learning-rate schedule, validation, early stopping, best weights."""
    config, spec = trainer.config, trainer.spec
    schedule = _LearningRateSchedule(
        config.learning_rate, steps_per_epoch * config.epochs, config.time_budget
    )
    budget = config.time_budget if config.time_budget else math.inf
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
            # Leave room for the epoch's validation so the run still ends inside the budget.
            reserve = validation_seconds if val_dataset is not None else 0.0
            local_elapsed = time.monotonic() - started
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
        if val_dataset is not None:
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
