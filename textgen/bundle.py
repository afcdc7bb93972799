"""Model bundles: one self-describing directory (architecture decision 4).

    bundle.json        format version, spec, tokenizer kind, training config, metrics, history
    tokenizer.json     the tokenizer
    model.weights.h5   Keras weights
    copyguard.npz      hashes of the training messages' word and character runs (`textgen.copyguard`)

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
from typing import Any

import keras

from textgen.copyguard import CopyGuard
from textgen.errors import TextgenError
from textgen.model import build_model
from textgen.spec import ModelSpec
from textgen.tokenizers import Tokenizer, load_tokenizer

FORMAT = "chatsmith-bundle"
FORMAT_VERSION = 1
MANIFEST = "bundle.json"
TOKENIZER = "tokenizer.json"
WEIGHTS = "model.weights.h5"


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
) -> Path:
    """Write a bundle to `out_dir` atomically; an existing bundle there is replaced whole.

    A `copy_guard` (`textgen.copyguard`) is saved beside the weights, so it lands with them.
    """
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not (out_dir / MANIFEST).exists() and any(out_dir.iterdir()):
        raise TextgenError(
            f"{out_dir} exists and is not a model bundle; choose an empty or new --out directory"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{out_dir.name}-", dir=out_dir.parent))
    try:
        # mkdtemp makes the directory private (0700); a bundle is read by other users and hosts
        # (bots, trainers on a shared volume), like any file the umask allows.
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
        model.save_weights(staging / WEIGHTS)
        tokenizer.save(staging / TOKENIZER)
        if copy_guard is not None:
            copy_guard.save(staging)
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
    """Load the bundle at `path`: manifest checked, model rebuilt from its spec, weights loaded."""
    path = Path(path)
    manifest = read_manifest(path)
    spec = ModelSpec.from_dict(manifest["spec"])
    tokenizer = load_tokenizer(path / TOKENIZER)
    if tokenizer.vocab_size != manifest.get("vocab_size", tokenizer.vocab_size):
        raise TextgenError(
            f"bundle {path} tokenizer does not match its manifest; the bundle is damaged, retrain it"
        )
    model = build_model(spec, tokenizer.vocab_size)
    try:
        model.load_weights(path / WEIGHTS)
    except (ValueError, OSError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TextgenError(f"bundle {path} weights do not load ({first_line}); retrain the model") from None
    return Bundle(
        path=path,
        spec=spec,
        tokenizer=tokenizer,
        model=model,
        metrics=manifest.get("metrics", {}),
        history=manifest.get("history", []),
        manifest=manifest,
    )
