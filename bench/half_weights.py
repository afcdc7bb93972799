"""Float16 weights for replies, checked (`textgen.half_weights`): what the model says and what a step costs.

The bots decode with float16 copies of the recurrent and output kernels. For the packaged base model this
prints, with the float32 weights and with those copies, in one process:

- held-out nats per character on the Ubuntu IRC log's test part (the newest 5% that `make base-model`
  holds out), on the Stripe channel's newest third (a channel the base model never saw) and on Tiny
  Shakespeare's last 10% (text unlike anything it learned);
- the largest difference of a step's logits over the Stripe text, read as one stream;
- the CPU of one decoding step (`stepper.step`, one row), median of 9 rounds of 2,000 steps, the two
  alternated round by round so that the machine's drift falls on both.

    python -m bench.half_weights          # about a minute
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

TEST_CHARS = 300_000
ROUNDS = 9
STEPS_PER_ROUND = 2_000


def step_cpu_us(
    steppers: dict[str, Any], rounds: int = ROUNDS, steps: int = STEPS_PER_ROUND
) -> dict[str, float]:
    """Median CPU microseconds of one step of each stepper, `rounds` of `steps`, rounds alternated."""
    spent: dict[str, list[float]] = {name: [] for name in steppers}
    token = np.array([70], dtype=np.int64)
    for _ in range(rounds):
        for name, stepper in steppers.items():
            state = stepper.initial_state(1)
            began = time.process_time()
            for _ in range(steps):
                _, state = stepper.step(token, state)
            spent[name].append((time.process_time() - began) / steps * 1e6)
    return {name: statistics.median(values) for name, values in spent.items()}


def largest_logit_difference(full: Any, half: Any, tokens: np.ndarray) -> float:
    """The largest absolute difference between the two steppers' logits over `tokens`, one stream."""
    full_state, half_state, largest = full.initial_state(1), half.initial_state(1), 0.0
    for token in tokens:
        full_logits, full_state = full.step(np.array([token]), full_state)
        half_logits, half_state = half.step(np.array([token]), half_state)
        largest = max(largest, float(np.abs(full_logits - half_logits).max()))
    return largest


def measure(
    base: Path, held_out: dict[str, list[str]], rounds: int = ROUNDS, steps: int = STEPS_PER_ROUND
) -> list[str]:
    """The report's lines (`rounds` of `steps` time a step)."""
    from textgen.bundle import load_serving_bundle
    from textgen.engine import make_stepper
    from textgen.evaluate import evaluate_messages
    from textgen.half_weights import halve_step_matrices, kernels

    served = load_serving_bundle(base)
    halved = replace(served, weights=halve_step_matrices(served.weights))
    lines = [
        f"Packaged base model ({served.spec.arch.upper()} {served.spec.units}, {served.tokenizer.kind} tokens); "
        f"float16 kernel: {kernels()[0]}.",
        "",
        "| held-out text | characters | float32 nats/char | float16 nats/char | difference |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, messages in held_out.items():
        full, half = evaluate_messages(served, messages), evaluate_messages(halved, messages)
        lines.append(
            f"| {name} | {full.chars:,} | {full.nats_per_char:.5f} | {half.nats_per_char:.5f} | "
            f"{half.nats_per_char - full.nats_per_char:+.5f} |"
        )
    full_stepper, half_stepper = (
        make_stepper(served.weights, served.spec),
        make_stepper(halved.weights, served.spec),
    )
    stream = served.tokenizer.encode_messages(next(iter(held_out.values())))[:5_000]
    difference = largest_logit_difference(full_stepper, half_stepper, stream)
    cpu = step_cpu_us({"float32": full_stepper, "float16": half_stepper}, rounds, steps)
    lines += [
        "",
        f"Largest difference of a step's logits over {len(stream):,} tokens read as one stream: {difference:.4f}.",
        "",
        "| one decoding step (one row) | float32 | float16 | ratio |",
        "| --- | --- | --- | --- |",
        f"| CPU, median of {rounds} rounds of {steps:,} | {cpu['float32']:.1f} µs | "
        f"{cpu['float16']:.1f} µs | {cpu['float32'] / cpu['float16']:.2f}x |",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    from bench.base_model_compare import base_test_part
    from bench.reply_quality import BASE_MODEL, channel_log, read_channel, split_newest
    from bench.settings import RunSettings
    from bench.sources import find_sources

    parser = argparse.ArgumentParser(prog="python -m bench.half_weights", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    sources = find_sources()
    held_out: dict[str, list[str]] = {}
    stripe = channel_log(RunSettings(quick=False, sources=sources))
    held_out[f"{stripe.name}, newest third"] = [line.text for line in split_newest(read_channel(stripe))[1]]
    shakespeare = sources.shakespeare.read_text(encoding="utf-8")
    # Its last 10% (the held-out part the Shakespeare benchmarks use), one document.
    held_out[f"{sources.shakespeare.name}, last 10% (first {TEST_CHARS:,} characters)"] = [
        shakespeare[int(len(shakespeare) * 0.9) :][:TEST_CHARS]
    ]
    if sources.irc is not None:
        held_out[f"{sources.irc.name}, test part (first {TEST_CHARS:,} characters)"] = base_test_part(
            sources.irc, TEST_CHARS
        )
    print("\n".join(measure(BASE_MODEL, held_out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
