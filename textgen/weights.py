"""A model's weights as named NumPy arrays, read and written without TensorFlow.

Serving needs only the arrays, not a Keras model: a bot decodes with NumPy (`textgen.engine`), so it never
pays for importing TensorFlow or rebuilding a model. Names follow the layers of `textgen.model`:

    embedding                                     (vocab, embedding)
    rnn_{i}/kernel, rnn_{i}/recurrent_kernel, rnn_{i}/bias
    rnn_{i}/forward/..., rnn_{i}/backward/...     the two directions of a BiLSTM layer
    logits/kernel, logits/bias

Two places hold them. A bundle carries `weights.npy` beside the Keras weights: every array back to back
in one float32 file, indexed in the manifest and memory-mapped on load, so a load copies nothing and the
pages belong to the page cache (shared between processes, returned when the model is dropped). Bundles
written before that file existed are read from the Keras `.weights.h5` with h5py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from textgen.errors import TextgenError
from textgen.spec import ModelSpec

Weights = dict[str, np.ndarray]

# The variables of one recurrent cell, in the order Keras keeps them.
_CELL_VARIABLES = ("kernel", "recurrent_kernel", "bias")
_DIRECTIONS = ("forward", "backward")


def weight_names(spec: ModelSpec) -> list[str]:
    """Every array name of a model of `spec`, in Keras' `get_weights()` order."""
    names = ["embedding"]
    for index in range(spec.layers):
        prefixes = [f"rnn_{index}/{d}" for d in _DIRECTIONS] if not spec.causal else [f"rnn_{index}"]
        names.extend(f"{prefix}/{variable}" for prefix in prefixes for variable in _CELL_VARIABLES)
    return [*names, "logits/kernel", "logits/bias"]


def expected_shapes(spec: ModelSpec, vocab_size: int) -> dict[str, tuple[int, ...]]:
    """The shape of each array of a model of `spec` over `vocab_size` tokens."""
    gates = {"simplernn": 1, "lstm": 4, "gru": 3, "bilstm": 4}[spec.arch]
    width = spec.units * gates
    shapes: dict[str, tuple[int, ...]] = {"embedding": (vocab_size, spec.embedding)}
    for index in range(spec.layers):
        inputs = spec.embedding if index == 0 else spec.units * (1 if spec.causal else 2)
        prefixes = [f"rnn_{index}/{d}" for d in _DIRECTIONS] if not spec.causal else [f"rnn_{index}"]
        for prefix in prefixes:
            shapes[f"{prefix}/kernel"] = (inputs, width)
            shapes[f"{prefix}/recurrent_kernel"] = (spec.units, width)
            # Keras' GRU keeps input and recurrent biases apart (reset_after=True).
            shapes[f"{prefix}/bias"] = (2, width) if spec.arch == "gru" else (width,)
    outputs = spec.units * (1 if spec.causal else 2)
    shapes["logits/kernel"] = (outputs, vocab_size)
    shapes["logits/bias"] = (vocab_size,)
    return shapes


def check_weights(weights: Weights, spec: ModelSpec, vocab_size: int, source: Path | str) -> None:
    """Raise a one-line `TextgenError` unless `weights` has exactly the arrays of `spec`."""
    for name, shape in expected_shapes(spec, vocab_size).items():
        found = weights.get(name)
        if found is None:
            raise TextgenError(f"{source} has no weights for {name}: the bundle is damaged; retrain it")
        if tuple(found.shape) != shape:
            raise TextgenError(
                f"{source} holds {name} of shape {tuple(found.shape)}, expected {shape} for its spec: "
                "the bundle is damaged; retrain it"
            )


def weights_from_keras(model: Any, spec: ModelSpec) -> Weights:
    """The arrays of a Keras model built by `textgen.model.build_model` (TensorFlow already loaded)."""
    values = [np.asarray(model.get_layer("embedding").get_weights()[0], dtype=np.float32)]
    for index in range(spec.layers):
        values.extend(np.asarray(w, dtype=np.float32) for w in model.get_layer(f"rnn_{index}").get_weights())
    values.extend(np.asarray(w, dtype=np.float32) for w in model.get_layer("logits").get_weights())
    return dict(zip(weight_names(spec), values, strict=True))


