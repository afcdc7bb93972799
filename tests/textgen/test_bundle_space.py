"""A bundle the disk cannot hold is refused before anything is written (HDF5 crashes on a full disk)."""

import shutil
from collections import namedtuple

import pytest

from textgen.bundle import save_bundle
from textgen.errors import TextgenError
from textgen.model import build_model
from textgen.spec import ModelSpec
from textgen.tokenizers import ByteTokenizer

Usage = namedtuple("Usage", "total used free")


def test_too_little_space_is_refused_in_one_line_and_nothing_is_left_behind(tmp_path, monkeypatch):
    spec = ModelSpec(arch="gru", units=64, embedding=16, seq_len=16)
    model = build_model(spec, ByteTokenizer().vocab_size)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 200_000, 200_000))
    with pytest.raises(TextgenError, match=r"not enough disk space .* MB free, .* MB needed") as refused:
        save_bundle(tmp_path / "model", model, spec, ByteTokenizer())
    assert "\n" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []

    monkeypatch.undo()
    save_bundle(tmp_path / "model", model, spec, ByteTokenizer())
    assert (tmp_path / "model" / "bundle.json").exists()
