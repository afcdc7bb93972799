"""The training-variants benchmark's command line."""

from __future__ import annotations

import pytest

from bench.train_variants import parse_variant


def test_a_variant_is_a_name_and_the_train_options_it_adds() -> None:
    assert parse_variant("defaults=") == ("defaults", [])
    assert parse_variant("wide=--units 384 --learning-rate 0.004") == (
        "wide",
        ["--units", "384", "--learning-rate", "0.004"],
    )


@pytest.mark.parametrize("text", ["--batch-size 64", "=--batch-size 64"])
def test_a_variant_without_a_name_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(SystemExit, match="expected NAME=OPTIONS"):
        parse_variant(text)
