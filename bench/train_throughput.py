"""Where a training step's time goes, and what raises tokens per second without changing what is computed.

`python -m bench.train_throughput [--corpus LOG] [--steps 60] [--rounds 3] [--tiny]` builds, in one
process, the default model's compiled training step (carried state, Adam, the clip) for each variant:

- `batch 32, loop`: the defaults before 2026-12-05 (the baseline every ratio is against): Keras' GRU
  layer, fed from a `tf.data` pipeline as that release did;
- `batch 32, dropout 0.2, Keras GRU`: the defaults of 2026-12-06, dropout after the recurrent layer, fed
  NumPy batches (`EpochBatches`), the GRU Keras' own layer (a graph `while` loop over the positions);
- `batch 32, dropout 0.2`: the defaults of 2026-12-07's morning (windows of 64 tokens): the GRU computed
  by `textgen.architectures.unrolled_gru` (every position's input projected in one product, the positions
  unrolled; the same arithmetic);
- `64 windows of 32, dropout 0.2`: the defaults of that afternoon: the same 2,048 tokens a step, in
  windows half as long (half the positions to run in sequence, twice the rows to each product);
- `128 windows of 16, dropout 0.2`: today's defaults (`chatsmith train`), the same tokens in windows of 16;
- `batch 64` and `batch 128` of 64-token windows, with either GRU: wider batches;
- `128 windows of 16, mixed bfloat16`: today's shape under the Keras dtype policy, on a CPU with
  AVX512-BF16/AMX.

Every variant but the one marked `tf.data` reads NumPy batches, as training on one device does since
2026-12-06. It times every variant in alternating order over `--rounds` rounds (a busy machine slows all
alike) two ways: the training loop as `chatsmith train` runs it (windows cut from the corpus's token
array), and the
compiled step alone on one batch kept in memory (no input pipeline). The step alone is reported as its
best round: on this machine about one run in three of it came out near 25,000 tokens/s whatever the
variant, a disturbance the training loop's runs beside it did not show. The table gives the loop's median
tokens per second, the ratio to the baseline, and the arithmetic rate achieved: training FLOPs per token (`training_flops_per_token`)
times tokens per second. A fit of step time against batch size over the looped float32 variants splits a
step into a fixed cost per step (dispatch, the while loop's bookkeeping) and a cost per row (kernels).
"""

from __future__ import annotations

import argparse
import math
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.sources import SHARED_DATA
from textgen.spec import ModelSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = SHARED_DATA / "ubuntu-irc-train.log"
TINY_CORPUS = REPO_ROOT / "tests" / "data" / "stripe-irc-head.log"
WARM_STEPS = 5


@dataclass(frozen=True)
class Variant:
    """One way to run the same model's training step."""

    name: str
    batch: int
    # "chatsmith": the model `chatsmith train` builds; "keras": the same with Keras' own recurrent layer;
    # "keras unroll": that layer with `unroll=True`.
    layer: str = "chatsmith"
    precision: str = "float32"
    # Tokens per window: the positions a step runs in sequence (the window the gradient flows through).
    seq_len: int = 64
    dropout: float = 0.0
    # "numpy": `EpochBatches` iterated directly (one device, since 2026-12-06); "tf.data": its dataset.
    feed: str = "numpy"


VARIANTS = (
    Variant("batch 32, loop, tf.data feed (defaults before 2026-12-05)", 32, layer="keras", feed="tf.data"),
    Variant("batch 32, dropout 0.2, Keras GRU (defaults of 2026-12-06)", 32, layer="keras", dropout=0.2),
    Variant("batch 32, dropout 0.2 (defaults of 2026-12-07 morning)", 32, dropout=0.2),
    Variant("64 windows of 32, dropout 0.2 (defaults of 2026-12-07 afternoon)", 64, dropout=0.2, seq_len=32),
    Variant("128 windows of 16, dropout 0.2 (today's defaults)", 128, dropout=0.2, seq_len=16),
    Variant("batch 64, Keras GRU", 64, layer="keras"),
    Variant("batch 64", 64),
    Variant("batch 128, Keras GRU", 128, layer="keras"),
    Variant("batch 128", 128),
    Variant(
        "128 windows of 16, dropout 0.2, mixed bfloat16",
        128,
        precision="mixed_bfloat16",
        dropout=0.2,
        seq_len=16,
    ),
)


def training_flops_per_token(spec: ModelSpec, vocab_size: int) -> float:
    """Floating-point operations of one training token of a causal model: each weight matrix a token
    passes through (input and recurrent kernels of every layer, the logits kernel; the embedding is a
    lookup) costs one multiply-add forward and two backward (the input's and the weight's gradient).
    Gate arithmetic, biases and the softmax are left out: they are a few operations per unit, not per
    weight."""
    if not spec.family.causal:
        raise ValueError(f"{spec.arch} reads a whole window per prediction; count causal models only")
    shapes = spec.family.weight_shapes(spec, vocab_size)
    multiply_adds = sum(math.prod(shape) for name, shape in shapes.items() if name.endswith("kernel"))
    return 3 * 2 * multiply_adds


