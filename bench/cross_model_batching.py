"""Does decoding requests for different models of one spec in one step pay? Measured, not assumed.

    python -m bench.cross_model_batching

Each of M models (GRU, same spec, different random weights) decodes one 160-token reply. Per model: what
the bots do, M separate `CausalStepper.step` loops with a batch of one. Stacked: the M models' weights
stacked once, then one step for all of them (`np.matmul` over the stacked recurrent kernels, a gather
from the stacked input tables, one batched product for the logits). Only the recurrent steps and the
logits are timed; sampling costs the same either way.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from textgen.architectures.cells import sigmoid
from textgen.architectures.recurrent import GRU, CausalStepper
from textgen.engine import limit_blas_threads
from textgen.spec import ModelSpec
from textgen.weights import expected_shapes

TOKENS = 160
VOCAB = 260


def random_weights(spec: ModelSpec, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(0, 0.2, shape).astype(np.float32)
        for name, shape in expected_shapes(spec, VOCAB).items()
    }


def per_model(steppers: list[CausalStepper], tokens: np.ndarray) -> float:
    began = time.perf_counter()
    for stepper in steppers:
        state = stepper.initial_state(1)
        for position in range(TOKENS):
            _, state = stepper.step(tokens[position : position + 1], state)
    return time.perf_counter() - began


def stacked(steppers: list[CausalStepper], tokens: np.ndarray) -> float:
    began = time.perf_counter()
    units = steppers[0].spec.units
    # Stacking is part of the cost: it happens for every batch of different models.
    tables = np.stack([s.input_table for s in steppers])  # (M, vocab, 3u)
    recurrent = np.stack([s.layers[0].recurrent for s in steppers])  # (M, u, 3u)
    recurrent_bias = np.stack([s.layers[0].recurrent_bias for s in steppers])[:, None, :]
    output = np.stack([s.output_kernel for s in steppers])  # (M, u, vocab)
    output_bias = np.stack([s.output_bias for s in steppers])[:, None, :]
    models = np.arange(len(steppers))
    h = np.zeros((len(steppers), 1, units), dtype=np.float32)
    for position in range(TOKENS):
        projected = tables[models, tokens[position]][:, None, :]
        inner = np.matmul(h, recurrent) + recurrent_bias
        z = sigmoid(projected[..., :units] + inner[..., :units])
        r = sigmoid(projected[..., units : 2 * units] + inner[..., units : 2 * units])
        candidate = np.tanh(projected[..., 2 * units :] + r * inner[..., 2 * units :])
        h = z * h + (1.0 - z) * candidate
        np.matmul(h, output) + output_bias
    return time.perf_counter() - began


def main() -> int:
    limit_blas_threads()
    tokens = np.random.default_rng(0).integers(4, VOCAB, size=TOKENS)
    print("| spec | models | per model | stacked | stacked / per model |")
    print("| --- | --- | --- | --- | --- |")
    for units, embedding in ((128, 32), (384, 64)):
        spec = ModelSpec(arch="gru", units=units, embedding=embedding)
        for count in (2, 8, 32):
            steppers = [GRU.make_stepper(random_weights(spec, seed), spec) for seed in range(count)]
            # Best of 3: the machine is shared.
            alone = min(per_model(steppers, tokens) for _ in range(3))
            together = min(stacked(steppers, tokens) for _ in range(3))
            print(
                f"| GRU {units} | {count} | {1000 * alone:.1f} ms | {1000 * together:.1f} ms | "
                f"{together / alone:.2f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
