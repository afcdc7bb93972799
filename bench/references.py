"""Figures measured elsewhere, shown apart from the table for orientation.

They come from docs/benchmarks.md ("Figures seen on this kind of machine"): measured once, outside this
script, so they are never a ratio in the table, which only compares things run in the same script.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Reference:
    """One figure measured elsewhere: what, how much, and where it was measured."""

    what: str
    value: float
    unit: str
    source: str


REFERENCES = (
    Reference(
        what="nanoGPT's CPU recipe (4 layers, 4 heads, 128 wide, block 64, batch 12, 2000 iterations), "
        "100 s, Tiny Shakespeare validation loss (its last 10%)",
        value=1.89,
        unit="nats/char",
        source="docs/benchmarks.md",
    ),
    Reference(
        what="a plain Keras character LSTM (256 units, window 64, batch 32, Adam 2e-3), 90 s, "
        "Tiny Shakespeare (the setting the in-script Keras baseline reproduces)",
        value=1.68,
        unit="nats/char",
        source="docs/benchmarks.md",
    ),
)


def format_references(references: tuple[Reference, ...] = REFERENCES) -> str:
    """One Markdown bullet per reference."""
    return "\n".join(f"- {ref.what}: {ref.value} {ref.unit} ({ref.source})" for ref in references)


def references_record(references: tuple[Reference, ...] = REFERENCES) -> list[dict[str, Any]]:
    return [asdict(ref) for ref in references]
