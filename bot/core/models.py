"""Loaded models, kept in an LRU cache sized in bytes and keyed by bundle, so a new active version loads
on its next use.

A model is its weight arrays (`textgen.Generator`, NumPy only): memory-mapped from the bundle's
`weights.npy`, so a load copies little, and an evicted model's pages go back with its mapping. What the
allocator holds on to after evictions (its arenas keep freed blocks for reuse) is handed back to the
system now and then (`malloc_trim`), so a process that cycles through thousands of models stays the
size of what it keeps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from textgen.bundle import MANIFEST
from textgen.generator import Generator

log = logging.getLogger(__name__)

BundleKey = tuple[str, int]
MIB = 1024 * 1024
# A load costs about 1.5 ms for a GRU of 384 units (bench/SERVING.md) against tens of milliseconds to
# decode a reply, so the cache only needs the models in use right now; 128 MB holds about 30 such models
# (about 150 of 128 units) and keeps a bot serving 1,000 models under 400 MB.
DEFAULT_CACHE_BYTES = 128 * MIB
# Evicted bytes after which freed heap memory is handed back to the system (see `_trim_heap`).
TRIM_AFTER_BYTES = 32 * MIB


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


def load_for_replies(path: Path) -> Generator:
    """The generator of the bundle at `path` as the bots decode with it: float16 copies of the matrices
    each step reads whole, which halves a reply's model steps (`textgen.half_weights`)."""
    return Generator.from_bundle(path, half_weights=True)


def generator_bytes(generator: Any) -> int:
    """What a cached generator counts against the cache: its weights and derived arrays."""
    return int(getattr(generator, "nbytes", 0))


class ModelCache:
    """The most recently used generators, up to `max_bytes` of model arrays in all. Thread-safe.

    The newest model always stays, even when it alone is larger than `max_bytes`. Call `get` from worker
    threads: a load reads files (milliseconds, but never on an event loop). Two threads asking for the
    same bundle at once share one load.

    Args:
        max_bytes: Bytes of model arrays kept loaded (`Generator.nbytes` each).
        loader: Loads the generator of a bundle directory; raises `TextgenError` for a missing or
            damaged bundle.
        max_models: Also keep at most this many models (None: bytes only).
        size_of: The bytes one generator counts.
    """

    def __init__(
        self,
        max_bytes: int = DEFAULT_CACHE_BYTES,
        loader: Callable[[Path], Generator] = load_for_replies,
        *,
        max_models: int | None = None,
        size_of: Callable[[Generator], int] = generator_bytes,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"Received max_bytes {max_bytes}, expected at least 1")
        if max_models is not None and max_models < 1:
            raise ValueError(f"Received max_models {max_models}, expected at least 1")
        self.max_bytes = max_bytes
        self.max_models = max_models
        self._loader = loader
        self._size_of = size_of
        self._lock = threading.Lock()
        self._entries: OrderedDict[BundleKey, tuple[Generator, int]] = OrderedDict()
        self._loading: dict[BundleKey, Future[Generator]] = {}
        self._bytes = 0
        self._evicted_since_trim = 0
        self.loads = 0
        self.evictions = 0

    @property
    def bytes(self) -> int:
        """Bytes the cached models count now."""
        with self._lock:
            return self._bytes

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
                return cached[0]
            pending = self._loading.get(key)
            owner = pending is None
            if pending is None:
                pending = Future()
                self._loading[key] = pending
        if not owner:
            return pending.result()
        try:
            log.debug("loading model bundle %s", key[0])
            generator = self._loader(Path(key[0]))
            size = self._size_of(generator)
        except BaseException as error:
            with self._lock:
                del self._loading[key]
            pending.set_exception(error)
            raise
        with self._lock:
            del self._loading[key]
            self.loads += 1
            self._entries[key] = (generator, size)
            self._bytes += size
            evicted = self._evict_over_budget()
            trim = self._evicted_since_trim >= TRIM_AFTER_BYTES
            if trim:
                self._evicted_since_trim = 0
        pending.set_result(generator)
        # The last references go here, outside the lock: unmapping and freeing take a moment.
        evicted.clear()
        if trim:
            _trim_heap()
        return generator

    def _evict_over_budget(self) -> list[Generator]:
        """Drop least recently used models until the cache fits; the caller holds the lock."""
        evicted = []
        while len(self._entries) > 1 and (
            self._bytes > self.max_bytes
            or (self.max_models is not None and len(self._entries) > self.max_models)
        ):
            old_key, (old, old_size) = self._entries.popitem(last=False)
            self._bytes -= old_size
            self._evicted_since_trim += old_size
            self.evictions += 1
            evicted.append(old)
            log.debug("model bundle %s left the cache", old_key[0])
        return evicted

    def loaded_paths(self) -> list[Path]:
        """Bundles in the cache, least recently used first."""
        with self._lock:
            return [Path(path) for path, _ in self._entries]


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


_malloc_trim = _load_malloc_trim()


def _trim_heap() -> None:
    """Hand freed heap memory back to the system (glibc only; elsewhere a no-op).

    glibc keeps freed blocks in its arenas for reuse, and with several decoding threads there is one
    arena per thread; after many loads and evictions most of that is free but still counted as the
    process's memory. `malloc_trim(0)` returns the free pages of every arena.
    """
    if _malloc_trim is not None:
        _malloc_trim(0)
