"""A one-line progress bar for training runs, on stderr so `--json` output stays clean."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from textgen.training import TrainingProgress


def _clock(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "--:--"
    seconds = int(max(0, seconds))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


class ProgressBar:
    """Redraws one line at most a few times a second; plain lines when stderr is not a terminal."""

    def __init__(self, stream: TextIO | None = None, width: int = 28, interval: float = 0.25) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interval = interval
        self.interactive = self.stream.isatty()
        self._last = 0.0
        self._last_epoch = 0

    def __call__(self, progress: TrainingProgress) -> None:
        now = time.monotonic()
        new_epoch = progress.epoch != self._last_epoch
        if not self.interactive:
            # Logs get one line per epoch start and about every 10 seconds, not a flood.
            if not new_epoch and now - self._last < 10:
                return
        elif now - self._last < self.interval and not new_epoch:
            return
        self._last, self._last_epoch = now, progress.epoch
        filled = int(self.width * progress.fraction)
        bar = "#" * filled + "." * (self.width - filled)
        line = (
            f"epoch {progress.epoch}/{progress.epochs} [{bar}] {progress.fraction:5.1%} "
            f"loss {progress.loss:.3f} acc {progress.accuracy:.3f} "
            f"elapsed {_clock(progress.elapsed)} eta {_clock(progress.eta_seconds)}"
        )
        if self.interactive:
            self.stream.write("\r" + line + "\x1b[K")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.interactive and self._last:
            self.stream.write("\n")
            self.stream.flush()
