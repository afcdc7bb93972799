"""Peak resident memory of `chatsmith train` on a big chat log, for one or more checkouts side by side.

Builds a corpus of about `--megabytes` MB by repeating the lines of an IRC log, then runs `chatsmith
train` on it once per checkout (`--checkout DIR`, repeatable: e.g. an older commit's worktree and this
one) with a short budget and a small separate validation file, each in a fresh process, and reports
the peak RSS of the whole process (TensorFlow included) from `getrusage(RUSAGE_CHILDREN)`.

    python -m bench.big_history_memory --log ubuntu-irc-train.log --checkout /old --checkout .
    python -m bench.big_history_memory --log ubuntu-irc-train.log --train-args "--tokenizer bpe" --checkout .
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 1_000_000


def build_corpus(log: Path, megabytes: float, out: Path) -> None:
    """Write `log`'s lines again and again into `out` until it holds `megabytes` MB."""
    lines = log.read_bytes()
    target = int(megabytes * MB)
    with out.open("wb") as sink:
        written = 0
        while written < target:
            piece = lines[: target - written]
            cut = piece.rfind(b"\n") + 1 if len(piece) < len(lines) else len(piece)
            sink.write(piece[:cut] if cut else piece)
            written += cut if cut else len(piece)


def peak_of_train(
    checkout: Path, corpus: Path, val: Path, budget: float, out: Path, extra: list[str] | None = None
) -> dict[str, object]:
    """Run `chatsmith train` from `checkout` (with the options `extra`) in a child process; its wall time
    and peak RSS."""
    command = [
        sys.executable,
        "-m",
        "chatsmith.cli",
        "train",
        "--corpus",
        str(corpus),
        "--format",
        "irc",
        "--val-corpus",
        str(val),
        "--out",
        str(out),
        "--time-budget",
        str(budget),
        "--json",
        *(extra or []),
    ]
    env = {**os.environ, "PYTHONPATH": str(checkout), "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        child = subprocess.Popen(command, cwd=checkout, env=env, stdout=stdout, stderr=stderr, text=True)
        # wait4 gives this child's own peak RSS (RUSAGE_CHILDREN would keep the largest child's).
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        done = subprocess.CompletedProcess(command, child.returncode, stdout.read(), stderr.read())
    peak_kib = usage.ru_maxrss
    last = [line for line in done.stdout.splitlines() if line.startswith("{")]
    metrics = json.loads(last[-1]) if last else {}
    return {
        "checkout": str(checkout),
        "returncode": done.returncode,
        "wall_s": round(time.monotonic() - started, 1),
        "peak_rss_mb": round(peak_kib * 1024 / MB),
        "train_tokens": metrics.get("train_tokens"),
        "steps": metrics.get("steps"),
        "error": done.stderr.strip().splitlines()[-1] if done.returncode else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Measure each checkout in turn on the same corpus, one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, required=True, help="an IRC log whose lines are repeated")
    parser.add_argument("--megabytes", type=float, default=100.0)
    parser.add_argument("--budget", type=float, default=20.0)
    parser.add_argument("--checkout", type=Path, action="append", required=True)
    parser.add_argument(
        "--train-args",
        default="",
        help='more `chatsmith train` options for every run, e.g. "--tokenizer bpe"',
    )
    args = parser.parse_args(argv)
    extra = shlex.split(args.train_args)
    with tempfile.TemporaryDirectory(prefix="chatsmith-bigmem-") as scratch:
        corpus, val = Path(scratch) / "big.log", Path(scratch) / "val.log"
        build_corpus(args.log, args.megabytes, corpus)
        val.write_text("\n".join(args.log.read_text(encoding="utf-8").splitlines()[-400:]) + "\n")
        for number, checkout in enumerate(args.checkout):
            row = peak_of_train(
                checkout.resolve(), corpus, val, args.budget, Path(scratch) / f"m{number}", extra
            )
            row["corpus_mb"] = round(corpus.stat().st_size / MB, 1)
            row["train_args"] = args.train_args
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
