"""Serving with float16 copies of the matrices a decoding step reads whole.

Each token of a reply multiplies one row by every recurrent kernel and by the output kernel. For the base
model's size (GRU 384 over bytes) those are 2.2 MB of float32, more than a core's L2 cache, so each step
streams them from L3 and the two products cost about twice what either does alone. As float16 they take
1.1 MB and stay in cache. The products still sum in float32 (`textgen/_halfmatmul.c` widens each weight
as it reads it); what changes is each weight, rounded to float16 (relative error at most 2^-11), which
moves a step's logits by about 1e-3 and held-out nats/char by far less (`tests/textgen/test_half_weights.py`
and `bench/RESULTS.md` measure both).

Only decoding for replies uses them (`Generator(..., half_weights=True)`, which the bots' model cache asks
for). Training, evaluation, the gate and the Keras parity checks read the float32 weights, and a CPU
without a vector kernel for float16 (`kernels()`) keeps float32: there the products would be slower.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the cells import this module: at run time the alias is not needed
    from textgen.architectures.family import Weights

try:
    from textgen._halfmatmul import kernels, matmul, to_half
except ImportError as error:  # a source tree that was never installed
    raise ImportError(
        "textgen._halfmatmul is not built: install chatsmith (`make install`, or `pip install -e .`), "
        "which compiles it"
    ) from error

# The arrays each step multiplies whole: every layer's recurrent kernel and the output kernel. The input
# kernels are not among them: the first is folded into a table read one row per token, and a deeper
# layer's reads a row that the step has just computed.
HALVED_SUFFIXES = ("/recurrent_kernel", "logits/kernel")
# float32 values read and rounded at a time when a matrix is halved (256 KB).
CHUNK_VALUES = 65_536


class HalfMatrix(np.ndarray):
    """A float16 matrix that NumPy multiplies from the left (`x @ matrix`) in float32 by the compiled
    kernel; any other operation sees a plain float16 array."""

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if (
            ufunc is np.matmul
            and method == "__call__"
            and not kwargs
            and len(inputs) == 2
            and inputs[1] is self
        ):
            return times(inputs[0], self)
        plain = [np.asarray(value) if isinstance(value, HalfMatrix) else value for value in inputs]
        return getattr(ufunc, method)(*plain, **kwargs)


def halve(matrix: np.ndarray) -> HalfMatrix:
    """`matrix` rounded to float16 (to nearest even, as NumPy rounds), as a `HalfMatrix`.

    The copy lives in a memory mapping of its own, so that a model leaving the bots' cache gives its
    memory back to the system whole, as its memory-mapped bundle does, rather than leaving holes in the
    heap; it is filled a chunk at a time, so a load needs no float32 copy of the matrix either.
    """
    half = np.frombuffer(mmap.mmap(-1, max(1, matrix.size) * 2), dtype=np.float16, count=matrix.size)
    compiled = fast_half_products()
    for start, chunk in _float32_chunks(matrix):
        if compiled:
            # Compiled: NumPy's cast takes 14 times as long, and every model loaded for replies is rounded.
            to_half(chunk, half[start : start + chunk.size], chunk.size)
        else:
            half[start : start + chunk.size] = chunk
    return half.reshape(matrix.shape).view(HalfMatrix)


def _float32_chunks(array: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """`(offset, values)` chunks of `array` in C order, float32; read from its file (`readinto`, one buffer)
    when it is a view of a memory map (`weights.npy`).

    Read through the map, the matrix's float32 pages would stay resident in this process for as long as
    the bundle is loaded, beside the float16 copy that replaces them: half again the memory. Read with
    `read()`, they stay in the page cache, counted in no process.
    """
    root = array
    while isinstance(root.base, np.ndarray):
        root = root.base
    if not isinstance(root, np.memmap) or root.filename is None or not array.flags.c_contiguous:
        flat = np.ascontiguousarray(array, dtype=np.float32).reshape(-1)
        for start in range(0, flat.size, CHUNK_VALUES):
            yield start, flat[start : start + CHUNK_VALUES]
        return
    if array.dtype != np.float32:
        raise ValueError(f"a mapped weight array is float32, not {array.dtype}")
    buffer = np.empty(CHUNK_VALUES, dtype=np.float32)
    with open(root.filename, "rb") as weights:
        # The map's own array starts at byte `offset` of the file; a view starts where its data does.
        weights.seek(root.offset + (array.ctypes.data - root.ctypes.data))
        for start in range(0, array.size, CHUNK_VALUES):
            chunk = buffer[: min(CHUNK_VALUES, array.size - start)]
            if weights.readinto(chunk.view(np.uint8).data) != chunk.nbytes:
                raise ValueError(f"{root.filename} ends inside a weight array")
            yield start, chunk


def times(rows: np.ndarray, matrix: HalfMatrix) -> np.ndarray:
    """`rows @ matrix` in float32, for rows `(n_in,)` or `(batch, n_in)`."""
    n_in, n_out = matrix.shape
    x = np.ascontiguousarray(rows, dtype=np.float32)
    if x.ndim not in (1, 2) or x.shape[-1] != n_in:
        raise ValueError(f"cannot multiply {rows.shape} by a ({n_in}, {n_out}) matrix")
    count = 1 if x.ndim == 1 else x.shape[0]
    out = np.empty((*x.shape[:-1], n_out), dtype=np.float32)
    matmul(x, matrix, out, count, n_in, n_out)
    return out


def fast_half_products() -> bool:
    """Whether this CPU has a vector kernel for float16 weights (without one, float32 is faster)."""
    return kernels()[0] != "generic"


def halve_step_matrices(weights: Weights) -> Weights:
    """`weights` with the matrices a decoding step reads whole (`HALVED_SUFFIXES`) as `HalfMatrix`
    copies; unchanged where `fast_half_products()` is false."""
    if not fast_half_products():
        return weights
    return {
        name: halve(array) if name.endswith(HALVED_SUFFIXES) and array.ndim == 2 else array
        for name, array in weights.items()
    }
