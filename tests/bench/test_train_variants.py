"""The training-variants benchmark's command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.train_runs import train
from bench.train_variants import Cell, parse_checkout, parse_variant


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


def _fake_checkout(root: Path, nats: float) -> Path:
    """A directory laid out as a checkout whose `chatsmith train` prints fixed metrics."""
    package = root / "chatsmith"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    metrics = {"test_nats_per_char": nats, "train_tokens_per_sec": 1000.0, "steps": 7}
    (package / "cli.py").write_text(f"import json\nprint(json.dumps({metrics!r}))\n")
    return root


def test_a_checkout_variant_runs_the_code_at_that_checkout(tmp_path: Path) -> None:
    checkout = _fake_checkout(tmp_path / "release", nats=9.5)
    corpus = tmp_path / "chat.log"
    corpus.write_text("hello\n")
    run = train(corpus, tmp_path / "out", "lines", 5.0, [], "test", checkout)
    assert run.figures()["test_nats_per_char"] == 9.5 and run.figures()["steps"] == 7


def test_a_checkout_names_a_variant_and_a_checkout(tmp_path: Path) -> None:
    checkout = _fake_checkout(tmp_path / "release", nats=1.0)
    assert parse_checkout(f"old={checkout}", ["defaults", "old"]) == ("old", checkout.resolve())
    with pytest.raises(SystemExit, match="NAME one of the variants"):
        parse_checkout(f"missing={checkout}", ["defaults", "old"])
    with pytest.raises(SystemExit, match="is not a chatsmith checkout; make one with 'git worktree add"):
        parse_checkout(f"old={tmp_path}", ["defaults", "old"])


def test_a_run_without_a_validation_figure_shows_none_rather_than_stopping_the_table() -> None:
    cell = Cell(nats=[1.5, 1.6], validation=[None, None], tokens_per_second=[1000.0, 1000.0], steps=[7, 7])
    assert cell.line() == "1.550 (worst 1.600; 1.500 / 1.600) | n/a | 1.0k | 7"
    cell.validation = [1.4, None]
    assert "| 1.400 |" in cell.line()
