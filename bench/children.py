"""Running one measurement in a fresh subprocess and reading its peak resident memory.

Every heavy case runs in its own process: memory high-water marks (`ru_maxrss`) only ever grow, and
TensorFlow's thread pools, caches and compiled functions would otherwise leak from one case into the next.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.sources import REPO_ROOT

# NumPy's BLAS (OpenBLAS in this venv) limited to one thread. On a small shared machine, BLAS threads
# handing off tiny products can cost 10-100x the products (see the generation benchmark's diagnostic
# rows). Only OpenBLAS is named: TensorFlow's own thread pools are left alone.
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1"}

# Where each subprocess's stderr is kept for reading after a run (None: not kept).
_log_dir: Path | None = None


def set_log_dir(path: Path | None) -> None:
    """Keep every subprocess's stderr under `path` as `<name>.log`."""
    global _log_dir
    _log_dir = path


class ChildFailed(RuntimeError):
    """A benchmark subprocess exited with an error, timed out, or printed no result."""


@dataclass
class ChildResult:
    """What a finished subprocess left behind.

    Args:
        stdout: everything it printed to stdout.
        stderr: the last part of what it printed to stderr (progress bars, logs).
        seconds: wall-clock time from start to exit.
        max_rss_bytes: its peak resident memory, from `wait4` (the kernel's figure, not sampled).
    """

    stdout: str
    stderr: str
    seconds: float
    max_rss_bytes: int

    def last_json(self) -> dict[str, Any]:
        """The last stdout line that parses as a JSON object (children print their result last)."""
        for line in reversed(self.stdout.strip().splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    continue
        raise ChildFailed(
            f"the subprocess printed no JSON result; its stderr ends with:\n{self.stderr[-2000:]}"
        )


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a benchmark subprocess: quiet TensorFlow, this checkout first on the path."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra or {})
    return env


def run_child(
    args: list[str],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    log_name: str | None = None,
) -> ChildResult:
    """Run `python args...` to completion and return its output, time and peak RSS.

    Output goes to temporary files rather than pipes so that waiting with `os.wait4` (which reports the
    child's own rusage) cannot deadlock on a full pipe.
    """
    command = [sys.executable, *args]
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8") as out,
        tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err,
    ):
        started = time.monotonic()
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=err,
            env=env or child_env(),
            cwd=cwd or REPO_ROOT,
            start_new_session=True,
        )
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(process.pid, 0)
                process.returncode = -signal.SIGKILL
                raise ChildFailed(f"{' '.join(command[1:4])} ... ran past {timeout:.0f} s and was stopped")
            time.sleep(0.05)
        seconds = time.monotonic() - started
        # wait4 reaped the child; tell Popen so it does not wait again or warn.
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if _log_dir is not None and log_name:
        _log_dir.mkdir(parents=True, exist_ok=True)
        # Progress bars redraw with carriage returns; keep their last state per line only.
        lines = [line.rsplit("\r", 1)[-1] for line in stderr.splitlines()]
        (_log_dir / f"{log_name}.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # Linux reports ru_maxrss in KiB.
    result = ChildResult(stdout, stderr[-20000:], seconds, int(usage.ru_maxrss) * 1024)
    if process.returncode != 0:
        raise ChildFailed(
            f"{' '.join(command[1:5])} ... exited with {process.returncode}; stderr ends with:\n{stderr[-3000:]}"
        )
    return result


def run_worker(
    task: str,
    options: dict[str, Any],
    *,
    timeout: float,
    extra_env: dict[str, str] | None = None,
    log_name: str | None = None,
) -> tuple[dict[str, Any], ChildResult]:
    """Run `python -m bench.worker TASK` with `options` as JSON and return (its JSON result, ChildResult)."""
    child = run_child(
        ["-m", "bench.worker", task, json.dumps(options)],
        timeout=timeout,
        env=child_env(extra_env),
        log_name=log_name or task,
    )
    return child.last_json(), child
