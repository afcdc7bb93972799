"""A one-line progress bar for reading a big chat file or export, on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ReadProgressBar:
    """Redraws one line at most a few times a second; a plain line about every 10 seconds when stderr is
    not a terminal, so logs get a heartbeat rather than a flood.

    Args:
        label: What is being read (the file's name).
        unit: "files" (day files of a Slack export) or "bytes".
    """

    def __init__(
        self, label: str, unit: str, stream: TextIO | None = None, width: int = 28, interval: float = 0.25
    ) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interactive = self.stream.isatty()
        self.interval = interval if self.interactive else 10.0
        self._started = time.monotonic()
        self._last = self._started
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        # A terminal always shows the finished bar; a log only hears of reads slow enough to wonder about.
        if now - self._last < self.interval and (done < total or not self.interactive):
            return
        self._last = now
        fraction = done / total if total else 0.0
        filled = int(self.width * fraction)
        bar = "#" * filled + "." * (self.width - filled)
        amount = f"{done}/{total} files" if self.unit == "files" else f"{done / 1e6:.1f}/{total / 1e6:.1f} MB"
        line = f"reading {self.label} [{bar}] {fraction:5.1%} {amount} {now - self._started:.0f}s"
        if self.interactive:
            self.stream.write("\r" + line + "\x1b[K")
        else:
            self.stream.write(line + "\n")
        self._drawn = True
        self.stream.flush()

    def close(self) -> None:
        if self.interactive and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
