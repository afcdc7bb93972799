"""The error-text helpers every package uses: what a user or a log sees of an error."""

from __future__ import annotations

from errortext import causes, error_line, first_line, shortened


def test_first_line_skips_leading_blank_lines_and_is_empty_for_blank_text() -> None:
    assert first_line("\n  disk full\ntraceback follows\n") == "disk full"
    assert first_line("  \n ") == ""


def test_an_error_without_a_message_reads_as_its_type() -> None:
    assert error_line(OSError("cannot open\nfile xyz")) == "cannot open"
    assert error_line(KeyError()) == "KeyError"


def test_shortened_keeps_short_text_and_cuts_long_text_to_the_limit() -> None:
    assert shortened("short", 10) == "short"
    assert shortened("x" * 20, 10) == "xxxxxxx..."
    assert len(shortened("x" * 20, 10)) == 10


def test_causes_follow_raise_from_and_handling_and_stop_at_a_cycle() -> None:
    try:
        try:
            raise OSError("inner")
        except OSError as inner:
            raise ValueError("outer") from inner
    except ValueError as error:
        outer = error
    assert [str(cause) for cause in causes(outer)] == ["outer", "inner"]
    looped = RuntimeError("loop")
    looped.__context__ = looped
    assert list(causes(looped)) == [looped]
