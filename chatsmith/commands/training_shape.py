"""`chatsmith train`'s window length, windows per batch and state resets: the shape of a training step.

A causal model from scratch trains on 128 windows of 16 tokens a step, where the library's defaults are 32
windows of 64: the same 2,048 tokens, a quarter of the positions run in sequence, four times the rows in
each product. The recurrent state still carries from one window into the next; only the gradient stops at
16 tokens. Against 64 windows of 32 (the defaults before) at 100 s, 3 seeds: 1.06-1.08x the tokens per
second, 0.013 nats/char better on Tiny Shakespeare, the same on chat (bench/RESULTS.md, "Windows of 16
tokens"; 64 windows of 32 had gained 0.024 over 32 of 64 in "Windows of 32 tokens").

At windows of 16 a row's carried state meets a reset draw every 16 tokens, four times as often as at the
library's 64, so the share of rows reset at each step is halved, to 0.025, for a run from scratch: 0.009
nats/char better on Tiny Shakespeare's test part (0.005 on validation), every seed, and 0.004 better on
chat's test part (0.002 on validation), 3 seeds (bench/RESULTS.md, "State resets at windows of 16").
"""

from __future__ import annotations

import argparse

from textgen.spec import ModelSpec, TrainConfig

# The window of a causal model from scratch, and the tokens a step reads, which set the windows per batch.
CLI_SEQ_LEN = 16
TOKENS_PER_STEP = 2048
# The share of rows whose carried state resets at each step, for a run from scratch (the library's 0.05 was
# chosen at windows of 64; a fine-tune keeps it, as the trainer's jobs do).
CLI_STATE_RESET = 0.025
_DEFAULT_SPEC = ModelSpec()
_DEFAULT_CONFIG = TrainConfig()


def add_shape_arguments(train: argparse.ArgumentParser) -> None:
    """`--seq-len`, `--batch-size` and `--state-reset`, defaulting to None: `training_shape` and
    `state_reset` resolve them."""
    # A BiLSTM reads its window as its whole context and keeps 64; a fine-tune (`--base`) keeps its parent's.
    train.add_argument(
        "--seq-len",
        type=int,
        default=None,
        help=f"tokens per training window (default {CLI_SEQ_LEN}; a BiLSTM's context, {_DEFAULT_SPEC.seq_len})",
    )
    # Windows per batch: by default as many as make TOKENS_PER_STEP (128 of 16 tokens, 32 of 64). At 2,048
    # tokens of 64-token windows, batch 64 read 1.3x the tokens per second but took a third fewer optimizer
    # steps in 100 s, and scored worse (bench/RESULTS.md, "Batch 32 again, with dropout").
    train.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help=f"windows per batch (default: {TOKENS_PER_STEP:,} tokens' worth, 128 windows of 16 tokens)",
    )
    # A share per step: at shorter windows each row meets a draw more often per token.
    train.add_argument(
        "--state-reset",
        type=float,
        default=None,
        help=(
            "with carried state, the share of rows reset to a fresh state at each step "
            f"(default {CLI_STATE_RESET}; a fine-tune's, {_DEFAULT_CONFIG.state_reset})"
        ),
    )


def state_reset(args: argparse.Namespace) -> float:
    """`--state-reset` as passed, else `CLI_STATE_RESET` from scratch and the library's share for a fine-tune."""
    if args.state_reset is not None:
        return float(args.state_reset)
    return _DEFAULT_CONFIG.state_reset if args.base is not None else CLI_STATE_RESET


def training_shape(args: argparse.Namespace) -> tuple[int, int]:
    """`chatsmith train`'s window length and windows per batch: what was passed, else 16 tokens for a
    causal model from scratch (64, the library's, for a BiLSTM, whose window is its context; the parent's
    for a fine-tune, which keeps its spec) and as many windows as make `TOKENS_PER_STEP` tokens."""
    seq_len = args.seq_len
    if args.base is not None:
        from textgen.bundle import read_manifest

        seq_len = ModelSpec.from_dict(read_manifest(args.base)["spec"]).seq_len
    elif seq_len is None:
        seq_len = CLI_SEQ_LEN if ModelSpec(arch=args.arch).causal else _DEFAULT_SPEC.seq_len
    batch_size = args.batch_size
    if batch_size is None:
        # A window that is not positive is refused by ModelSpec, with its own message: no division by it here.
        batch_size = max(1, TOKENS_PER_STEP // max(1, seq_len))
    return seq_len, batch_size
