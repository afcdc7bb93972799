"""TensorFlow is imported without the packages Keras loads only for helpers chatsmith never calls, and
those packages stay importable afterwards."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from textgen import tensorflow_import


@pytest.fixture
def optional_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A package standing in for scikit-learn: installed, not yet imported."""
    (tmp_path / "optional_integration").mkdir()
    (tmp_path / "optional_integration" / "__init__.py").write_text("LOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(tensorflow_import, "KERAS_OPTIONAL_PACKAGES", ("optional_integration",))
    yield "optional_integration"
    sys.modules.pop("optional_integration", None)


def test_optional_packages_are_kept_out_while_tensorflow_loads_and_importable_after(
    optional_package: str,
) -> None:
    # What Keras's `try: import sklearn / except ImportError` sees.
    with tensorflow_import.without_keras_optional_packages(), pytest.raises(ImportError):
        importlib.import_module(optional_package)
    assert optional_package not in sys.modules
    assert importlib.import_module(optional_package).LOADED


def test_a_package_imported_already_is_left_as_it_is(optional_package: str) -> None:
    module = importlib.import_module(optional_package)
    with tensorflow_import.without_keras_optional_packages():
        assert importlib.import_module(optional_package) is module
    assert sys.modules[optional_package] is module


def test_a_failed_import_still_lets_the_packages_in(optional_package: str) -> None:
    with pytest.raises(RuntimeError), tensorflow_import.without_keras_optional_packages():
        raise RuntimeError("TensorFlow failed to load")
    assert importlib.import_module(optional_package).LOADED
