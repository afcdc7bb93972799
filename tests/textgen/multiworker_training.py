"""One worker of a two-process MultiWorkerMirroredStrategy run; started by test_multiworker.py.

Usage: `TF_CONFIG=... python multiworker_training.py OUT_DIR`. Each process:

1. lets `textgen.strategy.pick_strategy` choose the strategy from `TF_CONFIG` (it must pick
   MultiWorkerMirroredStrategy: the cluster lists two workers);
2. runs the project's own training step (`textgen.train_step.Trainer`) for a few steps and writes the
   model's weights after every step to `OUT_DIR/worker<i>-step<k>.npz`, plus a fingerprint of the
   per-replica batches this worker fed (to show that each worker trained on its own share of the batch);
3. runs `textgen.training.train_model` end to end into `OUT_DIR/bundle` (only the chief writes it);
4. the chief also trains the same steps on one device over the same global batches, as a reference;
5. writes `OUT_DIR/worker<i>.json` with what it saw;
6. runs `train_model` once more under a time budget, worker 1 starting a little later than worker 0
   (as on two hosts), and writes `OUT_DIR/budget<i>.json`: the steps it ran and the schedule's progress
   after each, which sets the learning rate. Those must agree between workers.

MultiWorkerMirroredStrategy must be created before TensorFlow runs anything else, so this is a script.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the test is about processes, not devices: CPU only

import numpy as np  # noqa: E402

from textgen.tensorflow_import import import_tensorflow  # noqa: E402

import_tensorflow()
import tensorflow as tf  # noqa: E402

from textgen.strategy import is_chief, pick_strategy  # noqa: E402

started = time.monotonic()
out = Path(sys.argv[1])
task_index = int(json.loads(os.environ["TF_CONFIG"])["task"]["index"])
strategy = pick_strategy()

import keras  # noqa: E402

from textgen.data import window_batches  # noqa: E402
from textgen.model import build_model  # noqa: E402
from textgen.spec import ModelSpec, TrainConfig  # noqa: E402
from textgen.tokenizers import build_tokenizer  # noqa: E402
from textgen.train_step import Trainer  # noqa: E402
from textgen.training import TrainingProgress, train_model  # noqa: E402

STEPS = 3
BUDGET_SECONDS = 2.0
BUDGET_SKEW_SECONDS = 1.0
TEXT = "the quick brown fox jumps over the lazy dog. " * 60
SPEC = ModelSpec(arch="lstm", units=16, embedding=8, seq_len=16)
# carry_state=False: a multi-worker run never carries state (train_model turns it off there too).
CONFIG = TrainConfig(epochs=1, batch_size=8, steps_per_epoch=STEPS, carry_state=False, seed=0)

tokenizer = build_tokenizer("byte", [TEXT])
tokens = tokenizer.encode_messages([TEXT])


def dataset() -> tf.data.Dataset:
    """The same global batches on every worker (same seed); the strategy hands each worker its share."""
    batches = window_batches(tokens, SPEC.seq_len, CONFIG.batch_size, SPEC.causal, seed=0, epoch=1)
    return batches.dataset().take(STEPS)


report: dict = {
    "task_index": task_index,
    # tf.distribute.MultiWorkerMirroredStrategy's class is named CollectiveAllReduceStrategy.
    "multi_worker": isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy),
    "num_replicas_in_sync": strategy.num_replicas_in_sync,
    "is_chief": is_chief(strategy),
}

# What this worker's replica receives of each global batch: a sum of its token ids and its row count.
local_batches = []
for inputs, _labels in strategy.experimental_distribute_dataset(dataset()):
    local = strategy.experimental_local_results(inputs)
    local_batches.append(
        [int(sum(int(tf.reduce_sum(t)) for t in local)), sum(int(t.shape[0]) for t in local)]
    )
report["local_batches"] = local_batches
report["global_batches"] = [
    [int(tf.reduce_sum(inputs)), int(inputs.shape[0])] for inputs, _labels in dataset()
]

# 1. The project's training step, step by step, with the weights dumped after each one.
keras.utils.set_random_seed(0)
with strategy.scope():
    model = build_model(SPEC, tokenizer.vocab_size)
trainer = Trainer(model, SPEC, CONFIG, strategy, carry_state=False)
np.savez(out / f"worker{task_index}-step0.npz", *model.get_weights())
steps = []
for step, (loss, accuracy, step_tokens) in enumerate(trainer.train_batches(dataset()), start=1):
    np.savez(out / f"worker{task_index}-step{step}.npz", *model.get_weights())
    steps.append({"step": step, "loss": loss, "accuracy": accuracy, "tokens": step_tokens})
    print(f"worker {task_index}: step {step} loss {loss:.4f} tokens {step_tokens:g}", flush=True)
report["steps"] = steps

# 2. train_model end to end, strategy picked above; only the chief writes the bundle.
progress_steps: list[int] = []


def on_progress(progress: TrainingProgress) -> None:
    progress_steps.append(progress.step)


result = train_model(
    [TEXT],
    out / "bundle",
    spec=SPEC,
    config=TrainConfig(epochs=2, batch_size=8, steps_per_epoch=2, seed=0),
    strategy=strategy,
    progress=on_progress,
)
report["train_model"] = {
    "progress_steps": progress_steps,
    "strategy": result.metrics["strategy"],
    "replicas": result.metrics["replicas"],
    "steps": result.metrics["steps"],
    "carry_state": result.metrics["carry_state"],
    "val_loss": result.metrics["val_loss"],
    "bundle": str(result.bundle),
}

# 3. The chief's reference: the same steps on one device over the whole global batches.
if task_index == 0:
    keras.utils.set_random_seed(0)
    reference_strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with reference_strategy.scope():
        reference_model = build_model(SPEC, tokenizer.vocab_size)
    reference = Trainer(reference_model, SPEC, CONFIG, reference_strategy, carry_state=False)
    for step, _ in enumerate(reference.train_batches(dataset()), start=1):
        np.savez(out / f"reference-step{step}.npz", *reference_model.get_weights())

report["seconds"] = time.monotonic() - started
(out / f"worker{task_index}.json").write_text(json.dumps(report), encoding="utf-8")
print(f"worker {task_index}: done in {report['seconds']:.1f}s", flush=True)

# 4. A time budget, with worker 1 starting later. Written last, so that the phases above are reported
# even if this one breaks. No validation: should the workers ever disagree on when to stop, the one that
# stops ends its process and the other fails at once instead of waiting in a mismatched collective.
if task_index == 1:
    time.sleep(BUDGET_SKEW_SECONDS)
fractions: list[float] = []
budget_result = train_model(
    [TEXT],
    out / "budget-bundle",
    spec=SPEC,
    config=TrainConfig(
        epochs=1000, batch_size=8, time_budget=BUDGET_SECONDS, val_fraction=0.0, patience=1000, seed=0
    ),
    strategy=strategy,
    progress=lambda progress: fractions.append(progress.fraction),
)
budget_report = {
    "steps": budget_result.metrics["steps"],
    "stopped": budget_result.metrics["stopped"],
    "fractions": fractions,
}
(out / f"budget{task_index}.json").write_text(json.dumps(budget_report), encoding="utf-8")
print(f"worker {task_index}: time-budget run done, {budget_report['steps']} steps", flush=True)
