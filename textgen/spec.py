"""What a model is (`ModelSpec`) and how it is trained (`TrainConfig`): plain, validated dataclasses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from textgen.architectures.family import ArchitectureFamily
from textgen.architectures.registry import ARCHITECTURES, family_of
from textgen.errors import TextgenError

__all__ = ["ARCHITECTURES", "ModelSpec", "TrainConfig"]


@dataclass(frozen=True)
class ModelSpec:
    """The shape of a language model.

    Args:
        arch: the architecture, one of `ARCHITECTURES` (`textgen.architectures`): `simplernn`, `lstm`,
            `gru` (causal: predict every next token) or `bilstm` (encode a window of past tokens,
            predict the one after it).
        layers: stacked recurrent layers.
        units: units per recurrent layer (per direction for `bilstm`).
        embedding: size of the token embedding.
        dropout: dropout after each recurrent layer while training.
        seq_len: window length in tokens used for training (and the context a BiLSTM sees).
    """

    # Defaults for a 100-second CPU run from scratch (bench/, README): on chat, one GRU layer of 256
    # reached 1.80 nats/char where 384 reached 1.93 (1,400 steps against 770 in the same time) and 192
    # 1.86; on Tiny Shakespeare 256 beat 384 too. Longer runs (the base model) afford more width.
    arch: str = "gru"
    layers: int = 1
    units: int = 256
    embedding: int = 64
    dropout: float = 0.0
    seq_len: int = 64

    def __post_init__(self) -> None:
        family_of(self.arch)  # refuses an unknown architecture
        for name in ("layers", "units", "embedding", "seq_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise TextgenError(f"{name} must be a positive whole number, received {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise TextgenError(f"dropout must be in [0, 1), received {self.dropout!r}")

    @property
    def family(self) -> ArchitectureFamily:
        """The family that builds, lays out and decodes this architecture."""
        return family_of(self.arch)

    @property
    def causal(self) -> bool:
        """Whether the model predicts the next token at every position of a window (`ArchitectureFamily`)."""
        return self.family.causal

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Args:
        batch_size: windows per micro-batch (global, across replicas).
        learning_rate: peak learning rate of Adam (warm-up then cosine decay).
        epochs: passes over the training tokens (the time budget may stop earlier).
        time_budget: wall-clock seconds for everything from reading the corpus to the last step;
            None for no limit.
        grad_accum: micro-batches whose gradients are summed before one optimizer step.
        val_fraction: share of the corpus held out for validation (picking the best weights): the part
            just before the test part.
        test_fraction: share of the corpus, taken from its end, held out for the reported figure
            (`test_nats_per_char`); nothing is tuned on it.
        clipnorm: global gradient-norm clip.
        patience: validations without a new best (by `min_improvement`) before early stopping: epochs,
            or with `check_every` the periodic checks.
        check_every: seconds of the run between validations within an epoch (None: only at epoch ends),
            so that a run whose held-out loss levels off stops long before its budget.
        min_improvement: how much lower (nats per token) a validation loss must be to count as a new best.
        seed: seed for weights, data order and dropout, for repeatable runs.
        steps_per_epoch: cap on optimizer steps per epoch (None: one pass over the data).
        carry_state: causal models carry their recurrent state from each window into the next window
            of the same text (truncated backpropagation through time), so they learn to use context
            longer than one window, as they do when generating. Off for BiLSTMs and multi-worker runs.
        state_reset: with `carry_state`, the share of rows whose state is reset to zeros at each step,
            so that the model learns to start from a fresh state anywhere in the text (a reply, an
            evaluation segment). With 64-token windows and 32 rows, 0.05 resets 1.6 rows a step and still
            carries ~1,280 tokens on average (chat: 1.762 against 1.774 nats/char with 0.1).
        optimizer: `adam` (default) or `sgd` (plain gradient descent, whose updates show the gradient's
            scale; Adam's hide it).
    """

    batch_size: int = 32
    # Measured on chat at 100 s (seed 2, same machine state): 5e-3 reached 1.748 nats/char, 4e-3 1.774.
    learning_rate: float = 5e-3
    epochs: int = 20
    time_budget: float | None = None
    grad_accum: int = 1
    val_fraction: float = 0.1
    test_fraction: float = 0.0
    clipnorm: float = 1.0
    patience: int = 3
    check_every: float | None = None
    min_improvement: float = 1e-4
    seed: int = 0
    steps_per_epoch: int | None = None
    carry_state: bool = True
    state_reset: float = 0.05
    optimizer: str = "adam"

    def __post_init__(self) -> None:
        for name in ("batch_size", "epochs", "grad_accum"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise TextgenError(f"{name} must be a positive whole number, received {value!r}")
        if not self.learning_rate > 0:
            raise TextgenError(f"learning rate must be positive, received {self.learning_rate!r}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise TextgenError(
                f"time budget must be a positive number of seconds, received {self.time_budget!r}"
            )
        if not 0.0 <= self.val_fraction < 0.5:
            raise TextgenError(f"val fraction must be in [0, 0.5), received {self.val_fraction!r}")
        if not 0.0 <= self.test_fraction < 0.5 or self.val_fraction + self.test_fraction >= 0.5:
            raise TextgenError(
                f"test fraction must be in [0, 0.5) and leave half the corpus for training, "
                f"received {self.test_fraction!r} with val fraction {self.val_fraction!r}"
            )
        if not 0.0 <= self.state_reset <= 1.0:
            raise TextgenError(f"state reset must be in [0, 1], received {self.state_reset!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise TextgenError(f"unknown optimizer {self.optimizer!r}; use adam or sgd")
        if not self.clipnorm > 0:
            raise TextgenError(f"clipnorm must be positive, received {self.clipnorm!r}")
        if self.patience < 1:
            raise TextgenError(f"patience must be at least 1, received {self.patience!r}")
        if self.check_every is not None and not self.check_every > 0:
            raise TextgenError(
                f"check every must be a positive number of seconds, received {self.check_every!r}"
            )
        if not self.min_improvement >= 0:
            raise TextgenError(f"min improvement must be zero or more, received {self.min_improvement!r}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise TextgenError(f"steps per epoch must be positive, received {self.steps_per_epoch!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
