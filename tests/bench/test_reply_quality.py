"""The reply-quality judge: what counts as a known word, a copy, and the held-out part."""

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
