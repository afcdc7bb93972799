"""Small models that several test packages need, trained once per test session (fixtures in conftest.py)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

# A channel where every call is answered by its own response: only the message before says which.
CALL_AND_RESPONSE_PAIRS = [("ping?", "pong"), ("knock?", "who"), ("hello?", "hi")]


@dataclass(frozen=True)
class CallAndResponse:
    """A model of the call-and-response channel, the messages it never saw, and the pairs it learned."""

    bundle: Path
    held_out: list[str]
    pairs: list[tuple[str, str]]


def train_call_and_response(out: Path) -> CallAndResponse:
    """Train the call-and-response model into `out` (about seven seconds on one core)."""
    from textgen.spec import ModelSpec, TrainConfig
    from textgen.training import train_model

    rng = random.Random(0)
    messages = [line for _ in range(1000) for line in rng.choice(CALL_AND_RESPONSE_PAIRS)]
    train_model(
        messages[:-200],
        out,
        spec=ModelSpec(arch="gru", units=48, embedding=16, seq_len=32),
        config=TrainConfig(batch_size=8, epochs=30, learning_rate=3e-3, test_fraction=0.0),
        precision="float32",
    )
    return CallAndResponse(out, messages[-200:], list(CALL_AND_RESPONSE_PAIRS))
