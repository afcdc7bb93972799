"""`chatsmith generate --scope`: samples pass the output filter the bots' replies pass.

A scope's samples are what its bot would say, so they get its workspace's profanity policy and own
words, the slur block and the masking of personal data (`bot.core.output_filter`). A blocked sample is
drawn again, up to `MAX_ATTEMPTS` in all, then the bots' fallback line stands in for it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.engine import Engine

from bot.core.output_filter import FALLBACK, MAX_ATTEMPTS, OutputFilter


def scope_output_filter(engine: Engine, platform: str, workspace: str) -> OutputFilter:
    """The output filter of platform:workspace, as its bot builds it (without copy guards)."""
    from sqlalchemy.orm import Session

    from db.filters import filter_settings

    with Session(engine) as session:
        settings = filter_settings(session, platform, workspace)
    return OutputFilter(settings)


def filtered(output: OutputFilter, sample: str, redraw: Callable[[int], str], prompt: str) -> str:
    """`sample` as the bot would post it: masked, or drawn again by `redraw(attempt)` when blocked."""
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            sample = redraw(attempt)
        checked = output.check(sample, after=len(prompt))
        if checked.blocked is None:
            return checked.text
    return FALLBACK
