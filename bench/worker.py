"""Subprocess entry point: `python -m bench.worker TASK OPTIONS_JSON` prints one JSON result line.

Tasks:
    generation: time the engine, the seed-style loop and the NumPy floor (single stream, batched
        throughput, BiLSTM) on random weights.
    memory: peak resident memory of one training-data pipeline on one corpus size.
    char-baseline: train the plain Keras character model on a corpus's training part within a
        wall-clock budget counted from this process's start, and score it on the test part.
    recovery: the recovery gap (fresh state at random offsets vs one stream) of saved bundles on a
        corpus's test messages.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Wall-clock budgets count from here, before TensorFlow is imported, as `chatsmith train` counts from
# its entry point.
STARTED = time.monotonic()

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _max_rss_bytes() -> int:
    # Linux reports KiB; the high-water mark of this process so far.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _progress(message: str) -> None:
    print(f"[bench.worker] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------------
# generation


def _median_seconds(run: Callable[[], Any], repeats: int) -> float:
    """Median wall time of `repeats` calls: robust to a neighbour's burst on a shared machine."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def _random_model(spec: Any, vocab: int, seed: int = 0) -> Any:
    import keras

    from textgen.model import build_model

    keras.utils.set_random_seed(seed)
    return build_model(spec, vocab)


def _generator(model: Any, spec: Any) -> Any:
    from textgen.bundle import Bundle
    from textgen.generator import Generator
    from textgen.tokenizers import ByteTokenizer

    return Generator(Bundle(path=Path("random-weights"), spec=spec, tokenizer=ByteTokenizer(), model=model))


PROMPT = "hello there, "


