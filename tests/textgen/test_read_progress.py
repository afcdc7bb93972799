"""The progress bar of `chatsmith import`: redrawn in place on a terminal, a line now and then in a log."""

from __future__ import annotations

import io

from chatsmith.read_progress import ReadProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_redraws_in_place_on_a_terminal_and_ends_the_line() -> None:
    stream = Terminal()
    bar = ReadProgressBar("export.zip", "files", stream=stream, interval=0.0)
    bar(1, 4)
    bar(4, 4)
    bar.close()
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "reading export.zip [" in text and "100.0% 4/4 files" in text


def test_bar_writes_a_plain_line_to_a_log_only_every_interval() -> None:
    stream = io.StringIO()
    bar = ReadProgressBar("chat.log", "bytes", stream=stream)
    for done in range(0, 5_000_000, 100_000):
        bar(done, 5_000_000)
    bar.close()
    assert stream.getvalue() == ""  # a quick read says nothing
    bar.interval = 0.0
    bar(5_000_000, 5_000_000)
    assert stream.getvalue().endswith("5.0/5.0 MB 0s\n") and "\r" not in stream.getvalue()
