"""The epoch loop: the time budget, the learning-rate schedule, validation, early stopping, best weights.

Validation runs at the end of every epoch and, with `TrainConfig.check_every`, also every that many
seconds of training, so that a run whose held-out loss has stopped improving stops within minutes instead
of spending its whole budget (a fine-tune often levels off long before its first epoch ends); `patience`
then counts those checks.

`textgen.training` prepares the data and the model and runs an `EpochLoop`; the compiled step it drives is
`textgen.train_step.Trainer`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from textgen.data import EpochBatches, stream_num_batches, stream_window_batches, window_batches
from textgen.errors import TextgenError
from textgen.schedule import LearningRateSchedule
from textgen.train_step import Trainer

log = logging.getLogger(__name__)

# In-training validation looks at this many batches at most.
MAX_VALIDATION_BATCHES = 48
# Until the first validation is timed, it is guessed at this many seconds (compiling its step) plus
# this share of a training step per batch (forward only).
FIRST_VALIDATION_SECONDS = 2.0
VALIDATION_STEP_SHARE = 0.5


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


ProgressCallback = Callable[[TrainingProgress], None]


@dataclass
class FitResult:
    """What the loop did: one record per epoch, and the summary that joins the run's metrics."""

    history: list[dict[str, Any]]
    summary: dict[str, Any]


@dataclass
class _Epoch:
    """The training steps of one epoch (validation aside)."""

    steps: int = 0
    loss_sum: float = 0.0
    accuracy_sum: float = 0.0
    seconds: float = 0.0
    out_of_time: bool = False
    # Stopped by the periodic checks: the held-out loss made no new best for `patience` checks.
    plateaued: bool = False