def _single_stream(name: str, spec: Any, options: dict[str, Any]) -> dict[str, Any]:
    """ms/token of engine, seed-style loop and NumPy floor for one causal model."""
    from bench.floor import CausalFloor
    from bench.seed_style import SEED_WINDOW, SeedStyleGenerator
    from textgen.sampling import SamplingParams
    from textgen.tokenizers import BOS_ID, ByteTokenizer

    tokens, seed_tokens, repeats = options["tokens"], options["seed_tokens"], options["repeats"]
    model = _random_model(spec, ByteTokenizer().vocab_size)
    generator = _generator(model, spec)
    prompt = ByteTokenizer().encode(PROMPT)
    # Random weights sample the end-of-message token now and then; never stopping keeps every run at
    # exactly `tokens` tokens.
    params = SamplingParams(max_tokens=tokens, temperature=0.8, seed=1, stop_at_end=False)

    def engine() -> None:
        generator.generate_tokens([prompt], [params])

    floor = CausalFloor(model, spec.arch)

    def numpy_floor() -> None:
        floor.generate([BOS_ID, *prompt], tokens)

    engine()  # warm-up: first-call allocations, BLAS thread start-up
    numpy_floor()
    result: dict[str, Any] = {
        "tokens": tokens,
        "engine_ms_per_token": _median_seconds(engine, repeats) / tokens * 1e3,
        "floor_ms_per_token": _median_seconds(numpy_floor, repeats) / tokens * 1e3,
    }
    if seed_tokens:
        seed_loop = SeedStyleGenerator(model, window=SEED_WINDOW, causal=True)
        seed_loop.next_token([BOS_ID, *prompt])  # warm-up: predict traces its function on the first call
        started = time.perf_counter()
        seed_loop.generate([BOS_ID, *prompt], seed_tokens)
        result["seed_ms_per_token"] = (time.perf_counter() - started) / seed_tokens * 1e3
        result["seed_tokens"] = seed_tokens
        result["seed_window"] = SEED_WINDOW
    _progress(f"{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in result.items() if isinstance(v, float)))
    return result


# Chat-like prompts of different lengths for the throughput benchmark.
_PROMPTS = (
    "hi",
    "anyone know how to mount an ntfs drive?",
    "ok",
    "my wifi stopped working after the upgrade, the driver is loaded but no networks show up",
    "thanks!",
    "try sudo apt-get update first",
    "which version?",
    "lol",
)


def _throughput(spec: Any, options: dict[str, Any]) -> dict[str, Any]:
    """Tokens/s of 32 mixed requests through `generate_tokens` at once versus one after another."""
    from textgen.sampling import SamplingParams
    from textgen.tokenizers import ByteTokenizer

    model = _random_model(spec, ByteTokenizer().vocab_size)
    generator = _generator(model, spec)
    tokenizer = ByteTokenizer()
    low, high = options["min_tokens"], options["max_tokens"]
    requests = options["requests"]
    prompts, params = [], []
    temperatures = (0.0, 0.5, 0.7, 0.8, 1.0, 1.2)
    for index in range(requests):
        prompts.append(tokenizer.encode(_PROMPTS[index % len(_PROMPTS)] + f" #{index}"))
        params.append(
            SamplingParams(
                max_tokens=low + (index * 37) % (high - low + 1),
                temperature=temperatures[index % len(temperatures)],
                top_k=(None, 20, 50)[index % 3],
                top_p=(None, 0.9, 0.95, 1.0)[index % 4],
                repetition_penalty=1.1 if index % 5 == 0 else 1.0,
                seed=index,
            )
        )
    generator.generate_tokens(prompts[:4], params[:4])  # warm-up
    outputs: dict[str, list[list[int]]] = {}

    def batched() -> None:
        outputs["batched"] = generator.generate_tokens(prompts, params)

    def sequential() -> None:
        outputs["sequential"] = [
            generator.generate_tokens([p], [q])[0] for p, q in zip(prompts, params, strict=True)
        ]

    repeats = options["repeats"]
    batched_seconds = _median_seconds(batched, repeats)
    sequential_seconds = _median_seconds(sequential, repeats)
    batched_tokens = sum(len(tokens) for tokens in outputs["batched"])
    sequential_tokens = sum(len(tokens) for tokens in outputs["sequential"])
    same = sum(a == b for a, b in zip(outputs["batched"], outputs["sequential"], strict=True))
    result = {
        "requests": requests,
        "batched_tokens": batched_tokens,
        "sequential_tokens": sequential_tokens,
        "batched_seconds": batched_seconds,
        "sequential_seconds": sequential_seconds,
        "batched_tokens_per_sec": batched_tokens / batched_seconds,
        "sequential_tokens_per_sec": sequential_tokens / sequential_seconds,
        # Batched and one-at-a-time decoding should agree; a row can differ only through float rounding
        # of a batched matrix product tipping one sampled token.
        "identical_outputs": same,
    }
    _progress(f"throughput: {result}")
    return result


def _bilstm(name: str, spec: Any, options: dict[str, Any]) -> dict[str, Any]:
    """ms/token of the engine's BiLSTM stepper versus the seed loop, the NumPy floor and an XLA variant."""
    import numpy as np
    import tensorflow as tf

    from bench.floor import BiLSTMFloor
    from bench.seed_style import SeedStyleGenerator
    from textgen.sampling import SamplingParams
    from textgen.tokenizers import BOS_ID, ByteTokenizer

    model = _random_model(spec, ByteTokenizer().vocab_size)
    generator = _generator(model, spec)
    prompt = ByteTokenizer().encode(PROMPT)
    tokens, seed_tokens, floor_tokens = options["tokens"], options["seed_tokens"], options["floor_tokens"]
    params = SamplingParams(max_tokens=tokens, temperature=0.8, seed=1, stop_at_end=False)
    one_token = SamplingParams(max_tokens=1, seed=1, stop_at_end=False)
    generator.generate_tokens([prompt], [one_token])  # warm-up: traces the window function
    # Reading the prompt costs one window pass per prompt token before the first new token.
    prompt_ms = _median_seconds(lambda: generator.generate_tokens([prompt], [one_token]), 3) * 1e3
    started = time.perf_counter()
    generator.generate_tokens([prompt], [params])
    # Per generated token, the prompt included: what a user waiting for `tokens` tokens sees.
    engine_ms = (time.perf_counter() - started) / tokens * 1e3

    seed_loop = SeedStyleGenerator(model, window=spec.seq_len, causal=False)
    seed_loop.next_token([BOS_ID, *prompt])
    started = time.perf_counter()
    seed_loop.generate([BOS_ID, *prompt], seed_tokens)
    seed_ms = (time.perf_counter() - started) / seed_tokens * 1e3

    floor = BiLSTMFloor(model, spec.seq_len)
    started = time.perf_counter()
    floor.generate([BOS_ID, *prompt], floor_tokens)
    floor_ms = (time.perf_counter() - started) / floor_tokens * 1e3

    # Diagnostic: the same window forward pass compiled with XLA (not what the engine ships).
    signature = [tf.TensorSpec(shape=(None, spec.seq_len), dtype=tf.int32)]
    xla = tf.function(lambda x: model(x, training=False), input_signature=signature, jit_compile=True)
    window = tf.constant(np.full((1, spec.seq_len), 5, dtype=np.int32))
    started = time.perf_counter()
    xla(window).numpy()
    xla_compile_seconds = time.perf_counter() - started
    xla_ms = _median_seconds(lambda: xla(window).numpy(), max(3, floor_tokens)) * 1e3
    result = {
        "units": spec.units,
        "seq_len": spec.seq_len,
        "tokens": tokens,
        "engine_ms_per_token": engine_ms,
        "engine_prompt_ms": prompt_ms,
        "prompt_tokens": len(prompt) + 1,
        "seed_ms_per_token": seed_ms,
        "seed_tokens": seed_tokens,
        "floor_ms_per_token": floor_ms,
        "xla_ms_per_token": xla_ms,
        "xla_compile_seconds": xla_compile_seconds,
    }
    _progress(f"{name}: " + ", ".join(f"{k}={v:.4g}" for k, v in result.items() if isinstance(v, float)))
    return result


def generation(options: dict[str, Any]) -> dict[str, Any]:
    """The generation measurements named in `options["parts"]` (`options["tiny"]`: models of a few units)."""
    import dataclasses

    from textgen.spec import ModelSpec

    def sized(spec: ModelSpec) -> ModelSpec:
        if not options.get("tiny"):
            return spec
        return dataclasses.replace(spec, units=12, embedding=8, seq_len=min(spec.seq_len, 10))

    parts = options["parts"]
    result: dict[str, Any] = {"openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default")}
    if "single" in parts:
        result["default_model"] = _single_stream("default model", sized(ModelSpec()), options)
        result["lstm_512"] = _single_stream("lstm 512", sized(ModelSpec(arch="lstm", units=512)), options)
    if "throughput" in parts:
        result["throughput"] = _throughput(sized(ModelSpec()), options)
    if "bilstm" in parts:
        result["bilstm_default"] = _bilstm("bilstm default", sized(ModelSpec(arch="bilstm")), options)
        small = sized(ModelSpec(arch="bilstm", units=150, seq_len=20))
        result["bilstm_seed_size"] = _bilstm("bilstm seed-size", small, options)
    return result


