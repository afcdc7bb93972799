"""The decoding engine: a model's stepper over its weights as NumPy arrays.

Keras evaluates a whole sequence per call; generation needs one token at a time. Each architecture family
(`textgen.architectures`) brings a NumPy `Stepper` that decodes a batch one token per step from the
weight arrays (`textgen.weights`); generation and evaluation drive any of them through that protocol.
Nothing here imports TensorFlow: the bots decode without it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from textgen.architectures import Stepper
from textgen.spec import ModelSpec
from textgen.weights import Weights, weights_from_keras


def as_weights(source: Any, spec: ModelSpec) -> Weights:
    """`source` as named arrays: already `Weights`, or a Keras model whose arrays are read out."""
    return source if isinstance(source, dict) else weights_from_keras(source, spec)


_blas_limited = False


def limit_blas_threads() -> None:
    """Run NumPy's BLAS on one thread in this process, once.

    A decoding step multiplies a (batch, units) matrix by (units, gates*units): far too small to split
    across threads, and on a busy small machine OpenBLAS's thread hand-offs were measured at 10 to 100
    times the cost of the product itself. Concurrency comes from decoding requests in parallel instead.
    Process-wide on purpose: a per-call limit would be undone by another thread's exit from it.
    TensorFlow's own thread pools are not affected.
    """
    global _blas_limited
    if _blas_limited:
        return
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
    _blas_limited = True


def make_stepper(source: Any, spec: ModelSpec) -> Stepper:
    """The stepper of `spec`'s architecture family, from `Weights` or a Keras model (and BLAS limited to
    one thread, see `limit_blas_threads`)."""
    limit_blas_threads()
    return spec.family.make_stepper(as_weights(source, spec), spec)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
