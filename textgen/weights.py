"""A model's weights as named NumPy arrays, read and written without TensorFlow.

Serving needs only the arrays, not a Keras model: a bot decodes with NumPy (`textgen.engine`), so it never
pays for importing TensorFlow or rebuilding a model. Each architecture family lays out its own arrays
(`ArchitectureFamily.weight_shapes`, documented in its module under `textgen.architectures`); they are named
after the Keras layers that hold them, `embedding`, `rnn_{i}/...` and `logits/...`.

Two places hold them. A bundle carries `weights.npy` beside the Keras weights: every array back to back
in one float32 file, indexed in the manifest and memory-mapped on load, so a load copies nothing and the
pages belong to the page cache (shared between processes, returned when the model is dropped). Bundles
written before that file existed are read from the Keras `.weights.h5` with h5py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from errortext import error_line
from textgen.architectures.family import Weights
from textgen.errors import TextgenError
from textgen.spec import ModelSpec


def weight_names(spec: ModelSpec) -> list[str]:
    """Every array name of a model of `spec`, in Keras' `get_weights()` order."""
    # The vocabulary size changes no name.
    return list(spec.family.weight_shapes(spec, 1))


def expected_shapes(spec: ModelSpec, vocab_size: int) -> dict[str, tuple[int, ...]]:
    """The shape of each array of a model of `spec` over `vocab_size` tokens."""
    return spec.family.weight_shapes(spec, vocab_size)


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
    values = [
        np.asarray(w, dtype=np.float32)
        for layer in spec.family.keras_layers(spec)
        for w in model.get_layer(layer.name).get_weights()
    ]
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
            f"{path} cannot be read ({error_line(error)}): the bundle is damaged; retrain it"
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
    name (`rnn_0`...) as an attribute of its `vars` group, so layers are found by that attribute; where
    each layer keeps its variables below that is the family's `KerasLayer.h5_groups`.
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
            values = [
                array
                for layer in spec.family.keras_layers(spec)
                for where in layer.h5_groups
                for array in _variables(by_name, layer.name, where)
            ]
    except (OSError, KeyError, ValueError) as error:
        raise TextgenError(
            f"{path} weights do not load ({error_line(error)}): the bundle is damaged; retrain it"
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


def weights_nbytes(weights: Weights) -> int:
    """Bytes the arrays take (mapped or in memory)."""
    return sum(int(array.nbytes) for array in weights.values())
