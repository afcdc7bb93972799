"""Importing TensorFlow and Keras the way chatsmith's processes start: without Keras's optional
integrations, and, for the command line, without TensorFlow's C++ start-up chatter.

Keras imports scikit-learn (for its estimator wrappers) and matplotlib's pyplot (for an image gallery)
whenever they are installed. chatsmith calls neither, and the two cost about a second of CPU at every
start of a trainer, `chatsmith train` or a benchmark child: a quarter of importing TensorFlow. They are
kept out while TensorFlow and Keras load, and allowed again after, so that the rest of the process can
still import them (the bot draws charts with matplotlib; the benchmarks use scikit-learn).

TensorFlow's native libraries log (oneDNN notices, "could not find cuda drivers") through absl before any
Python logging setting applies, and `TF_CPP_MIN_LOG_LEVEL` does not reach those first lines. Users of
`chatsmith demo` came to read samples, so a quiet import runs with the process's stderr pointed at
/dev/null; errors still surface as Python exceptions once stderr is back.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# Packages Keras imports only for helpers chatsmith never calls (`keras.wrappers`, `keras.visualization`).
KERAS_OPTIONAL_PACKAGES = ("sklearn", "matplotlib")


def import_tensorflow(*, quiet: bool = False) -> None:
    """Import TensorFlow and Keras (nothing happens where TensorFlow is imported already).

    Args:
        quiet: send what the native libraries print while loading to /dev/null.
    """
    if "tensorflow" in sys.modules:
        return
    with without_keras_optional_packages():
        if not quiet:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401

            return
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


@contextmanager
def without_keras_optional_packages() -> Iterator[None]:
    """`KERAS_OPTIONAL_PACKAGES` fail to import inside the block, and import as usual after it."""
    # A `None` entry in sys.modules makes `import name` raise ImportError, which Keras treats as "not
    # installed". Packages the process has imported already stay as they are.
    blocked = [name for name in KERAS_OPTIONAL_PACKAGES if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]
