"""Where the benchmark corpora are: `../shared/data` beside the repository, or the copy chatsmith ships."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@dataclass(frozen=True)
class Sources:
    """Corpus files for one run.

    Args:
        shakespeare: Tiny Shakespeare as a plain-text file.
        irc: the Ubuntu IRC training log, or None when it is not available (its benchmarks are skipped).
        shakespeare_origin: where the Shakespeare file came from, for the record.
    """

    shakespeare: Path
    irc: Path | None
    shakespeare_origin: str


def find_sources(data_dir: Path = SHARED_DATA) -> Sources:
    """The corpora, falling back to the Tiny Shakespeare copy shipped with chatsmith.

    The fallback is written once to a temporary file because the benchmarks hand paths to subprocesses.
    """
    shakespeare = data_dir / "tinyshakespeare.txt"
    irc = data_dir / "ubuntu-irc-train.log"
    origin = str(shakespeare)
    if not shakespeare.exists():
        from chatsmith.demo_corpus import demo_corpus

        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", suffix="-tinyshakespeare.txt", delete=False, prefix="chatsmith-bench-"
        ) as handle:
            handle.write(demo_corpus())
        shakespeare = Path(handle.name)
        origin = "chatsmith's shipped copy (demo_corpus)"
        print(f"[bench] {data_dir} has no tinyshakespeare.txt; using {origin}", file=sys.stderr)
    if not irc.exists():
        print(
            f"[bench] {irc} not found: the IRC benchmarks (chat, irc-memory) will be skipped", file=sys.stderr
        )
        irc_path = None
    else:
        irc_path = irc
    return Sources(shakespeare=shakespeare, irc=irc_path, shakespeare_origin=origin)
