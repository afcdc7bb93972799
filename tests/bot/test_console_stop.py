"""`chatsmith console` stops cleanly on SIGTERM and SIGINT even while it waits for a line."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_the_console_keeping_what_was_said(
    tmp_path: Path, base_bundle: Path, stop_signal: signal.Signals
) -> None:
    env = {
        **os.environ,
        "CHATSMITH_DATA_DIR": str(tmp_path / "data"),
        "CHATSMITH_BASE_MODEL_PATH": str(base_bundle),
    }
    command = [sys.executable, "-m", "chatsmith.cli", "console", "--workspace", "W", "--channel", "C"]
    console = subprocess.Popen(
        [*command, "--user", "U", "--admin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert console.stdin is not None and console.stdout is not None
        console.stdin.write("/collect on\nkeep this line\n/status\n")
        console.stdin.flush()
        # Its answer to /status shows it has read every line; stdin stays open, so it now waits for more.
        lines: queue.Queue[str] = queue.Queue()
        stdout = console.stdout
        threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
        deadline = time.monotonic() + 60
        while "Collection in #C: on (1 messages kept" not in lines.get(
            timeout=max(0.1, deadline - time.monotonic())
        ):
            pass
        time.sleep(0.5)
        console.send_signal(stop_signal)
        code = console.wait(timeout=30)
    finally:
        if console.poll() is None:
            console.kill()
    assert code == 0, console.stderr.read() if console.stderr else ""
    with sqlite3.connect(tmp_path / "data" / "chatsmith.db") as db:
        assert db.execute("select text from messages").fetchall() == [("keep this line",)]