# ----------------------------------------------------------------------------------------------------
# memory


def _corpus_slice(path: str, megabytes: float) -> str:
    """The first `megabytes` MB of the corpus; a corpus shorter than that is repeated to reach it."""
    text = Path(path).read_text(encoding="utf-8")
    size = int(megabytes * 1_000_000)
    if len(text) < size:
        text = text * (size // len(text) + 1)
    return text[:size]


def memory(options: dict[str, Any]) -> dict[str, Any]:
    """Peak resident memory of one pipeline (`seed` or `project`) over its baseline after imports."""
    import keras  # noqa: F401  (imported before the baseline so its cost is not counted)
    import numpy as np
    import tensorflow as tf  # noqa: F401

    import bench.seed_style  # noqa: F401
    from textgen.data import window_batches  # noqa: F401
    from textgen.spec import ModelSpec, TrainConfig
    from textgen.tokenizers import ByteTokenizer

    baseline = _max_rss_bytes()
    started = time.perf_counter()
    text = _corpus_slice(options["source"], options["megabytes"])
    result: dict[str, Any] = {"chars": len(text), "baseline_rss_bytes": baseline}
    if options["pipeline"] == "seed":
        from bench.seed_style import seed_fit_few_batches, seed_training_arrays

        xs, ys, tokenizer = seed_training_arrays(text)
        result.update(
            samples=int(xs.shape[0]),
            vocab=tokenizer.vocab_size,
            max_len=int(xs.shape[1]) + 1,
            array_bytes=int(xs.nbytes + ys.nbytes),
            prepared_delta_bytes=_max_rss_bytes() - baseline,
        )
        seed_fit_few_batches(xs, ys, tokenizer.vocab_size)
    else:
        spec, config = ModelSpec(), TrainConfig()
        tokens = ByteTokenizer().encode_messages([text])
        result.update(tokens=int(len(tokens)), array_bytes=int(tokens.nbytes))
        result["prepared_delta_bytes"] = _max_rss_bytes() - baseline
        # The batches training on one device reads (NumPy windows cut from the token array).
        batches = window_batches(tokens, spec.seq_len, config.batch_size, spec.causal, seed=config.seed)
        for inputs, labels in batches.take(options.get("batches", 3)):
            np.asarray(inputs), np.asarray(labels)
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_bytes"] = _max_rss_bytes()
    result["delta_bytes"] = result["peak_rss_bytes"] - baseline
    return result


# ----------------------------------------------------------------------------------------------------
# quality


def char_baseline(options: dict[str, Any]) -> dict[str, Any]:
    """The Keras character baseline on the training and scored test text of one `chatsmith train` run."""
    from bench.char_baseline import EMBEDDING, UNITS, train_and_score
    from bench.heldout import corpus_parts

    parts = corpus_parts(
        Path(options["corpus"]), options["format"], options["val_fraction"], options["test_fraction"]
    )
    tiny = options.get("tiny", False)
    _progress(
        f"char-baseline: {sum(len(m) for m in parts.train):,} training characters, budget {options['budget']} s"
    )
    result = train_and_score(
        parts.train,
        parts.scored_test,
        budget=options["budget"],
        started=STARTED,
        seed=options.get("seed", 0),
        units=12 if tiny else UNITS,
        embedding=8 if tiny else EMBEDDING,
    )
    result["peak_rss_bytes"] = _max_rss_bytes()
    return result


def recovery(options: dict[str, Any]) -> dict[str, Any]:
    """`recovery_gap` of each bundle in `options["bundles"]` at the same random offsets of the test messages."""
    import numpy as np

    from bench.heldout import corpus_parts
    from textgen.bundle import load_bundle
    from textgen.evaluate import recovery_gap
    from textgen.holdout import head_of

    parts = corpus_parts(
        Path(options["corpus"]), options["format"], options["val_fraction"], options["test_fraction"]
    )
    # The stream side reads from the first test message up to the last offset, one token at a time:
    # a bounded region keeps that to seconds.
    messages = head_of(parts.scored_test, options["region_chars"])
    burn_in, span = options["burn_in"], options["span"]
    results: dict[str, Any] = {
        "burn_in": burn_in,
        "span": span,
        "region_chars": sum(len(m) for m in messages),
    }
    for name, path in options["bundles"].items():
        bundle = load_bundle(path)
        tokens = len(bundle.tokenizer.encode_messages(messages))
        starts = np.random.default_rng(options["offsets_seed"]).integers(
            0, tokens - burn_in - span - 1, size=options["offsets"]
        )
        fresh, stream = recovery_gap(bundle, messages, starts, burn_in=burn_in, span=span)
        results[name] = {
            "fresh_nats_per_token": fresh,
            "stream_nats_per_token": stream,
            "gap": fresh - stream,
        }
        _progress(f"recovery {name}: fresh {fresh:.4f}, stream {stream:.4f} nats/token")
    return results


TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "generation": generation,
    "memory": memory,
    "char-baseline": char_baseline,
    "recovery": recovery,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in TASKS:
        print(f"usage: python -m bench.worker {{{','.join(TASKS)}}} OPTIONS_JSON", file=sys.stderr)
        return 2
    from textgen.tensorflow_import import import_tensorflow

    import_tensorflow()  # every task uses TensorFlow or Keras
    result = TASKS[argv[0]](json.loads(argv[1]))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
