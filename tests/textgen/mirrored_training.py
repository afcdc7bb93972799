"""Run by test_training.py in its own process: logical CPU devices must be set before TensorFlow starts.

Trains the same model several ways on the same data and prints one JSON line comparing the weights:
one device against MirroredStrategy over two CPUs, with and without gradient accumulation, with the
state carried across windows, and with plain windows where two accumulated micro-batches of four
windows must equal one batch of eight. Each pair computes the same mean gradient, so weights agree.

Plain SGD without clipping: its update is the learning rate times the gradient, so a gradient off by any
factor shows in the weights (Adam normalises the scale away, and clipping can too). A control run with
the learning rate doubled stands for a gradient off by a factor of two.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from textgen.tensorflow_import import import_tensorflow  # noqa: E402

import_tensorflow()
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402

from textgen.bundle import load_bundle  # noqa: E402
from textgen.spec import ModelSpec, TrainConfig  # noqa: E402
from textgen.training import train_model  # noqa: E402

out = Path(sys.argv[1])
text = "the quick brown fox jumps over the lazy dog. " * 200
spec = ModelSpec(arch="lstm", units=16, embedding=8, seq_len=16)
ONE = "/cpu:0"
TWO = ["/cpu:0", "/cpu:1"]
SGD = {"optimizer": "sgd", "learning_rate": 1.0, "clipnorm": 1e9, "epochs": 1, "steps_per_epoch": 5}
# Validation leaves the weights of a one-epoch run as they are; the first pair runs it (on both strategies),
# the others skip it to save its tracing.
UNVALIDATED = {**SGD, "val_fraction": 0.0}
# name: (devices, config). Pairs that compute the same mean gradient on the same tokens must agree.
runs = {
    "one": (ONE, TrainConfig(batch_size=8, **SGD)),
    "mirrored": (TWO, TrainConfig(batch_size=8, **SGD)),
    "one_accum": (ONE, TrainConfig(batch_size=8, grad_accum=2, **UNVALIDATED)),
    "mirrored_accum": (TWO, TrainConfig(batch_size=8, grad_accum=2, **UNVALIDATED)),
    # Without carried state, 2 accumulated micro-batches of 4 windows are one batch of 8 windows.
    "one_windows": (ONE, TrainConfig(batch_size=8, carry_state=False, **UNVALIDATED)),
    "mirrored_accum_windows": (
        TWO,
        TrainConfig(batch_size=4, grad_accum=2, carry_state=False, **UNVALIDATED),
    ),
    # The control: what a gradient twice too large does to the same run.
    "one_doubled": (ONE, TrainConfig(batch_size=8, **{**SGD, "learning_rate": 2.0})),
}
weights, replicas = {}, {}
for name, (devices, config) in runs.items():
    if devices == ONE:
        strategy = tf.distribute.OneDeviceStrategy(ONE)
    else:
        strategy = tf.distribute.MirroredStrategy(devices)
    result = train_model([text], out / name, spec=spec, config=config, strategy=strategy)
    weights[name] = load_bundle(result.bundle).model.get_weights()
    replicas[name] = result.metrics["replicas"]

import keras  # noqa: E402

from textgen.model import build_model  # noqa: E402

keras.utils.set_random_seed(0)
initial = build_model(spec, 260).get_weights()


def max_diff(a, b):
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


print(
    json.dumps(
        {
            "replicas": replicas,
            "max_diff_mirrored": max_diff(weights["one"], weights["mirrored"]),
            "max_diff_mirrored_accum": max_diff(weights["one_accum"], weights["mirrored_accum"]),
            "max_diff_accum_windows": max_diff(weights["one_windows"], weights["mirrored_accum_windows"]),
            "moved": max_diff(weights["one"], initial),
            "max_diff_doubled_gradient": max_diff(weights["one"], weights["one_doubled"]),
        }
    )
)
