"""Fixtures for the deployment tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No chatsmith variable, token or TF_CONFIG from the outside, and a working directory without .env."""
    from chatsmith.settings import Settings

    names = {name for field in Settings.model_fields for name in Settings.env_names(field)}
    for key in list(os.environ):
        if key.upper().startswith("CHATSMITH_TEST_"):  # the test suite's own (PostgreSQL URL)
            continue
        if key.upper() in names or key.upper().startswith("CHATSMITH_") or key == "TF_CONFIG":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
