"""Where the benchmark corpora are: `../shared/data` beside the repository, or the copy chatsmith ships."""

from __future__ import annotations

import hashlib
import os
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

    The fallback is written to a file because the benchmarks hand paths to subprocesses.
    """
    shakespeare = data_dir / "tinyshakespeare.txt"
    irc = data_dir / "ubuntu-irc-train.log"
    origin = str(shakespeare)
    if not shakespeare.exists():
        shakespeare = shipped_shakespeare_file()
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


def shipped_shakespeare_file() -> Path:
    """The shipped Tiny Shakespeare as a file in the temporary directory, named by its content.

    Written once and reused by later runs (a file per run would pile up, a megabyte each); written under
    a temporary name and renamed, so that a run never reads another run's half-written file.
    """
    from chatsmith.demo_corpus import demo_corpus

    text = demo_corpus()
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"chatsmith-tinyshakespeare-{digest}.txt"
    if not path.exists():
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
        ) as handle:
            handle.write(text)
        os.replace(handle.name, path)
    return path
