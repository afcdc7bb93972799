"""Model bundles: one self-describing directory, loadable with nothing beside it.

    bundle.json        format version, spec, tokenizer kind, training config, metrics, history
    tokenizer.json     the tokenizer
    model.weights.h5   Keras weights (training, `chatsmith eval`)
    weights.npy        the same weights as one memory-mappable float32 file, indexed in bundle.json
                       (`textgen.weights`): what the bots decode from, without TensorFlow
    copyguard.npz      hashes of the training messages' word and character runs (`textgen.copyguard`)
    lexicon.npy        the words replies may spell (`textgen.lexicon`)

`load_bundle` rebuilds the Keras model (it imports TensorFlow); `load_serving_bundle` reads the spec, the
tokenizer and the weight arrays only, so a bot never imports TensorFlow. Bundles written before
`weights.npy` existed are served from `model.weights.h5`, read with h5py.

A bundle is written into a temporary sibling directory and renamed into place, so a reader sees
either the whole bundle or nothing; a crash leaves at most a `.tmp-*` directory that is never loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from errortext import error_line
from textgen.copyguard import CopyGuard
from textgen.errors import TextgenError
from textgen.lexicon import Lexicon
from textgen.spec import ModelSpec
from textgen.tokenizers import Tokenizer, load_tokenizer
from textgen.weights import (
    Weights,
    check_weights,
    read_keras_weights,
    read_weight_arrays,
    weights_from_keras,
    write_weight_arrays,
)

if TYPE_CHECKING:
    import keras

FORMAT = "chatsmith-bundle"
FORMAT_VERSION = 1
MANIFEST = "bundle.json"
TOKENIZER = "tokenizer.json"
WEIGHTS = "model.weights.h5"
WEIGHT_ARRAYS = "weights.npy"
# The manifest key of `weights.npy`'s index (name -> [offset, *shape]).
WEIGHT_INDEX = "weight_arrays"


@dataclass
class Bundle:
    """A loaded bundle: the model, its tokenizer and what is known about how it was made."""

    path: Path
    spec: ModelSpec
    tokenizer: Tokenizer
    model: keras.Model
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServingBundle:
    """A bundle loaded for decoding: the weights as NumPy arrays (`textgen.weights`), no Keras model."""

    path: Path
    spec: ModelSpec
    tokenizer: Tokenizer
    weights: Weights
    metrics: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)


def _check_free_space(
    directory: Path, model: keras.Model, copy_guard: CopyGuard | None, lexicon: Lexicon | None
) -> None:
    """Refuse to start a bundle the disk cannot hold. HDF5 does not fail cleanly when the disk fills in
    the middle of a write (the process can crash at exit), so the room is checked before writing."""
    weights = sum(int(np.prod(variable.shape)) * 4 for variable in model.weights)
    # The weights twice (Keras file and weights.npy), the guard, the lexicon, and room for headers.
    needed = 2 * weights + (copy_guard.nbytes if copy_guard else 0) + (lexicon.nbytes if lexicon else 0)
    needed = int(needed * 1.1) + 1_000_000
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise TextgenError(
            f"not enough disk space for the bundle in {directory}: {free / 1e6:.1f} MB free, "
            f"{needed / 1e6:.1f} MB needed (No space left on device); free space there and train again"
        )


def save_bundle(
    out_dir: Path,
    model: keras.Model,
    spec: ModelSpec,
    tokenizer: Tokenizer,
    *,
    metrics: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
    copy_guard: CopyGuard | None = None,
    lexicon: Lexicon | None = None,
) -> Path:
    """Write a bundle to `out_dir` atomically; an existing bundle there is replaced whole.

    A `copy_guard` (`textgen.copyguard`) and a `lexicon` (`textgen.lexicon`) are saved beside the
    weights, so they land with them. The weights
    are written twice: for Keras, and as `weights.npy` for serving without TensorFlow.
    """
    import keras

    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not (out_dir / MANIFEST).exists() and any(out_dir.iterdir()):
        raise TextgenError(
            f"{out_dir} exists and is not a model bundle; choose an empty or new --out directory"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _check_free_space(out_dir.parent, model, copy_guard, lexicon)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{out_dir.name}-", dir=out_dir.parent))
    try:
        # mkdtemp makes the directory private (0700); a bundle is read by other users and hosts
        # (bots, trainers on a shared volume), like any file the umask allows.
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
        model.save_weights(staging / WEIGHTS)
        weight_index = write_weight_arrays(staging / WEIGHT_ARRAYS, weights_from_keras(model, spec))
        tokenizer.save(staging / TOKENIZER)
        if copy_guard is not None:
            copy_guard.save(staging)
        if lexicon is not None:
            lexicon.save(staging)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "spec": spec.to_dict(),
            "tokenizer": tokenizer.kind,
            "vocab_size": tokenizer.vocab_size,
            "metrics": metrics or {},
            "history": history or [],
            "keras_version": keras.__version__,
            WEIGHT_INDEX: weight_index,
            **(extra or {}),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        _fsync_dir(staging)
        if out_dir.exists():
            # Swap: move the old bundle aside first so the new one lands with a single rename.
            retired = out_dir.with_name(f".old-{out_dir.name}-{os.getpid()}-{time.monotonic_ns()}")
            out_dir.rename(retired)
            staging.rename(out_dir)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(out_dir)
        _fsync_dir(out_dir.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def check_bundle_destination(out_dir: Path) -> None:
    """Refuse to replace a directory that holds something other than a bundle (checked before training)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (
        not out_dir.is_dir() or (not (out_dir / MANIFEST).exists() and any(out_dir.iterdir()))
    ):
        raise TextgenError(
            f"{out_dir} exists and is not a model bundle; choose an empty or new --out directory"
        )


