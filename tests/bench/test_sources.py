"""Where the benchmarks find their corpora on a clone without `../shared`."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import sources
from chatsmith.demo_corpus import demo_corpus


def test_without_shared_data_the_shipped_shakespeare_is_one_file_reused_by_every_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources.tempfile, "tempdir", str(tmp_path))
    first = sources.find_sources(tmp_path / "no-shared-data")
    second = sources.find_sources(tmp_path / "no-shared-data")
    assert first.shakespeare == second.shakespeare
    assert first.shakespeare.read_text(encoding="utf-8") == demo_corpus()
    assert first.irc is None and "shipped copy" in first.shakespeare_origin
    # One file, and no half-written temporary one beside it.
    assert [path.name for path in tmp_path.iterdir() if path.is_file()] == [first.shakespeare.name]