def fixed_and_per_row_seconds(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares line through `(batch size, seconds per step)`: the fixed cost of a step and the cost
    of each row."""
    if len({batch for batch, _ in points}) < 2:
        raise ValueError("the fit needs step times at two batch sizes at least")
    mean_batch = statistics.mean(batch for batch, _ in points)
    mean_seconds = statistics.mean(seconds for _, seconds in points)
    slope = sum((b - mean_batch) * (s - mean_seconds) for b, s in points) / sum(
        (b - mean_batch) ** 2 for b, _ in points
    )
    return mean_seconds - slope * mean_batch, slope


@dataclass
class Timings:
    """Tokens per second of one variant, one figure per round."""

    loop: list[float] = field(default_factory=list)
    alone: list[float] = field(default_factory=list)


def format_table(
    variants: tuple[Variant, ...], timings: dict[str, Timings], flops_per_token: float
) -> list[str]:
    """The markdown table: median tokens/s (loop and step alone), ratio to the first variant, GFLOP/s."""
    base = statistics.median(timings[variants[0].name].loop)
    lines = [
        "| variant | tokens/s, training loop | vs baseline | GFLOP/s | tokens/s, step alone | input pipeline and loop |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for variant in variants:
        loop = statistics.median(timings[variant.name].loop)
        alone = max(timings[variant.name].alone)
        lines.append(
            f"| {variant.name} | {loop:,.0f} | {loop / base:.2f}x | {loop * flops_per_token / 1e9:.1f} | "
            f"{alone:,.0f} | {max(0.0, 1 - loop / alone):.0%} |"
        )
    return lines


def _build(variant: Variant, spec: ModelSpec, vocab_size: int, strategy: Any) -> Any:
    """The compiled training step of `variant`: what `chatsmith train` builds, changed only as named."""
    import keras

    from textgen.architectures.keras_frame import language_model
    from textgen.architectures.recurrent import RecurrentFamily
    from textgen.model import build_model
    from textgen.spec import TrainConfig
    from textgen.train_step import Trainer

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(variant.precision)
    spec = replace(spec, dropout=variant.dropout, seq_len=variant.seq_len)
    try:
        with strategy.scope():
            if variant.layer != "chatsmith":
                # Keras' own layer; unrolling needs the window's length in the graph.
                family = spec.family
                if not isinstance(family, RecurrentFamily):
                    raise ValueError(f"only causal recurrent models take Keras' layer, not {spec.arch}")
                layer_class = getattr(keras.layers, family.keras_layer)
                unroll = variant.layer == "keras unroll"

                def recurrent(index: int, x: Any) -> Any:
                    layer = layer_class(
                        spec.units,
                        return_sequences=True,
                        return_state=True,
                        unroll=unroll,
                        name=f"rnn_{index}",
                    )
                    return layer(x)[0]

                model = language_model(spec, vocab_size, spec.seq_len if unroll else None, recurrent)
            else:
                model = build_model(spec, vocab_size)
        trainer = Trainer(model, spec, TrainConfig(batch_size=variant.batch), strategy, carry_state=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return trainer


def measure(
    corpus: Path, variants: tuple[Variant, ...], steps: int, rounds: int, spec: ModelSpec
) -> dict[str, Timings]:
    """Every variant's tokens per second, the variants alternating within each round."""
    import tensorflow as tf

    from bench.batch_feed import tokens_per_second
    from textgen.corpus import load_corpus
    from textgen.data import encode_compact, stream_window_batches
    from textgen.strategy import pick_strategy
    from textgen.tokenizers import ByteTokenizer

    messages = load_corpus(corpus, "irc", keep_records=False).messages[:100_000]
    tokens = encode_compact(ByteTokenizer(), messages)
    strategy = pick_strategy()
    trainers = {
        variant.name: _build(variant, spec, ByteTokenizer().vocab_size, strategy) for variant in variants
    }
    timings = {variant.name: Timings() for variant in variants}
    for round_number in range(rounds):
        order = variants if round_number % 2 == 0 else tuple(reversed(variants))
        for variant in order:
            trainer = trainers[variant.name]
            batches = stream_window_batches(
                tokens, variant.seq_len, variant.batch, seed=0, epoch=round_number
            )
            batches = batches.take(steps + WARM_STEPS)
            feed = batches.dataset() if variant.feed == "tf.data" else batches
            timings[variant.name].loop.append(tokens_per_second(trainer, feed, WARM_STEPS))
            one_batch = tuple(tf.constant(part) for part in batches.batch(0))
            kept = tf.data.Dataset.from_tensors(one_batch).repeat(steps + WARM_STEPS)
            timings[variant.name].alone.append(tokens_per_second(trainer, kept, WARM_STEPS))
            print(
                f"round {round_number} {variant.name}: {timings[variant.name].loop[-1]:,.0f} tokens/s "
                f"(step alone {timings[variant.name].alone[-1]:,.0f})",
                flush=True,
            )
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="an IRC log")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--tiny", action="store_true", help="a few steps on the committed slice: checks it runs"
    )
    args = parser.parse_args(argv)
    spec = ModelSpec()
    corpus, steps, rounds = (TINY_CORPUS, 3, 1) if args.tiny else (args.corpus, args.steps, args.rounds)
    if not corpus.is_file():
        parser.error(f"{corpus} not found; pass --corpus with an IRC log")
    timings = measure(corpus, VARIANTS, steps, rounds, spec)
    flops = training_flops_per_token(spec, 260)
    print(
        f"\nthe default model ({spec.arch} {spec.units}, embedding {spec.embedding}, bytes): "
        f"{flops / 1e6:.2f} MFLOP per training token\n"
    )
    print("\n".join(format_table(VARIANTS, timings, flops)))
    looped = [
        (variant.batch, variant.batch * variant.seq_len / max(timings[variant.name].alone))
        for variant in VARIANTS
        if variant.layer == "keras"
        and variant.precision == "float32"
        and not variant.dropout
        and variant.feed == "numpy"
    ]
    fixed, per_row = fixed_and_per_row_seconds(looped)
    print(
        f"\nstep alone, looped float32 variants: {fixed * 1e3:.1f} ms fixed per step + "
        f"{per_row * 1e3:.3f} ms per row (batch 64: {fixed / (fixed + 64 * per_row):.0%} fixed)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
