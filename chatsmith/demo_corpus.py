"""The text chatsmith ships for its demo, its tests and its benchmarks: Tiny Shakespeare (public domain)."""

from __future__ import annotations

import gzip
from importlib import resources


def demo_corpus() -> str:
    """The public-domain text shipped with chatsmith (Tiny Shakespeare), about 1.1 million characters."""
    data = resources.files("chatsmith").joinpath("data/tinyshakespeare.txt.gz").read_bytes()
    return gzip.decompress(data).decode("utf-8")
