"""`python -m bench.half_weights`: float32 against float16 weights, side by side, on held-out chat."""

import re
from pathlib import Path

import pytest

from bench.half_weights import measure
from bench.reply_quality import BASE_MODEL, read_channel
from textgen.half_weights import fast_half_products

STRIPE_HEAD = Path(__file__).parents[1] / "data" / "stripe-irc-head.log"


@pytest.mark.skipif(not fast_half_products(), reason="this CPU has no vector kernel for float16 weights")
def test_the_report_puts_both_precisions_side_by_side_and_they_agree():
    messages = [line.text for line in read_channel(STRIPE_HEAD)][:120]
    lines = measure(BASE_MODEL, {"stripe head": messages}, rounds=1, steps=50)
    [row] = [line for line in lines if line.startswith("| stripe head |")]
    full, half, difference = (float(cell) for cell in row.strip("|").split("|")[2:5])
    assert 0.5 < full < 4.0 and abs(half - full) < 1e-3 and difference == pytest.approx(half - full, abs=2e-5)
    [logits] = [line for line in lines if line.startswith("Largest difference")]
    assert float(re.findall(r"([0-9.]+)\.$", logits)[0]) < 0.1
    assert any(line.startswith("| CPU, median of 1 rounds of 50 |") for line in lines)
