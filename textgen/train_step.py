"""The project's own distributed training step around Keras layers, losses and optimizers.

Why not `model.fit`: Keras 3's `fit` fails under MultiWorkerMirroredStrategy, and optimizer-level
gradient accumulation breaks under MirroredStrategy. One `tf.function` step run with `strategy.run`
works under every strategy, accumulates micro-batch gradients itself and applies them once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import keras
import tensorflow as tf

from textgen.data import EpochBatches
from textgen.spec import ModelSpec, TrainConfig

_OPTIMIZERS: dict[str, Callable[..., keras.optimizers.Optimizer]] = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
}


class Trainer:
    """Owns the model, optimizer and compiled steps for one training run under one strategy.

    With `carry_state`, and a family that carries state (`ArchitectureFamily.carries_state`), the state
    flows from each step into the next (the data must then come from `stream_window_batches`, where row
    b of a step continues row b of the one before, and whose `carry` mask resets chosen rows to the zero
    state); gradients stop at step boundaries (truncated backpropagation through time).
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
        self.carry_state = carry_state and spec.family.carries_state
        with strategy.scope():
            self.optimizer = _OPTIMIZERS[config.optimizer](learning_rate=config.learning_rate)
            self.optimizer.build(model.trainable_variables)
            self.state_model = spec.family.carried_state_model(model, spec) if self.carry_state else None
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

        def replica_step(inputs: tf.Tensor, labels: tf.Tensor, carry: tf.Tensor, states: list[tf.Tensor]):
            context = tf.distribute.get_replica_context()
            states = [state * carry[:, None] for state in states]
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

        # Autograph turns Python control flow into graph ops. Only the loop over accumulated micro-batches
        # needs it; without accumulation the step is straight-line code, and converting it costs about
        # 0.1 s of CPU at the start of every run.
        @tf.function(autograph=config.grad_accum > 1)
        def train_step(inputs, labels, carry, states):
            *results, states = strategy.run(replica_step, args=(inputs, labels, carry, states))
            totals = [strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in results]
            return totals, states

        return train_step

    def _compile_eval_step(self) -> Callable:
        strategy = self.strategy

        def replica_step(inputs, labels, states):
            losses, correct, states = self._token_losses(inputs, labels, training=False, states=states)
            totals = (tf.reduce_sum(losses), tf.reduce_sum(correct), tf.cast(tf.size(labels), tf.float32))
            return (*totals, states)

        @tf.function(autograph=False)  # straight-line code: nothing for autograph to convert
        def eval_step(inputs, labels, states):
            *results, states = strategy.run(replica_step, args=(inputs, labels, states))
            totals = [strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for value in results]
            return totals, states

        return eval_step

    def _distribute(self, batches: EpochBatches | tf.data.Dataset) -> Iterable:
        # One device needs no distributed iterator: strategy.run takes plain tensors, and NumPy batches
        # need no tf.data pipeline at all (`EpochBatches`). That matters because the distributed
        # iterator's shutdown stalls for seconds at the end of every epoch (its internal buffer is
        # autotuned; see textgen.data).
        if isinstance(self.strategy, tf.distribute.OneDeviceStrategy):
            return batches
        dataset = batches.dataset() if isinstance(batches, EpochBatches) else batches
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
            for size in self.spec.family.state_sizes(self.spec)
        ]

    def train_batches(self, dataset: EpochBatches | tf.data.Dataset) -> Iterator[tuple[float, float, float]]:
        """Yields `(loss, accuracy, tokens)` per optimizer step over one epoch's batches.

        The carried state starts from zeros at the start of each call (each epoch); elements are
        `(inputs, labels, carry)` with carried state, `(inputs, labels)` without.
        """
        states = self._zero_states()
        for element in self._distribute(dataset):
            inputs, labels, *carry = element
            # Without carried state there are no states to mask: a scalar stands in for the mask.
            keep = carry[0] if carry else tf.ones(())
            totals, states = self._train_step(inputs, labels, keep, states)
            loss_sum, correct_sum, tokens = (float(v) for v in totals)
            yield loss_sum / tokens, correct_sum / tokens, tokens

    def evaluate(
        self,
        dataset: EpochBatches | tf.data.Dataset,
        max_batches: int | None = None,
        carry_state: bool = False,
    ) -> tuple[float, float]:
        """Mean per-token loss and accuracy over `dataset`.

        With `carry_state` (for a trainer that carries state) the batches must come from
        `stream_window_batches` and the state flows from window to window, as in training and in the
        final evaluation; otherwise each window starts from zeros.
        """
        loss_total = correct_total = token_total = 0.0
        if max_batches is not None:
            dataset = dataset.take(max_batches)
        states = self._zero_states() if carry_state else []
        for inputs, labels, *_carry in self._distribute(dataset):
            totals, states = self._eval_step(inputs, labels, states)
            loss_sum, correct_sum, tokens = (float(v) for v in totals)
            loss_total += loss_sum
            correct_total += correct_sum
            token_total += tokens
        if token_total == 0:
            return float("nan"), float("nan")
        return loss_total / token_total, correct_total / token_total
