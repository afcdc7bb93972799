"""`chatsmith train | generate | eval | demo`: textgen from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chatsmith.commands.corpus_input import MAX_CORPUS_CHARS, drop_slurs, load_messages, load_training_corpus
from chatsmith.commands.training_shape import add_shape_arguments, state_reset, training_shape
from chatsmith.demo_corpus import demo_corpus
from chatsmith.wording import plural
from db.platforms import PLATFORM_NAMES as PLATFORMS
from textgen.corpus import FORMATS
from textgen.errors import TextgenError
from textgen.spec import ARCHITECTURES, ModelSpec, TrainConfig
from textgen.tokenizers import TOKENIZER_KINDS

# Keras dtype policies `chatsmith train --precision` accepts; auto picks one for the hardware.
PRECISIONS = ("auto", "float32", "mixed_bfloat16")
_DEFAULT_SPEC = ModelSpec()
_DEFAULT_CONFIG = TrainConfig()
# `chatsmith train` reports its headline figure on a test part that nothing was tuned on.
_TEST_FRACTION = 0.05
# `chatsmith train`'s dropout (see `--dropout` below for why it differs from the library's).
CLI_DROPOUT = 0.2


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `train`, `generate`, `eval` and `demo` to the `chatsmith` parser."""
    _register_train(subparsers)
    _register_generate(subparsers)
    _register_eval(subparsers)
    _register_demo(subparsers)


