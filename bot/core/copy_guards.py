"""Copy guards of the bundles that serve, each loaded once and shared (keyed like the model cache).

A fine-tuned model's own guard holds only its own corpus; the messages of the models it descends from are
in its weights too, so a reply is checked along its lineage: its own guard, each ancestor's, the base
model's. A workspace model's or the base model's guard is loaded once for every channel model under it,
never copied into each.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from bot.core.models import BundleKey, bundle_key
from textgen.copyguard import CopyGuard, load_copy_guard

# Enough for the base model's guard (about 15 MB), a few workspace models' and many channel models'.
DEFAULT_GUARD_BYTES = 96 * 1024 * 1024


class CopyGuardCache:
    """The most recently used copy guards, up to `max_bytes` of hashes in all. Thread-safe; `get` reads
    files, so call it off the event loop.

    Args:
        max_bytes: Hashes kept loaded; the guard in use is kept even when it alone is larger.
    """

    def __init__(self, max_bytes: int = DEFAULT_GUARD_BYTES) -> None:
        if max_bytes < 1:
            raise ValueError(f"Received max_bytes {max_bytes}, expected at least 1")
        self.max_bytes = max_bytes
        self.loads = 0
        self._bytes = 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[BundleKey, CopyGuard | None] = OrderedDict()

    @property
    def bytes(self) -> int:
        """Bytes of hashes loaded now."""
        return self._bytes

    def get(self, path: Path) -> CopyGuard | None:
        """The guard saved in the bundle at `path`; None for a bundle saved without one.

        Raises:
            TextgenError: The guard file is damaged (one line, safe to show).
        """
        key = bundle_key(path)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        guard = load_copy_guard(Path(key[0]))
        with self._lock:
            if key not in self._entries:
                self.loads += 1
                self._entries[key] = guard
                self._bytes += guard.nbytes if guard is not None else 0
            self._entries.move_to_end(key)
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.nbytes if evicted is not None else 0
        return guard

    def for_serving(self, lineage: Sequence[Path], base: Path | None = None) -> list[CopyGuard]:
        """The guards a reply is checked against: those of its model and of the models it was fine-tuned
        from (`lineage`, its own bundle first), and `base`'s when given. An ancestor's bundle no longer on
        disk is skipped.

        Raises:
            TextgenError: One of the guards is damaged (one line, safe to show).
        """
        paths: list[Path] = []
        seen: set[Path] = set()
        for number, one in enumerate((*lineage, base)):
            if one is None:
                continue
            resolved = Path(one).resolve()
            if resolved not in seen and (number == 0 or resolved.exists()):
                seen.add(resolved)
                paths.append(Path(one))
        return [guard for guard in (self.get(one) for one in paths) if guard is not None]
