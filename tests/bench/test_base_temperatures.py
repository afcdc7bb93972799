"""The temperature check on the base model's own held-out chat: one row per temperature, the default marked."""

import pytest

from tests.trainer.conftest import IRC_LOG


def test_each_temperature_gets_its_row_and_the_default_is_marked(capsys):
    pytest.importorskip("sklearn")
    from bench.base_temperatures import measure
    from bench.reply_quality import BASE_MODEL
    from bot.core.services import BotConfig
    from textgen.corpus import parse_corpus

    held_out = parse_corpus(IRC_LOG.read_text(encoding="utf-8")[:40_000], "irc").messages
    default = BotConfig().temperature
    lines = measure(BASE_MODEL, held_out, [default, 1.6], replies=20, seeds=1)
    rows = lines[2:]
    assert len(rows) == 2 and rows[0].startswith(f"| {default} (the bot's default) |")
    assert rows[1].startswith("| 1.6 |")
    for row in rows:
        auc = float(row.split("|")[2])
        assert 0.0 <= auc <= 1.0
    assert capsys.readouterr().out.splitlines() == lines  # each row printed as it is measured


def test_temperatures_that_are_not_numbers_are_refused_in_one_line(capsys):
    from bench.base_temperatures import main

    with pytest.raises(SystemExit):
        main(["--temperatures", "0.8,warm"])
    assert "--temperatures takes numbers separated by commas, received '0.8,warm'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--temperatures", "0.8,0"])
    assert "--temperatures must be above 0 (replies are sampled), received '0.8,0'" in capsys.readouterr().err
