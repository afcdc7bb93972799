"""Loaded models, kept in a small LRU cache keyed by bundle, so a new active version loads on its next use."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from textgen.bundle import MANIFEST
from textgen.generator import Generator

log = logging.getLogger(__name__)

BundleKey = tuple[str, int]


def bundle_key(path: Path) -> BundleKey:
    """Identifies one published bundle: its path and its manifest's modification time.

    A new model version lives in a new directory; a bundle rewritten in place (save_bundle swaps whole
    directories) gets a new manifest time. Either way the key changes and the cache loads it afresh.
    """
    resolved = Path(path).resolve()
    try:
        stamp = (resolved / MANIFEST).stat().st_mtime_ns
    except OSError:
        stamp = 0  # missing: loading reports the problem in the bundle loader's own words
    return str(resolved), stamp


class ModelCache:
    """The `capacity` most recently used generators. Thread-safe; call `get` from worker threads only,
    because loading a bundle builds a Keras model (seconds, and never on an event loop).

    Two threads asking for the same bundle at once share one load.
    """

    def __init__(
        self, capacity: int = 4, loader: Callable[[Path], Generator] = Generator.from_bundle
    ) -> None:
        if capacity < 1:
            raise ValueError(f"Received capacity {capacity}, expected at least 1")
        self.capacity = capacity
        self._loader = loader
        self._lock = threading.Lock()
        self._entries: OrderedDict[BundleKey, Generator] = OrderedDict()
        self._loading: dict[BundleKey, Future[Generator]] = {}
        self.loads = 0

    def get(self, path: Path) -> Generator:
        """The generator for the bundle at `path`, loading it if it is not cached.

        Raises:
            TextgenError: The bundle is missing or damaged (one line, safe to show).
        """
        key = bundle_key(path)
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                return cached
            pending = self._loading.get(key)
            owner = pending is None
            if pending is None:
                pending = Future()
                self._loading[key] = pending
        if not owner:
            return pending.result()
        try:
            log.info("loading model bundle %s", key[0])
            generator = self._loader(Path(key[0]))
        except BaseException as error:
            with self._lock:
                del self._loading[key]
            pending.set_exception(error)
            raise
        with self._lock:
            del self._loading[key]
            self.loads += 1
            self._entries[key] = generator
            while len(self._entries) > self.capacity:
                evicted, _ = self._entries.popitem(last=False)
                log.info("model bundle %s left the cache", evicted[0])
        pending.set_result(generator)
        return generator

    def loaded_paths(self) -> list[Path]:
        """Bundles in the cache, least recently used first."""
        with self._lock:
            return [Path(path) for path, _ in self._entries]