def _fsync_dir(path: Path) -> None:
    for child in path.iterdir() if path.is_dir() else []:
        if child.is_file():
            with open(child, "rb") as handle:
                os.fsync(handle.fileno())
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(path: Path) -> dict[str, Any]:
    """The checked manifest of the bundle at `path`; one-line errors name what is wrong."""
    path = Path(path)
    if not path.exists():
        raise TextgenError(
            f"model bundle {path} does not exist; train one with `chatsmith train --out {path}`"
        )
    if not path.is_dir():
        raise TextgenError(
            f"model bundle {path} is not a directory; pass the directory `chatsmith train` wrote"
        )
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        raise TextgenError(
            f"{path} has no {MANIFEST}: it is not a model bundle or was not fully written; retrain it"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError:
        raise TextgenError(f"{manifest_path} is not valid JSON: the bundle is damaged; retrain it") from None
    if manifest.get("format") != FORMAT:
        raise TextgenError(f"{path} is not a chatsmith model bundle (format {manifest.get('format')!r})")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise TextgenError(
            f"bundle {path} has format version {version}, this chatsmith reads version {FORMAT_VERSION}; "
            f"retrain the model or use a matching chatsmith"
        )
    for name in (TOKENIZER, WEIGHTS):
        if not (path / name).exists():
            raise TextgenError(f"bundle {path} is missing {name}: it was not fully written; retrain it")
    return manifest


def load_bundle(path: Path | str) -> Bundle:
    """Load the bundle at `path`: manifest checked, Keras model rebuilt from its spec, weights loaded.

    Imports TensorFlow; to decode, `load_serving_bundle` is enough.
    """
    from textgen.model import build_model

    path = Path(path)
    manifest, spec, tokenizer = _read_parts(path)
    model = build_model(spec, tokenizer.vocab_size)
    try:
        model.load_weights(path / WEIGHTS)
    except (ValueError, OSError) as error:
        raise TextgenError(
            f"bundle {path} weights do not load ({error_line(error)}); retrain the model"
        ) from None
    return Bundle(
        path=path,
        spec=spec,
        tokenizer=tokenizer,
        model=model,
        metrics=manifest.get("metrics", {}),
        history=manifest.get("history", []),
        manifest=manifest,
    )


def _read_parts(path: Path) -> tuple[dict[str, Any], ModelSpec, Tokenizer]:
    """The checked manifest, spec and tokenizer of the bundle at `path`."""
    manifest = read_manifest(path)
    try:
        spec = ModelSpec.from_dict(manifest["spec"])
    except (KeyError, TypeError):
        raise TextgenError(
            f"bundle {path} has no valid spec in {MANIFEST}: the bundle is damaged; retrain it"
        ) from None
    tokenizer = load_tokenizer(path / TOKENIZER)
    if tokenizer.vocab_size != manifest.get("vocab_size", tokenizer.vocab_size):
        raise TextgenError(
            f"bundle {path} tokenizer does not match its manifest; the bundle is damaged, retrain it"
        )
    return manifest, spec, tokenizer


def load_serving_bundle(path: Path | str) -> ServingBundle:
    """Load the bundle at `path` for decoding, without TensorFlow: spec, tokenizer and weight arrays.

    The weights are memory-mapped from `weights.npy`, or read from `model.weights.h5` with h5py when the
    bundle predates that file.

    Raises:
        TextgenError: The bundle is missing or damaged (one line, naming the fix).
    """
    path = Path(path)
    manifest, spec, tokenizer = _read_parts(path)
    index = manifest.get(WEIGHT_INDEX)
    if index is not None and (path / WEIGHT_ARRAYS).exists():
        if not isinstance(index, dict):
            raise TextgenError(f"bundle {path} has a damaged {WEIGHT_INDEX} index; retrain the model")
        source = path / WEIGHT_ARRAYS
        weights = read_weight_arrays(source, index)
    else:
        source = path / WEIGHTS
        weights = read_keras_weights(source, spec)
    check_weights(weights, spec, tokenizer.vocab_size, source)
    return ServingBundle(
        path=path,
        spec=spec,
        tokenizer=tokenizer,
        weights=weights,
        metrics=manifest.get("metrics", {}),
        manifest=manifest,
    )
