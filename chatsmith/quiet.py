"""Importing TensorFlow without its C++ start-up chatter on the terminal.

TensorFlow's native libraries log (oneDNN notices, "could not find cuda drivers") through absl before
any Python logging setting applies, and `TF_CPP_MIN_LOG_LEVEL` does not reach those first lines. Users
of `chatsmith demo` came to read samples, so the import runs with the process's stderr pointed at
/dev/null; errors still surface as Python exceptions once stderr is back.
"""

from __future__ import annotations

import os
import sys


def import_tensorflow_quietly() -> None:
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
