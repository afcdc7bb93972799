"""The files of an export, from its zip or from the folder it unpacks to, by path relative to its root.

Each file is read whole, so a zip member that would unpack to more than `MAX_MEMBER_BYTES`, or that is
packed more than `MAX_COMPRESSION_RATIO` times smaller than it unpacks (a zip bomb), is refused by name
before anything is read: an export is imported whole or not at all.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from textgen.errors import TextgenError

# The biggest file of a real export is users.json of a very large workspace (about 2 KB a member) or the
# day file of a very busy channel; both stay far below this.
MAX_MEMBER_BYTES = 256 << 20
# JSON packs about ten times smaller; a deflate bomb packs about a thousand times. Members smaller than
# `_RATIO_FLOOR` are too small to matter whatever their ratio.
MAX_COMPRESSION_RATIO = 100
_RATIO_FLOOR = 1 << 20


class ExportFiles:
    """The files of an export whose names end with `suffix`, from a zip or a folder.

    Args:
        path: The zip, or the folder.
        markers: Names of files that sit at the export's root (its root is the shallowest folder holding
            one, so that a zip with everything under one top folder reads like its folder).
        suffix: Only files whose names end so are listed and read.

    Attributes:
        names: The files' paths relative to the export's root, sorted.

    Raises:
        TextgenError: `path` is neither a folder nor a zip, or a member of the zip is over a cap.
    """

    def __init__(self, path: Path, markers: Iterable[str], suffix: str = ".json") -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        markers = frozenset(markers)
        if path.is_dir():
            root = export_root([p.relative_to(path).as_posix() for p in path.rglob(f"*{suffix}")], markers)
            self._root = path / root if root else path
            self.names = sorted(p.relative_to(self._root).as_posix() for p in self._root.rglob(f"*{suffix}"))
            return
        try:
            self._zip = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise TextgenError(
                f"{path} is not a zip file; pass the export's zip or its unpacked folder"
            ) from None
        members = [info for info in self._zip.infolist() if not info.is_dir()]
        self._prefix = export_root([info.filename for info in members], markers)
        read = [
            info
            for info in members
            if info.filename.startswith(self._prefix) and info.filename.endswith(suffix)
        ]
        for info in read:
            _check_member(path, info)
        self.names = sorted(info.filename[len(self._prefix) :] for info in read)

    def read(self, name: str) -> bytes:
        """The bytes of the file `name` (one of `names`)."""
        if self._zip is not None:
            return self._zip.read(self._prefix + name)
        return (self._root / name).read_bytes()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def export_root(names: list[str], markers: frozenset[str]) -> str:
    """The folder (with its trailing slash, or "") that holds one of `markers`."""
    roots = sorted(
        (name[: -len(PurePosixPath(name).name)] for name in names if PurePosixPath(name).name in markers),
        key=len,
    )
    return roots[0] if roots else ""


def _check_member(path: Path, info: zipfile.ZipInfo) -> None:
    # `zipfile` never unpacks more than a member's declared size, so the declared size is the one to check.
    size = info.file_size
    if size > MAX_MEMBER_BYTES:
        raise TextgenError(
            f"{path}: {info.filename} would unpack to {_mib(size)} MiB, over the "
            f"{_mib(MAX_MEMBER_BYTES)} MiB a file of an export may have; nothing was imported (unpack the "
            "export and check that file)"
        )
    if size > _RATIO_FLOOR and size > MAX_COMPRESSION_RATIO * max(1, info.compress_size):
        raise TextgenError(
            f"{path}: {info.filename} would unpack to {_mib(size)} MiB from {info.compress_size} bytes, "
            f"packed over {MAX_COMPRESSION_RATIO} times, which no export is (a zip bomb?); nothing was "
            "imported"
        )


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.0f}"
