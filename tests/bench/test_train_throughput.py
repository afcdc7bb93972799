"""The training-throughput benchmark's arithmetic: FLOPs per token, the step-time fit, the table."""

import pytest

from bench.train_throughput import (
    Timings,
    Variant,
    fixed_and_per_row_seconds,
    format_table,
    training_flops_per_token,
)
from textgen.spec import ModelSpec


def test_flops_per_token_count_every_weight_matrix_three_times_two():
    # GRU 256 over an embedding of 64, 260 byte tokens: input, recurrent and logits kernels.
    multiply_adds = 64 * 768 + 256 * 768 + 256 * 260
    assert training_flops_per_token(ModelSpec(), 260) == 6 * multiply_adds
    lstm = ModelSpec(arch="lstm", layers=2, units=128, embedding=32)
    stacked = (32 * 512 + 128 * 512) + (128 * 512 + 128 * 512) + 128 * 100
    assert training_flops_per_token(lstm, 100) == 6 * stacked


def test_window_models_are_refused_rather_than_miscounted():
    with pytest.raises(ValueError, match="causal"):
        training_flops_per_token(ModelSpec(arch="bilstm"), 260)


def test_step_time_splits_into_a_fixed_cost_and_a_cost_per_row():
    points = [(batch, 0.010 + batch * 0.001) for batch in (32, 64, 128)]
    fixed, per_row = fixed_and_per_row_seconds(points)
    assert fixed == pytest.approx(0.010) and per_row == pytest.approx(0.001)
    with pytest.raises(ValueError, match="two batch sizes"):
        fixed_and_per_row_seconds([(64, 0.1), (64, 0.2)])


def test_table_gives_ratios_to_the_first_variant_and_the_rate_achieved():
    # The loop's median; the step alone's best round (a disturbed round must not pass for the step's speed).
    variants = (Variant("old", 32), Variant("new", 64))
    timings = {
        "old": Timings([10_000, 12_000, 11_000], [20_000] * 3),
        "new": Timings([16_500] * 3, [22_000] * 3),
    }
    header, rule, old, new = format_table(variants, timings, flops_per_token=2e6)
    assert old == "| old | 11,000 | 1.00x | 22.0 | 20,000 | 45% |"
    assert new == "| new | 16,500 | 1.50x | 33.0 | 22,000 | 25% |"
