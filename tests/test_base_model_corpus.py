"""`chatsmith train --drop-slurs`, the base model's corpus filter: messages with a slur are left out whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatsmith.cli import main
from tests.bot.test_output_filter import SLUR_LINE


def test_drop_slurs_leaves_out_those_messages_and_refuses_an_empty_corpus(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(f"{SLUR_LINE}\n{SLUR_LINE.upper()}\n", encoding="utf-8")
    code = main(
        ["train", "--corpus", str(corpus), "--format", "lines", "--out", str(tmp_path / "m"), "--drop-slurs"]
    )
    err = capsys.readouterr().err
    assert code != 0
    assert "left out 2 of 2 messages that hold a slur" in err
    assert "every message holds a slur; nothing is left to train on" in err
    # The words themselves are never printed.
    assert SLUR_LINE.split()[3] not in err.lower()
