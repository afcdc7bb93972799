"""Copy guards of the bundles that serve, loaded once each (keyed like the model cache)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from bot.core.models import BundleKey, bundle_key
from textgen.copyguard import CopyGuard, load_copy_guard


class CopyGuardCache:
    """The `capacity` most recently used copy guards. Thread-safe; `get` reads files, so call it off the
    event loop.

    Args:
        capacity: Guards kept loaded (the base model's is about 15 MB).
    """

    def __init__(self, capacity: int = 8) -> None:
        if capacity < 1:
            raise ValueError(f"Received capacity {capacity}, expected at least 1")
        self.capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[BundleKey, CopyGuard | None] = OrderedDict()

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
            self._entries[key] = guard
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return guard

    def for_serving(self, path: Path, base: Path | None) -> list[CopyGuard]:
        """The guards a reply of the bundle at `path` is checked against: its own, and the base model's
        when it was fine-tuned from it (the base corpus is in its weights too)."""
        paths = [Path(path)]
        if base is not None and Path(base).exists() and Path(base).resolve() != Path(path).resolve():
            paths.append(Path(base))
        return [guard for guard in (self.get(one) for one in paths) if guard is not None]