def write_weight_arrays(path: Path, weights: Weights) -> dict[str, list[int]]:
    """Write `weights` to one float32 `.npy` file, back to back; returns the index for the manifest.

    The index maps each name to `[offset, *shape]`, the offset counted in float32 elements.
    """
    index: dict[str, list[int]] = {}
    offset = 0
    for name, array in weights.items():
        index[name] = [offset, *(int(n) for n in array.shape)]
        offset += int(array.size)
    flat = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(offset,))
    for name, array in weights.items():
        start = index[name][0]
        flat[start : start + array.size] = np.asarray(array, dtype=np.float32).ravel()
    flat.flush()
    del flat
    return index


def read_weight_arrays(path: Path, index: dict[str, list[int]]) -> Weights:
    """The arrays of a `weights.npy` file, as read-only views of one memory map (no copy)."""
    try:
        flat = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as error:
        raise TextgenError(
            f"{path} cannot be read ({_first_line(error)}): the bundle is damaged; retrain it"
        ) from None
    if flat.dtype != np.float32 or flat.ndim != 1:
        raise TextgenError(f"{path} is not a float32 weight file: the bundle is damaged; retrain it")
    weights: Weights = {}
    for name, entry in index.items():
        try:
            offset, *shape = (int(n) for n in entry)
        except (TypeError, ValueError):
            raise TextgenError(f"{path} has a damaged index entry for {name}; retrain the model") from None
        size = int(np.prod(shape, dtype=np.int64))
        if offset < 0 or offset + size > flat.shape[0]:
            raise TextgenError(f"{path} is shorter than its index: the bundle is damaged; retrain it")
        weights[name] = flat[offset : offset + size].reshape(shape)
    return weights


def read_keras_weights(path: Path, spec: ModelSpec) -> Weights:
    """The arrays of a Keras 3 `.weights.h5` file written by `model.save_weights`, read with h5py.

    Keras names the file's groups after layer classes (`gru`, `gru_1`...) and records each layer's own
    name (`rnn_0`...) as an attribute of its `vars` group, so layers are found by that attribute.
    """
    import h5py  # only bundles without `weights.npy` need it

    try:
        with h5py.File(path, "r") as file:
            layers = file["layers"]
            by_name = {}
            for group in layers.values():
                variables = group.get("vars")
                if variables is not None and "name" in variables.attrs:
                    by_name[str(variables.attrs["name"])] = group
            values = [_variables(by_name, "embedding", "vars")[0]]
            for index in range(spec.layers):
                if spec.causal:
                    values.extend(_variables(by_name, f"rnn_{index}", "cell/vars"))
                else:
                    for direction in _DIRECTIONS:
                        values.extend(_variables(by_name, f"rnn_{index}", f"{direction}_layer/cell/vars"))
            values.extend(_variables(by_name, "logits", "vars"))
    except (OSError, KeyError, ValueError) as error:
        raise TextgenError(
            f"{path} weights do not load ({_first_line(error)}): the bundle is damaged; retrain it"
        ) from None
    names = weight_names(spec)
    if len(values) != len(names):
        raise TextgenError(
            f"{path} holds {len(values)} weight arrays, expected {len(names)}; retrain the model"
        )
    return dict(zip(names, values, strict=True))


def _variables(layers: dict[str, Any], layer: str, where: str) -> list[np.ndarray]:
    group = layers[layer][where]
    return [np.asarray(group[str(position)], dtype=np.float32) for position in range(len(group))]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def weights_nbytes(weights: Weights) -> int:
    """Bytes the arrays take (mapped or in memory)."""
    return sum(int(array.nbytes) for array in weights.values())
