"""Where model bundles of scope versions live: one small interface, a local directory by default.

The trainer trains into a staging directory that the store hands out, then `publish`es it: the bundle
appears at its final location in one rename, and only then does the database row get that location. A
shared volume needs nothing more; an object store would implement the same methods (upload on
`publish`, download into a cache on `local_path`).

Layout of `LocalModelStore(root)`:

    root/workspace-3/model-v2/            the bundle of version 2 of workspace 3's model
    root/workspace-3/channel-7/model-v1/  the bundle of version 1 of channel 7's model
    root/.staging/job-12-<random>/        bundles being trained; never loaded, removed on failure
    root/workspace-3/.deleting-model-v1-<pid>/   a bundle being deleted (renamed first)

`directories` lists all of these, so that the trainer can remove what no model version points at any more
(`trainer.orphans`): the bundle of an attempt killed between publishing and registering, a staging
directory whose job ended without cleaning up, a delete cut short.

Locations come back from the database, which may have been restored on another host, edited by hand, or
written before the model directory moved. Every location is therefore resolved (symbolic links and `..`
included) and checked to lie inside the model directory before it is read or deleted: a row that points
elsewhere is refused, so the trainer can never delete through it and the bots never load from it.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from db.errors import BundleOutsideStore

STAGING_DIR = ".staging"
# What `delete` renames a bundle to before removing it (`db.forgetting` uses the second).
DELETING_PREFIXES = (".deleting-", ".withdrawn-")
_WORKSPACE_DIR = re.compile(r"workspace-(\d+)")
_CHANNEL_DIR = re.compile(r"channel-(\d+)")
_BUNDLE_DIR = re.compile(r"model-v(\d+)")
_STAGING_DIR = re.compile(r"[\w.-]+-(\w+)")  # `new_staging_dir`: the label, "-", a random suffix


@dataclass(frozen=True)
class StoredDirectory:
    """A directory the store holds, as `ModelStore.directories` lists it.

    Attributes:
        location: Where it is: for a bundle, its location in the form `canonical_location` gives.
        kind: "bundle" (published for a scope version), "staging" (a bundle being trained) or "deleting"
            (a bundle whose delete was cut short).
        modified_at: When it or anything in it last changed, in seconds since the epoch.
        scope_key: A bundle's scope ("" for the other kinds).
        version: A bundle's version number (0 for the other kinds).
        label: The label a staging directory was made with (`new_staging_dir`; "" for the other kinds).
    """

    location: str
    kind: Literal["bundle", "staging", "deleting"]
    modified_at: float
    scope_key: str = ""
    version: int = 0
    label: str = ""


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
        """Whether a published bundle is at `location` (False for a location outside the store)."""
        ...

    def problem(self, location: str) -> str | None:
        """Why the bundle at `location` cannot be served (one line), or None when it can."""
        ...

    def local_path(self, location: str) -> Path:
        """A local directory holding the bundle at `location`, for `load_bundle`.

        Raises:
            BundleOutsideStore: The location is not inside the store.
        """
        ...

    def delete(self, location: str) -> None:
        """Delete the bundle at `location`; nothing happens when it is already gone.

        Raises:
            BundleOutsideStore: The location is not inside the store; nothing is deleted.
        """
        ...

    def discard_staging(self, label: str) -> None:
        """Remove staging directories whose name starts with `label` (leftovers of a dead attempt)."""
        ...

    def directories(self) -> list[StoredDirectory]:
        """Every published bundle, staging directory and interrupted delete the store holds."""
        ...

    def canonical_location(self, location: str) -> str | None:
        """`location` in the form `directories` gives a bundle's; None for a location outside the store."""
        ...

    def remove_directory(self, directory: StoredDirectory) -> None:
        """Delete a directory `directories` listed; nothing happens when it is already gone.

        Raises:
            BundleOutsideStore: It is not inside the store; nothing is deleted.
        """
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

    def checked_path(self, location: str) -> Path:
        """The bundle directory at `location`, resolved and checked to lie inside the model directory.

        Raises:
            BundleOutsideStore: It resolves to the model directory itself, to staging, or to anywhere
                outside the model directory.
        """
        root = self.root.resolve()
        resolved = Path(location).expanduser().resolve()
        if (
            resolved == root
            or not resolved.is_relative_to(root)
            or resolved.is_relative_to(root / STAGING_DIR)
        ):
            raise BundleOutsideStore(
                f"model bundle location {location} lies outside the model directory {self.root}; "
                "move the bundle under CHATSMITH_MODEL_DIR and point its version there, or retrain"
            )
        return resolved

    def exists(self, location: str) -> bool:
        return self.problem(location) is None

    def problem(self, location: str) -> str | None:
        try:
            path = self.checked_path(location)
        except BundleOutsideStore:
            return f"bundle location {location} lies outside the model directory {self.root}"
        return None if path.is_dir() else f"bundle missing at {location}"

    def local_path(self, location: str) -> Path:
        return self.checked_path(location)

    def delete(self, location: str) -> None:
        path = self.checked_path(location)
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

    def directories(self) -> list[StoredDirectory]:
        found: list[StoredDirectory] = []
        for workspace, workspace_id in _numbered_dirs(self.root, _WORKSPACE_DIR):
            found += _directories_in(workspace, workspace_id)
            for channel, channel_id in _numbered_dirs(workspace, _CHANNEL_DIR):
                found += _directories_in(channel, f"{workspace_id}/{channel_id}")
        for staged, _ in _numbered_dirs(self.root / STAGING_DIR, _STAGING_DIR):
            label = staged.name.rpartition("-")[0]
            found.append(StoredDirectory(str(staged), "staging", _modified_at(staged), label=label))
        return found

    def canonical_location(self, location: str) -> str | None:
        try:
            return str(self.checked_path(location))
        except BundleOutsideStore:
            return None

    def remove_directory(self, directory: StoredDirectory) -> None:
        if directory.kind == "bundle":
            self.delete(directory.location)
            return
        path = Path(directory.location)
        root = self.root.resolve()
        resolved = path.resolve()
        # Staging and interrupted deletes are never a bundle location, so `checked_path` refuses them; the
        # same rule holds all the same: nothing outside the model directory, nothing through a link.
        if path.is_symlink() or resolved == root or not resolved.is_relative_to(root):
            raise BundleOutsideStore(
                f"directory {directory.location} lies outside the model directory {self.root}; not deleted"
            )
        shutil.rmtree(path, ignore_errors=True)