def _register_train(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train a model on a corpus file and save a bundle")
    train.add_argument("--corpus", required=True, type=Path, help="training text")
    train.add_argument("--out", required=True, type=Path, help="bundle directory to write")
    _add_format(train)
    _add_corpus_selection(train)
    train.add_argument("--arch", choices=ARCHITECTURES, default=_DEFAULT_SPEC.arch)
    train.add_argument("--tokenizer", choices=list(TOKENIZER_KINDS), default="byte")
    train.add_argument("--num-words", type=int, default=10000, help="vocabulary of the word tokenizer")
    train.add_argument("--layers", type=int, default=_DEFAULT_SPEC.layers)
    train.add_argument("--units", type=int, default=_DEFAULT_SPEC.units)
    train.add_argument("--embedding", type=int, default=_DEFAULT_SPEC.embedding)
    # 0.2, not the library's 0: a chat channel is small, and a 100 s run reads it many times over; with
    # dropout it scored better on chat and Tiny Shakespeare at 100 s, every seed, on the validation and the
    # test part (bench/RESULTS.md, "Dropout at 100 s"). A fine-tune (`--base`) keeps its parent's.
    train.add_argument("--dropout", type=float, default=CLI_DROPOUT)
    add_shape_arguments(train)
    train.add_argument("--learning-rate", type=float, default=_DEFAULT_CONFIG.learning_rate)
    train.add_argument("--grad-accum", type=int, default=_DEFAULT_CONFIG.grad_accum)
    train.add_argument("--epochs", type=int, default=_DEFAULT_CONFIG.epochs)
    train.add_argument(
        "--time-budget", type=float, default=None, help="wall-clock seconds, data preparation included"
    )
    validation = train.add_mutually_exclusive_group()
    validation.add_argument(
        "--val-fraction",
        type=float,
        default=_DEFAULT_CONFIG.val_fraction,
        help="share of the corpus held out to pick the best weights (before the test part)",
    )
    validation.add_argument("--val-corpus", type=Path, help="separate validation text (same --format)")
    test = train.add_mutually_exclusive_group()
    test.add_argument(
        "--test-fraction",
        type=float,
        default=_TEST_FRACTION,
        help="share at the end of the corpus held out for the reported figure, never tuned on",
    )
    test.add_argument("--test-corpus", type=Path, help="separate test text (same --format)")
    train.add_argument(
        "--carry-state",
        action=argparse.BooleanOptionalAction,
        default=_DEFAULT_CONFIG.carry_state,
        help="carry the recurrent state from window to window while training (causal models)",
    )
    train.add_argument(
        "--patience",
        type=int,
        default=_DEFAULT_CONFIG.patience,
        help="validations without a new best before stopping (epochs, or checks with --check-every)",
    )
    train.add_argument(
        "--check-every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="also validate every SECONDS within an epoch and stop when --patience checks bring no new "
        "best by --min-improvement (the time budget stays the ceiling); off by default",
    )
    train.add_argument(
        "--min-improvement",
        type=float,
        default=_DEFAULT_CONFIG.min_improvement,
        help="nats per token a validation must gain to count as a new best",
    )
    train.add_argument("--base", type=Path, help="bundle to fine-tune from (its spec and tokenizer are kept)")
    train.add_argument("--precision", choices=PRECISIONS, default="auto", help="Keras dtype policy")
    train.add_argument("--seed", type=seed_number, default=_DEFAULT_CONFIG.seed)
    train.add_argument("--json", action="store_true", help="print the metrics as one JSON object last")
    train.set_defaults(handler=run_train)


def _add_corpus_selection(parser: argparse.ArgumentParser) -> None:
    """The options that choose which of the corpus's messages train."""
    parser.add_argument(
        "--max-corpus-chars",
        type=int,
        default=MAX_CORPUS_CHARS,
        help="train on the newest messages that fit in this many characters, so memory stays bounded "
        "however long the log; 0: all",
    )
    parser.add_argument(
        "--drop-slurs",
        action="store_true",
        help="leave out every message that holds a word of the slur list (the base model's corpus)",
    )


def _register_generate(subparsers: argparse._SubParsersAction) -> None:
    generate = subparsers.add_parser("generate", help="generate text with a bundle")
    generate.add_argument("--model", type=Path, help="bundle directory")
    generate.add_argument(
        "--scope",
        nargs="+",
        metavar=("WORKSPACE", "CHANNEL"),
        help="use the model serving this workspace [channel] instead of --model (see `chatsmith models list`)",
    )
    generate.add_argument(
        "--platform", choices=PLATFORMS, default="console", help="platform of --scope (default: console)"
    )
    _add_sampling(generate)
    generate.add_argument("--n", type=int, default=1, help="number of samples")
    generate.add_argument("--json", action="store_true")
    generate.set_defaults(handler=run_generate, scope=None)


def _register_eval(subparsers: argparse._SubParsersAction) -> None:
    evaluate = subparsers.add_parser("eval", help="nats per character of a bundle on a corpus")
    evaluate.add_argument("--model", required=True, type=Path)
    evaluate.add_argument("--corpus", required=True, type=Path)
    _add_format(evaluate)
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(handler=run_eval)


def _register_demo(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="train on the bundled Shakespeare for 90 seconds (about two minutes in all), then write",
    )
    demo.add_argument("--out", type=Path, default=Path("data/demo-model"), help="where to save the bundle")
    demo.add_argument("--time-budget", type=float, default=90.0, help="training seconds (default 90)")
    demo.set_defaults(handler=run_demo)


def seed_number(text: str) -> int:
    """An argparse type: a random seed, a whole number from 0 to 2**32 - 1 as NumPy takes it."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, received {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be from 0 to {2**32 - 1}, received {value}")
    return value


def _add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        default="auto",
        help=f"corpus format: auto, {', '.join(FORMATS)} (default: auto, which says its guess)",
    )


def _add_sampling(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", default="", help="text to continue")
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.8, help="0 is greedy")
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--repetition-penalty", type=float, default=1.0)
    parser.add_argument("--seed", type=seed_number, default=None)


def run_train(args: argparse.Namespace) -> int:
    started = getattr(args, "started", time.monotonic())
    seq_len, batch_size = training_shape(args)
    spec = ModelSpec(
        arch=args.arch,
        layers=args.layers,
        units=args.units,
        embedding=args.embedding,
        dropout=args.dropout,
        seq_len=seq_len,
    )
    config = TrainConfig(
        batch_size=batch_size,
        learning_rate=args.learning_rate,
        epochs=args.epochs,
        time_budget=args.time_budget,
        grad_accum=args.grad_accum,
        val_fraction=0.0 if args.val_corpus else args.val_fraction,
        test_fraction=0.0 if args.test_corpus else args.test_fraction,
        patience=args.patience,
        check_every=args.check_every,
        min_improvement=args.min_improvement,
        carry_state=args.carry_state,
        state_reset=state_reset(args),
        seed=args.seed,
    )
    if args.num_words < 1:
        raise TextgenError(f"--num-words must be at least 1, received {args.num_words}")
    slurs = getattr(args, "drop_slurs", False)
    max_chars = getattr(args, "max_corpus_chars", MAX_CORPUS_CHARS) or None
    if max_chars is not None and max_chars < 0:
        raise TextgenError(f"--max-corpus-chars must be 0 (no cap) or more, received {max_chars}")
    messages = load_training_corpus(
        args.corpus, args.format, tokenizer=args.tokenizer, max_chars=max_chars, slurs=slurs
    )
    val_messages = load_messages(args.val_corpus, args.format) if args.val_corpus else None
    test_messages = load_messages(args.test_corpus, args.format) if args.test_corpus else None
    if slurs:
        val_messages = drop_slurs(val_messages, args.val_corpus) if val_messages else val_messages
        test_messages = drop_slurs(test_messages, args.test_corpus) if test_messages else test_messages
    metrics = _train(messages, args.out, spec, config, args, val_messages, started, test_messages)
    if args.json:
        print(json.dumps(metrics))
    return 0


def _train(messages, out, spec, config, args, val_messages, started, test_messages=None) -> dict[str, Any]:
    from chatsmith.progress import ProgressBar
    from textgen.training import train_model

    _check_writable(out)
    if not getattr(args, "verbose", False):
        # The bar and the summary say what the per-epoch log lines say; between them they break the bar.
        for name in ("textgen.training", "textgen.fit"):
            logging.getLogger(name).setLevel(logging.WARNING)
    bar = ProgressBar()
    try:
        result = train_model(
            messages,
            out,
            spec=spec,
            config=config,
            tokenizer=args.tokenizer,
            num_words=getattr(args, "num_words", 10000),
            val_messages=val_messages,
            test_messages=test_messages,
            base=getattr(args, "base", None),
            progress=bar,
            started=started,
            precision=getattr(args, "precision", "auto"),
        )
    finally:
        bar.close()
    metrics = {**result.metrics, "bundle": str(result.bundle)}
    print(_summary(metrics), file=sys.stderr)
    return metrics


def _check_writable(out: Path) -> None:
    """Refuse an output folder that cannot be created before training, not after."""
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TextgenError(
            f"cannot write the bundle to {out}: {error.strerror}; pass another --out"
        ) from None


def _summary(metrics: dict[str, Any]) -> str:
    saved = (
        f"saved {metrics['bundle']}"
        if metrics.get("saved", True)
        else "worker done (the chief saves the bundle)"
    )
    parts = [saved, f"{metrics['params']:,} parameters", plural(metrics["epochs"], "epoch")]
    if metrics.get("val_nats_per_char") is not None:
        parts.append(f"validation {metrics['val_nats_per_char']:.3f} nats/char")
    if metrics.get("test_nats_per_char") is not None:
        parts.append(f"test {metrics['test_nats_per_char']:.3f} nats/char")
    parts.append(f"{metrics['train_tokens_per_sec']:,.0f} tokens/s")
    parts.append(f"{metrics['seconds']:.0f} s ({metrics['stopped']})")
    return ", ".join(parts)


def _check_sampling(args: argparse.Namespace) -> None:
    from textgen.sampling import SamplingParams

    SamplingParams(
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )
    if getattr(args, "n", 1) < 1:
        raise TextgenError(f"--n must be at least 1, received {args.n}")


def run_generate(args: argparse.Namespace) -> int:
    _check_sampling(args)
    model_path = args.model
    output = None
    if args.scope is not None:
        from chatsmith.commands.trainer_commands import scope_bundle

        model_path, output = scope_bundle(args)
    if model_path is None:
        raise TextgenError(
            "no model given; pass --model DIR (a bundle written by `chatsmith train`) or --scope WORKSPACE "
            "[CHANNEL] (the model serving there, see `chatsmith models list`)"
        )
    from textgen.generator import Generator

    generator = Generator.from_bundle(model_path)

    def draw(n: int, seed: int | None) -> list[str]:
        return generator.generate(
            args.prompt,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            seed=seed,
            n=n,
            repetition_penalty=args.repetition_penalty,
        )

    samples = draw(args.n, args.seed)
    if output is not None:
        from chatsmith.scope_filter import filtered

        def redraw(index: int) -> Callable[[int], str]:
            # A fixed --seed stays reproducible: each sample's redraws have seeds of their own.
            return lambda attempt: draw(1, None if args.seed is None else args.seed + 1000 * attempt + index)[
                0
            ]

        samples = [filtered(output, sample, redraw(i), args.prompt) for i, sample in enumerate(samples)]
    if args.json:
        print(json.dumps({"samples": samples, "model": str(model_path)}, ensure_ascii=False))
    else:
        for index, sample in enumerate(samples):
            if len(samples) > 1:
                print(f"--- sample {index + 1}")
            print(sample)
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from textgen.bundle import load_bundle
    from textgen.evaluate import evaluate_messages

    bundle = load_bundle(args.model)
    messages = load_messages(args.corpus, args.format)
    evaluation = evaluate_messages(bundle, messages)
    if args.json:
        print(json.dumps(evaluation.to_dict()))
    else:
        print(
            f"{evaluation.nats_per_char:.4f} nats/char over {evaluation.chars} characters ({evaluation.tokens} tokens)"
        )
    return 0


def run_demo(args: argparse.Namespace) -> int:
    started = getattr(args, "started", time.monotonic())
    text = demo_corpus()
    print(
        f"chatsmith demo: training a {_DEFAULT_SPEC.arch.upper()} language model on Tiny Shakespeare "
        f"({len(text):,} characters, shipped with chatsmith) for about {args.time_budget:.0f} seconds.",
        file=sys.stderr,
    )
    print(
        "The last 10% of the text is held out as validation text: it picks the best weights and shows how "
        "well the model predicts text it did not train on.",
        file=sys.stderr,
    )
    config = TrainConfig(time_budget=args.time_budget, val_fraction=0.1)
    demo_args = argparse.Namespace(tokenizer="byte")
    metrics = _train([text], args.out, _DEFAULT_SPEC, config, demo_args, None, started)
    print(
        f"\nvalidation loss: {metrics['val_nats_per_char']:.3f} nats per character "
        f"(a uniform guess over bytes would be 5.5; a good character model reaches about 1.5)"
    )
    from textgen.generator import Generator

    generator = Generator.from_bundle(metrics["bundle"])
    for prompt in ("ROMEO:\n", "First Citizen:\n", "KING HENRY VI:\n"):
        [sample] = generator.generate(prompt, max_tokens=240, temperature=0.7, seed=7)
        # Show whole lines: the sample stops at a token count, usually mid-word.
        last_line_end = sample.rfind("\n")
        if last_line_end > len(prompt):
            sample = sample[:last_line_end]
        print("\n" + sample.rstrip())
    print(
        f"\nbundle saved to {metrics['bundle']}; try:\n"
        f"  chatsmith generate --model {metrics['bundle']} --prompt 'JULIET:' --temperature 0.8"
    )
    return 0
