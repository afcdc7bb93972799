"""How the promotion gate's verdict on a model version reads, the same in chat, the CLI and the logs.

The gate stores in a version's metrics its held-out score (`holdout_nats_per_char`), the score of the
model that served when it judged (`incumbent_nats_per_char`) and its decision (`gate`). Those two scores
are the figures of record: every place that shows a version's score shows `holdout_nats_per_char`, so one
version never reads as two numbers. A job whose model the gate rejected ran fine, so its row says
"succeeded"; what people read is its outcome, "not promoted: 1.600 vs 1.530 serving".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def format_nats(value: float) -> str:
    """A nats/char figure as every status line writes it: three decimals."""
    return f"{value:.3f}"


def held_out_score(metrics: Mapping[str, Any] | None) -> float | None:
    """A version's figure of record in nats/char: the gate's held-out score, else training's validation."""
    metrics = metrics or {}
    for key in ("holdout_nats_per_char", "val_nats_per_char"):
        value = metrics.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def gate_outcome(metrics: Mapping[str, Any] | None) -> str | None:
    """What the gate made of a version: "promoted: 1.530 vs 1.600 serving", "not promoted: 1.600 vs
    1.530 serving", "promoted: 1.530, nothing served before"; None for a version the gate never judged."""
    metrics = metrics or {}
    decision = metrics.get("gate")
    score = metrics.get("holdout_nats_per_char")
    if decision not in ("promoted", "rejected"):
        return None
    word = "promoted" if decision == "promoted" else "not promoted"
    if not isinstance(score, int | float):
        return f"{word}: no finite held-out score"
    serving = metrics.get("incumbent_nats_per_char")
    if isinstance(serving, int | float):
        return f"{word}: {format_nats(score)} vs {format_nats(serving)} serving"
    if decision == "rejected":
        return f"{word}: {format_nats(score)}, no better than a uniform guess"
    return f"{word}: {format_nats(score)}, nothing served before"
