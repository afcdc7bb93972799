"""Tokens per second of the default model's training step, fed from NumPy or from a TensorFlow copy.

Training batches are cut from the corpus's NumPy token array (`textgen.data.gather_windows`); they were
cut from a `tf.constant` of the whole array, which cost as much memory again as the corpus. This runs
the same compiled step (default model, batch 64, carried state) on the same batches fed both ways, in
alternating order in one process, so that a busy machine slows both alike, and prints each round and
the medians.

    python -m bench.batch_feed --log ubuntu-irc-train.log --steps 150 --rounds 8
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import textgen.data as data
from textgen.corpus import load_corpus
from textgen.data import EpochBatches, encode_compact, stream_window_batches
from textgen.model import build_model
from textgen.spec import ModelSpec, TrainConfig
from textgen.strategy import pick_strategy
from textgen.tokenizers import ByteTokenizer
from textgen.train_step import Trainer

BATCH = 64
WARM_STEPS = 10


def tensorflow_copy_gather(tokens: np.ndarray, starts: tf.Tensor, span: int) -> tf.Tensor:
    """The windows cut from a TensorFlow copy of the whole token array (the former feed)."""
    table = tf.constant(tokens)
    offsets = tf.range(span, dtype=tf.int64)
    return tf.cast(tf.gather(table, starts[:, None] + offsets[None, :]), tf.int32)


FEEDS = {"numpy": data.gather_windows, "tensorflow copy": tensorflow_copy_gather}


def tokens_per_second(
    trainer: Trainer, batches: EpochBatches | tf.data.Dataset, warm_steps: int = WARM_STEPS
) -> float:
    """Tokens per second of `trainer`'s training steps over `batches`, after the first `warm_steps`."""
    counted, started = 0.0, time.monotonic()
    for step, (_loss, _accuracy, batch_tokens) in enumerate(trainer.train_batches(batches)):
        if step == warm_steps - 1:
            started = time.monotonic()
        elif step >= warm_steps:
            counted += batch_tokens
    return counted / (time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    """Alternate the two feeds for `--rounds` rounds; one line per run, then the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--log", type=Path, required=True, help="an IRC log (its first 200,000 messages train)"
    )
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)
    messages = load_corpus(args.log, "irc", keep_records=False).messages[:200_000]
    tokens = encode_compact(ByteTokenizer(), messages)
    spec, strategy = ModelSpec(), pick_strategy()
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = build_model(spec, ByteTokenizer().vocab_size)
    trainer = Trainer(model, spec, TrainConfig(batch_size=BATCH), strategy, carry_state=True)
    rates: dict[str, list[float]] = {name: [] for name in FEEDS}
    try:
        for round_number in range(args.rounds):
            order = list(FEEDS) if round_number % 2 == 0 else list(reversed(FEEDS))
            for name in order:
                data.gather_windows = FEEDS[name]
                batches = stream_window_batches(tokens, spec.seq_len, BATCH, seed=0, epoch=round_number + 1)
                dataset = batches.dataset()  # the pipeline whose gather is compared
                rates[name].append(tokens_per_second(trainer, dataset.take(args.steps + WARM_STEPS)))
                print(f"round {round_number} {name}: {rates[name][-1]:,.0f} tokens/s", flush=True)
    finally:
        data.gather_windows = FEEDS["numpy"]
    for name, values in rates.items():
        print(f"{name}: median {np.median(values):,.0f} tokens/s over {len(values)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