class EpochLoop:
    """Trains `trainer.model` epoch by epoch and leaves it with the weights of its best epoch.

    Training stops `final_reserve` seconds before the time budget, leaving that time to the final
    evaluation and the save; the learning rate decays over the time training has. The fields are what
    carries over from epoch to epoch.

    Args:
        trainer: The compiled steps around the model.
        train_tokens: The training part, encoded.
        val_tokens: The validation part, encoded; None to monitor the training loss instead.
        steps_per_epoch: Optimizer steps in one epoch.
        started: `time.monotonic()` when the run began (the budget counts from it).
        progress: Called after every step.
        final_reserve: Seconds of the budget kept for what follows training.
    """

    def __init__(
        self,
        trainer: Trainer,
        train_tokens: np.ndarray,
        val_tokens: np.ndarray | None,
        steps_per_epoch: int,
        started: float,
        progress: ProgressCallback | None,
        final_reserve: float = 0.0,
    ) -> None:
        self.trainer = trainer
        self.config = config = trainer.config
        self.train_tokens = train_tokens
        self.steps_per_epoch = steps_per_epoch
        self.started = started
        self.progress = progress
        self.budget = math.inf
        if config.time_budget:
            # A budget too small for its own final evaluation still trains for a quarter of it.
            self.budget = max(config.time_budget - final_reserve, 0.25 * config.time_budget)
        self.schedule = LearningRateSchedule(
            config.learning_rate, steps_per_epoch * config.epochs, self.budget if config.time_budget else None
        )
        self.history: list[dict[str, Any]] = []
        self.best_loss = math.inf
        self.best_weights: list[np.ndarray] | None = None
        self.stale_checks = 0
        # With periodic checks, each check without a new best halves the learning rate and goes back to
        # the best weights: a run stopped early has still annealed (measured on a channel fine-tune, a
        # run stopped at full rate scored 0.07 nats/char worse than a 30 s run whose rate had decayed).
        self.rate_scale = 1.0
        # Validations so far, within and at the end of epochs, and the training seconds of the last.
        self.checks = 0
        self.last_check_seconds = 0.0
        self.last_validation: tuple[float, float] | None = None
        # The last step's seconds since the start, as every worker agrees (checks pair across workers).
        self.last_elapsed = 0.0
        self.step = 0
        self.trained_tokens = 0.0
        self.train_seconds = 0.0
        self.validation_seconds = 0.0
        self.stopped = "epochs"
        self.val_dataset: EpochBatches | None = None
        self.val_carry = False
        if val_tokens is not None:
            self.val_dataset, self.val_carry = _validation_dataset(trainer, val_tokens)

    def run(self) -> FitResult:
        """Train until the epochs, the time budget or the patience run out.

        Raises:
            TextgenError: The time budget was spent before training began (reading a huge corpus): a
                model of a step or two would be saved after the budget, so none is.
        """
        self._refuse_a_spent_budget()
        for epoch in range(1, self.config.epochs + 1):
            if epoch > 1 and self._no_time_for_another_epoch():
                self.stopped = "time budget"
                break
            epoch_steps = self._train_epoch(epoch)
            if epoch_steps.steps == 0:
                self.stopped = "time budget"
                break
            record = self._record(epoch, epoch_steps)
            if epoch_steps.plateaued:
                self.stopped = "early stopping"
                break
            self._keep_if_best(record.get("val_loss", record["loss"]))
            if epoch_steps.out_of_time:
                self.stopped = "time budget"
                break
            if self.stale_checks >= self.config.patience:
                self.stopped = "early stopping"
                break
        if self.best_weights is not None:
            self.trainer.model.set_weights(self.best_weights)
        return FitResult(self.history, self._summary())

    def _refuse_a_spent_budget(self) -> None:
        budget = self.config.time_budget
        if not budget:
            return
        # Agreed by every worker, so that all of them stop here or none does.
        elapsed = self.trainer.agreed_seconds(time.monotonic() - self.started)[0]
        if elapsed >= budget:
            raise TextgenError(
                f"the time budget of {budget:g} s was spent before training began ({elapsed:.0f} s reading "
                "and preparing the corpus); nothing was trained or saved: raise the time budget, or train on "
                "fewer of the newest messages (chatsmith train --max-corpus-chars)"
            )

    def _no_time_for_another_epoch(self) -> bool:
        reserve = self.validation_seconds if self.val_dataset is not None else 0.0
        elapsed = self.trainer.agreed_seconds(time.monotonic() - self.started + reserve)[0]
        return elapsed >= self.budget

    def _epoch_dataset(self, epoch: int) -> EpochBatches:
        config, spec = self.config, self.trainer.spec
        if self.trainer.carry_state:
            dataset = stream_window_batches(
                self.train_tokens,
                spec.seq_len,
                config.batch_size,
                seed=config.seed,
                epoch=epoch,
                grad_accum=config.grad_accum,
                max_steps=config.steps_per_epoch,
                reset_rate=config.state_reset,
            )
        else:
            dataset = window_batches(
                self.train_tokens,
                spec.seq_len,
                config.batch_size,
                spec.causal,
                seed=config.seed,
                epoch=epoch,
                grad_accum=config.grad_accum,
            )
        return dataset.take(self.steps_per_epoch)

    def _train_epoch(self, epoch: int) -> _Epoch:
        """The training steps of `epoch`, stopped early when the budget (less room for validation) ends."""
        result = _Epoch()
        dataset = self._epoch_dataset(epoch)
        epoch_start = time.monotonic()
        first_step_end = epoch_start
        for loss, accuracy, tokens in self.trainer.train_batches(dataset):
            self.step += 1
            result.steps += 1
            self.trained_tokens += tokens
            result.loss_sum += loss
            result.accuracy_sum += accuracy
            if result.steps == 1:
                first_step_end = time.monotonic()
            elapsed, elapsed_with_reserve = self._elapsed(epoch_start, first_step_end, result.steps)
            learning_rate = self.schedule(self.step, elapsed) * self.rate_scale
            self.trainer.set_learning_rate(learning_rate)
            if self.progress is not None:
                self._report(epoch, result.steps, loss, accuracy, elapsed, learning_rate)
            if elapsed_with_reserve >= self.budget:
                result.out_of_time = True
                break
            self.last_elapsed = elapsed
            if self._check_due(elapsed) and self._check_plateaued():
                result.plateaued = True
                break
        result.seconds = time.monotonic() - epoch_start
        self.train_seconds += result.seconds
        return result

    def _elapsed(self, epoch_start: float, first_step_end: float, epoch_steps: int) -> tuple[float, float]:
        """Seconds since the run began, without and with room for this epoch's validation, as every
        worker agrees.

        Room for the validation keeps the run inside the budget; before the first one is timed, it is
        guessed from the training steps (a validation batch runs forward only). A first epoch cut short
        by the budget is not validated (there are no other weights to choose from), so it needs no room.
        """
        reserve = 0.0
        now = time.monotonic()
        local_elapsed = now - self.started
        if self.val_dataset is not None:
            # An epoch's first step can hold the step's tracing, worth many steps on a slow machine: once
            # there are others, it is left out of the mean that guesses the validation's length.
            timed_steps = max(1, epoch_steps - 1)
            mean_step = (now - (first_step_end if epoch_steps > 1 else epoch_start)) / timed_steps
            validation_batches = min(MAX_VALIDATION_BATCHES, len(self.val_dataset))
            guess = FIRST_VALIDATION_SECONDS + validation_batches * mean_step * VALIDATION_STEP_SHARE
            finishes_epoch = (self.steps_per_epoch - epoch_steps) * mean_step < self.budget - local_elapsed
            if self.history or self.checks or finishes_epoch:
                reserve = self.validation_seconds or guess
        elapsed, elapsed_with_reserve = self.trainer.agreed_seconds(local_elapsed, local_elapsed + reserve)
        return elapsed, elapsed_with_reserve

    def _report(
        self, epoch: int, epoch_steps: int, loss: float, accuracy: float, elapsed: float, learning_rate: float
    ) -> None:
        assert self.progress is not None
        done = self.schedule.progress(self.step, elapsed)
        self.progress(
            TrainingProgress(
                epoch,
                self.config.epochs,
                epoch_steps,
                self.steps_per_epoch,
                loss,
                accuracy,
                elapsed,
                elapsed / done - elapsed if done > 0 else None,
                done,
                learning_rate=learning_rate,
            )
        )

    def _record(self, epoch: int, trained: _Epoch) -> dict[str, Any]:
        """The epoch's history record, validated unless it is a first epoch the budget cut short."""
        record: dict[str, Any] = {
            "epoch": epoch,
            "steps": trained.steps,
            "loss": trained.loss_sum / trained.steps,
            "accuracy": trained.accuracy_sum / trained.steps,
            "seconds": trained.seconds,
        }
        if trained.plateaued and self.last_validation is not None:
            # The check that stopped the run just validated these weights.
            record["val_loss"], record["val_accuracy"] = self.last_validation
        elif self.val_dataset is not None and (self.history or not trained.out_of_time):
            record["val_loss"], record["val_accuracy"] = self._validate()
        self.history.append(record)
        log.info(
            "epoch %d: %s", epoch, {k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}
        )
        return record

    def _validate(self) -> tuple[float, float]:
        """Loss and accuracy on the validation part, timed (the budget keeps room for the next one)."""
        assert self.val_dataset is not None
        validation_start = time.monotonic()
        self.last_validation = self.trainer.evaluate(
            self.val_dataset, MAX_VALIDATION_BATCHES, carry_state=self.val_carry
        )
        self.validation_seconds = time.monotonic() - validation_start
        self.checks += 1
        self.last_check_seconds = self.last_elapsed
        return self.last_validation

    def _check_due(self, elapsed: float) -> bool:
        """Whether `check_every` seconds of the run have passed since the last validation, with time
        left in the budget for one (a check too close to the end is skipped: the budget is the ceiling).
        """
        every = self.config.check_every
        if every is None or self.val_dataset is None:
            return False
        room = self.validation_seconds or FIRST_VALIDATION_SECONDS
        return elapsed - self.last_check_seconds >= every and elapsed + room < self.budget

    def _check_plateaued(self) -> bool:
        """Validate now; True when `patience` checks in a row brought no new best."""
        val_loss, _ = self._validate()
        self._keep_if_best(val_loss)
        log.info(
            "check %d at step %d: val_loss %.4f (best %.4f)", self.checks, self.step, val_loss, self.best_loss
        )
        return self.stale_checks >= self.config.patience

    def _keep_if_best(self, monitored: float) -> None:
        """Keep the weights of a new best; count a check that gains less than `min_improvement` as stale
        (with periodic checks, its lower best still counts for the weights, and the rate halves)."""
        checking = self.config.check_every is not None
        gained = self.best_loss - monitored
        if gained > (0.0 if checking else self.config.min_improvement):
            self.best_loss, self.best_weights = monitored, self.trainer.model.get_weights()
        if gained > self.config.min_improvement:
            self.stale_checks = 0
            return
        self.stale_checks += 1
        if checking and self.best_weights is not None:
            self.rate_scale *= 0.5
            self.trainer.model.set_weights(self.best_weights)

    def _summary(self) -> dict[str, Any]:
        history = self.history
        best = min(history, key=lambda r: r.get("val_loss", r["loss"])) if history else {}
        val_loss = best.get("val_loss")
        if val_loss is not None and self.best_loss < val_loss:
            # A check within an epoch kept better weights than any epoch's end: those are the model's.
            val_loss = self.best_loss
        return {
            "val_loss": val_loss,
            "val_accuracy": best.get("val_accuracy"),
            "loss": best.get("loss"),
            "accuracy": best.get("accuracy"),
            "epochs": len(history),
            "best_epoch": best.get("epoch"),
            "steps": self.step,
            "train_seconds": self.train_seconds,
            "train_tokens_per_sec": self.trained_tokens / self.train_seconds
            if self.train_seconds > 0
            else 0.0,
            # Wall-clock from the start of the run (data preparation included) to the end of training.
            "budget_seconds_used": time.monotonic() - self.started,
            "stopped": self.stopped,
            "validations": self.checks,
        }


def _validation_dataset(trainer: Trainer, val_tokens: np.ndarray) -> tuple[EpochBatches, bool]:
    """Held-out windows read the way the model trains (streamed with carried state, when the held-out
    text is long enough for one window per stream), else fresh windows. Returns (batches, carry)."""
    config, spec = trainer.config, trainer.spec
    if trainer.carry_state and stream_num_batches(len(val_tokens), spec.seq_len, config.batch_size) > 0:
        return stream_window_batches(val_tokens, spec.seq_len, config.batch_size), True
    # Every position is a BiLSTM window; a sample of them, drawn once from the whole held-out text, is
    # enough to pick the best epoch, and every check reads the same one.
    sample = None if spec.causal else MAX_VALIDATION_BATCHES
    batches = window_batches(
        val_tokens,
        spec.seq_len,
        config.batch_size,
        spec.causal,
        seed=config.seed,
        drop_remainder=False,
        sample_steps=sample,
    )
    return batches, False
