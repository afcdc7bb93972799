"""Where model bundles of scope versions live: one small interface, a local directory by default.

The trainer trains into a staging directory that the store hands out, then `publish`es it: the bundle
appears at its final location in one rename, and only then does the database row get that location. A
shared volume needs nothing more; an object store would implement the same methods (upload on
`publish`, download into a cache on `local_path`).

Layout of `LocalModelStore(root)`:

    root/workspace-3/model-v2/            the bundle of version 2 of workspace 3's model
    root/workspace-3/channel-7/model-v1/  the bundle of version 1 of channel 7's model
    root/.staging/job-12-<random>/        bundles being trained; never loaded, removed on failure
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

STAGING_DIR = ".staging"


class ModelStore(Protocol):
    """Storage of published model bundles, addressed by a location string kept in `ModelVersion.bundle_path`."""

    def location_for(self, scope_key: str, version: int) -> str:
        """The location `publish` gives `version` of the scope's model."""
        ...

    def new_staging_dir(self, label: str) -> Path:
        """A fresh, empty local directory to train a bundle into (its name starts with `label`)."""
        ...

    def publish(self, staged_bundle: Path, scope_key: str, version: int) -> str:
        """Move a complete bundle into place for `version` of the scope; returns its location."""
        ...

    def exists(self, location: str) -> bool:
        """Whether a published bundle is at `location`."""
        ...

    def local_path(self, location: str) -> Path:
        """A local directory holding the bundle at `location`, for `load_bundle`."""
        ...

    def delete(self, location: str) -> None:
        """Delete the bundle at `location`; nothing happens when it is already gone."""
        ...

    def discard_staging(self, label: str) -> None:
        """Remove staging directories whose name starts with `label` (leftovers of a dead attempt)."""
        ...


class LocalModelStore:
    """Bundles in a directory tree on this machine (or a shared volume mounted on every machine).

    Locations are absolute paths, so `db.registry.bundle_path_exists` and the bots can use them directly.

    Args:
        root: The model directory (`CHATSMITH_MODEL_DIR`); created when missing.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().absolute()

    def location_for(self, scope_key: str, version: int) -> str:
        return str(self._target(scope_key, version))

    def _target(self, scope_key: str, version: int) -> Path:
        workspace, _, channel = scope_key.partition("/")
        directory = self.root / f"workspace-{workspace}"
        if channel:
            directory = directory / f"channel-{channel}"
        return directory / f"model-v{version}"

    def new_staging_dir(self, label: str) -> Path:
        staging_root = self.root / STAGING_DIR
        staging_root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=staging_root))

    def publish(self, staged_bundle: Path, scope_key: str, version: int) -> str:
        target = self._target(scope_key, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            # Left by an attempt that died between publishing and registering: no row points at it.
            shutil.rmtree(target)
        # Staging lives under the same root, so this is a rename within one file system: atomic.
        os.replace(staged_bundle, target)
        _fsync_directory(target.parent)
        return str(target)

    def exists(self, location: str) -> bool:
        return Path(location).is_dir()

    def local_path(self, location: str) -> Path:
        return Path(location)

    def delete(self, location: str) -> None:
        path = Path(location)
        if not path.exists():
            return
        # Rename first so that a reader never loads a half-deleted bundle.
        doomed = path.with_name(f".deleting-{path.name}-{os.getpid()}")
        os.replace(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def discard_staging(self, label: str) -> None:
        staging_root = self.root / STAGING_DIR
        if not staging_root.is_dir():
            return
        for leftover in staging_root.glob(f"{label}-*"):
            shutil.rmtree(leftover, ignore_errors=True)


def _fsync_directory(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
