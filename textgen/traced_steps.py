"""Letting go of a training run's traced steps, for a process that trains one model after another.

Tracing a training step under a distribution strategy registers a gradient function for each all-reduce
in it (Keras' optimizer does one, even on one device) in TensorFlow's process-wide gradient registry, and
nothing ever removes it. Each entry keeps its traced graph alive, and with it the model's variables and
optimizer slots that the graph captured: about 15 MB per run of a GRU-384, for as long as the process
lives. The trainer runs for weeks, one job after another.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

# How TensorFlow names the gradient functions `tf.custom_gradient` registers while tracing.
_TRACED_GRADIENT_PREFIX = "CustomGradient-"


@contextmanager
def released_after_run() -> Iterator[None]:
    """Run one training inside; afterwards, drop what TensorFlow and Keras keep of it.

    Only for a process with one run at a time (the trainer): Keras' global state is process-wide, and the
    gradient functions dropped are all those registered while the block ran. TensorFlow is not imported
    for it; a block that never used TensorFlow leaves nothing to drop.
    """
    before = set(_gradient_registry())
    try:
        yield
    finally:
        registry = _gradient_registry()
        for name in [name for name in registry if name.startswith(_TRACED_GRADIENT_PREFIX)]:
            if name not in before:
                del registry[name]
        if "keras" in sys.modules:
            # Without the forced full garbage collection (`free_memory`): Python's collector reclaims the
            # model's reference cycles anyway, and a forced pass over a process that has imported
            # TensorFlow takes a third of a second.
            sys.modules["keras"].backend.clear_session(free_memory=False)


def _gradient_registry() -> dict:
    """TensorFlow's registry of gradient functions by name; empty before TensorFlow is imported."""
    ops = sys.modules.get("tensorflow.python.framework.ops")
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else {}