def _numbered_dirs(parent: Path, pattern: re.Pattern[str]) -> list[tuple[Path, str]]:
    """The directories (not links) in `parent` whose whole name matches `pattern`, with its first group."""
    if not parent.is_dir():
        return []
    return [
        (path, match.group(1))
        for path in sorted(parent.iterdir())
        if (match := pattern.fullmatch(path.name)) and path.is_dir() and not path.is_symlink()
    ]


def _directories_in(parent: Path, scope_key: str) -> list[StoredDirectory]:
    """The bundles and interrupted deletes directly in a scope's directory."""
    found: list[StoredDirectory] = []
    for path in sorted(parent.iterdir()):
        if not path.is_dir() or path.is_symlink():
            continue
        if match := _BUNDLE_DIR.fullmatch(path.name):
            modified = _modified_at(path)
            found.append(
                StoredDirectory(str(path.resolve()), "bundle", modified, scope_key, int(match.group(1)))
            )
        elif path.name.startswith(DELETING_PREFIXES):
            found.append(StoredDirectory(str(path), "deleting", _modified_at(path)))
    return found


def _modified_at(directory: Path) -> float:
    """The newest modification time of `directory` and everything in it; infinity (changing now) when it
    could not be read through, as when files come and go while it is read."""
    try:
        newest = directory.stat().st_mtime
        for path in directory.rglob("*"):
            newest = max(newest, path.lstat().st_mtime)
    except OSError:
        return math.inf
    return newest


def _fsync_directory(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
