"""Shared test set-up: quiet TensorFlow, and the corpora the project ships beside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shakespeare() -> str:
    """A slice of Tiny Shakespeare: from ../shared/data when present, else the copy chatsmith ships."""
    path = SHARED_DATA / "tinyshakespeare.txt"
    if path.exists():
        return path.read_text(encoding="utf-8")[:60_000]
    from chatsmith.commands.textgen_commands import demo_corpus

    return demo_corpus()[:60_000]
