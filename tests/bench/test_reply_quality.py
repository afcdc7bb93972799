"""The reply-quality judge: what counts as a known word, a copy, the held-out part, and the writers measured."""

from dataclasses import replace

import pytest

from bench.reply_quality import ChannelLine, build_lexicon, copy_index, reply_figures, split_newest


def test_the_newest_third_by_timestamp_is_held_out_wherever_it_sits_in_the_file():
    lines = [ChannelLine(f"2019-0{month}-01 10:00", "ann", f"m{month}") for month in (1, 3, 2)]
    history, held_out = split_newest(lines)
    assert [line.text for line in history] == ["m1", "m2"]
    assert [line.text for line in held_out] == ["m3"]


def test_known_words_copies_pairs_and_length():
    history = ["you need to create the payment intent on the server first", "the webhook fires twice"]
    lexicon = build_lexicon([history, history])
    index = copy_index(history)
    figures = reply_figures(
        [
            "You need to create the payment intent on the server",  # 8+ words of one message
            "the webhook fires zorblax",  # one invented word of four
        ],
        lexicon,
        index,
    )
    assert figures["copy_rate"] == 0.5
    assert figures["known_words"] == 13 / 14
    assert figures["mean_words"] == 7.0
    assert 0 < figures["distinct_pairs"] <= 1


def test_a_reply_follows_the_held_out_messages_just_before_its_point():
    from bench.reply_writers import conversations
    from bot.core.handlers.generate import CONTEXT_MESSAGES

    held_out = [f"m{i}" for i in range(100)]
    for messages in (None, 1, 5):
        count = CONTEXT_MESSAGES if messages is None else messages
        for point in conversations(held_out, 20, seed=1, context_messages=messages):
            last = int(point.recent[-1][1:])
            assert point.context == tuple(f"m{i}" for i in range(max(0, last - count + 1), last + 1))
            assert point.recent[-len(point.context) :] == point.context
            assert len(point.recent) == min(50, last + 1)
            assert point.point == last + 1  # the message the reply stands in for comes right after
    # Who wrote each message the reply read, where the authors are known.
    authors = [f"a{i}" for i in range(100)]
    for point in conversations(held_out, 20, seed=1, authors=authors):
        assert point.authors == tuple(f"a{text[1:]}" for text in point.recent)


def test_every_decoding_is_measured_beside_the_defaults_and_the_temperature_curve():
    from bench.reply_writers import PREVIOUS_DEFAULTS, decodings
    from bot.core.services import BotConfig

    rows = decodings(BotConfig())
    names = [row.name for row in rows]
    assert names[0] == "/generate at the bot's defaults" and rows[0].config == BotConfig()
    assert [
        row.config.temperature for row in rows if "no context" in row.name and "temperature" in row.name
    ] == [
        0.8,
        1.0,
        1.1,
        1.3,
    ]
    # "Temperature alone": the previous defaults with one fixed length, nothing else changed.
    for row in rows:
        if "no context" in row.name and "temperature" in row.name:
            assert row.config == replace(PREVIOUS_DEFAULTS, temperature=row.config.temperature)
    assert not PREVIOUS_DEFAULTS.length_from_channel and not PREVIOUS_DEFAULTS.names_from_conversation
    # Each of the defaults' own changes is measured against them, with it off.
    assert any(
        row.config == replace(BotConfig(), names_from_conversation=False) and row.context for row in rows
    )
    assert any(row.config.best_of > 1 for row in rows)
    assert any(row.config.typical_p for row in rows) and any(row.config.min_p for row in rows)
    assert any(row.config.length_from_channel for row in rows)
    # Changed defaults are measured against the previous ones in the same run.
    changed = decodings(BotConfig(best_of=2))
    assert any(row.config == PREVIOUS_DEFAULTS for row in changed)


def test_the_reading_shows_each_writers_figures_and_its_replies():
    from bench.reply_reading import reading

    writer = {
        "auc": 0.81,
        "auc_spread": 0.02,
        "copy_rate": 0.0,
        "distinct_pairs": 0.7,
        "mean_chars": 64.0,
        "cpu_ms_per_reply": 20.0,
        "samples": ["a | b", ""],
    }
    text = reading({"replies": 2, "seeds": 1, "writers": {"markovify": writer}})
    assert "| markovify | 0.810 | ±0.020 | 0.0% | 0.70 | 64 | 20 ms |" in text
    assert "1. a \\| b" in text and "2. (empty)" in text


@pytest.mark.slow
def test_a_tiny_run_judges_every_writer_and_the_calibration():
    pytest.importorskip("sklearn")
    pytest.importorskip("markovify")
    from bench.reply_quality import measure_replies
    from bench.settings import RunSettings
    from bench.sources import find_sources

    # One seed: the figures over several seeds are checked on their own below. Ten replies a writer, the
    # fewest the classifier's five folds take with two texts a side in each.
    outcome = measure_replies(RunSettings(quick=True, sources=find_sources(), tiny=True), count=10, seeds=1)
    writers = outcome.figures["writers"]
    assert "markovify, state 2" in writers and "fine-tuned, /generate at the bot's defaults" in writers
    # What production serves: a model fine-tuned as the trainer's job fine-tunes one.
    job = writers["fine-tuned as the trainer's job does, /generate at the bot's defaults"]
    assert job["nats_per_char"] > 0
    assert all(0.0 <= writer["auc"] <= 1.0 and len(writer["samples"]) == 10 for writer in writers.values())
    assert all(writer["auc_spread"] >= 0 for writer in writers.values())
    assert 0.0 <= outcome.figures["calibration_auc"] <= 1.0
    names = [row.name for row in outcome.rows]
    assert any("calibration" in name for name in names)
    assert any("vs best of markovify and temperature" in name for name in names)


def test_over_seeds_averages_each_seeds_figures_and_keeps_the_spread_and_the_first_seeds_replies():
    pytest.importorskip("sklearn")
    from bench.reply_quality import Judge

    held_out = [f"is the webhook for invoice {n} firing twice after the retry" for n in range(40)]
    judge = Judge(build_lexicon([held_out, held_out]), copy_index(["nothing alike here at all"]), held_out)
    # Seed 1 writes the channel's own messages (nothing to tell apart), seed 2 something else entirely.
    written = {1: list(held_out), 2: ["zzz qqq xxx"] * 40}
    figures = judge.over_seeds(2, lambda seed: (written[seed], 0.002 * seed))
    assert figures["samples"] == written[1][:20]
    assert figures["auc_spread"] > 0.2  # the second seed's replies are trivially told apart
    assert figures["cpu_ms_per_reply"] == pytest.approx(3.0)  # the mean of 2 ms and 4 ms
