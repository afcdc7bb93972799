"""The base-model comparison: the held-out part it scores, its table, and its refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.base_model_compare import base_test_part, main, table
from textgen.corpus import load_corpus

HEAD = Path(__file__).resolve().parents[1] / "data" / "ubuntu-irc-head.log"


def test_the_base_test_part_is_the_newest_messages_and_is_cut_to_size():
    messages = load_corpus(HEAD, "irc", keep_records=False).messages
    part = base_test_part(HEAD, 2_000)
    assert 0 < sum(map(len, part)) <= 2_000 + max(map(len, part))
    # The newest 5% of the characters, in order: it starts where the log's tail starts.
    tail = base_test_part(HEAD, 10**9)
    assert part == tail[: len(part)]
    assert tail == messages[len(messages) - len(tail) :]
    assert 0.03 < sum(map(len, tail)) / sum(map(len, messages)) < 0.07


def _figures(nats: float, auc: float) -> dict:
    return {
        "own test part": nats,
        "unseen channel, untouched": nats + 0.2,
        "unseen channel, fine-tuned": nats - 0.1,
        "replies": {
            "auc": auc,
            "auc_spread": 0.01,
            "copy_rate": 0.0,
            "distinct_pairs": 0.7,
            "mean_chars": 80.0,
            "cpu_ms_per_reply": 4.0,
        },
    }


def test_the_table_has_one_column_per_model_in_the_order_run():
    text = table({"incumbent (base-model)": _figures(1.54, 0.88), "candidate (new)": _figures(1.45, 0.82)})
    lines = text.splitlines()
    assert lines[0] == "| | incumbent (base-model) | candidate (new) |"
    assert "| nats/char, own test part | 1.5400 | 1.4500 |" in lines
    assert (
        "| detectability AUC of the fine-tune's replies (mean ± spread) | 0.880 ± 0.010 | 0.820 ± 0.010 |"
        in lines
    )


def test_a_candidate_that_is_not_a_bundle_is_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--candidate", str(tmp_path)])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error:" in err and ("not a model bundle" in err or "Ubuntu IRC log" in err)
