"""The generation pool shares its worker threads and its queue fairly between workspaces."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bot.core.errors import GenerationBusy
from bot.core.generation import GenerationPool
from bot.core.models import ModelCache
from textgen.sampling import SamplingParams


class OrderRecorder:
    """Stands in for a generator: records which model decoded when, taking `delay` per batch."""

    def __init__(
        self, name: str, order: list[str], delay: float, gate: threading.Event | None = None
    ) -> None:
        self.name = name
        self.order = order
        self.delay = delay
        self.gate = gate
        self.nbytes = 100

    def generate_many(
        self, prompts: list[str], params: list[SamplingParams], contexts: object = None
    ) -> list[str]:
        if self.gate is not None:
            self.gate.wait(5)
        self.order.append(self.name)
        time.sleep(self.delay)
        return [" reply" for _ in prompts]


def _bundle(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "bundle.json").write_text("{}")
    return path


def test_a_flooding_workspace_delays_another_by_one_batch_not_its_backlog(tmp_path: Path) -> None:
    order: list[str] = []
    gate = threading.Event()
    models = ModelCache(loader=lambda path: OrderRecorder(path.name, order, 0.01, gate))  # type: ignore[arg-type, return-value]
    pool = GenerationPool(models, workers=1)
    flood = [_bundle(tmp_path / f"busy-{i}") for i in range(10)]
    quiet = _bundle(tmp_path / "quiet")
    try:
        # The busy workspace asks for ten channel models before the quiet one asks once.
        futures = [pool.submit(bundle, "x", SamplingParams(), workspace="busy") for bundle in flood]
        futures.append(pool.submit(quiet, "x", SamplingParams(), workspace="quiet"))
        gate.set()
        for future in futures:
            assert future.result(timeout=10) == " reply"
    finally:
        pool.close()
    # One busy batch was already decoding; the quiet workspace's turn comes right after it.
    assert order.index("quiet") <= 1, order


def test_one_workspace_cannot_fill_the_whole_pool(tmp_path: Path) -> None:
    gate = threading.Event()
    models = ModelCache(loader=lambda path: OrderRecorder(path.name, [], 0.0, gate))  # type: ignore[arg-type, return-value]
    pool = GenerationPool(models, workers=1, max_queued=8, max_queued_per_workspace=3)
    bundle = _bundle(tmp_path / "m")
    try:
        held = [pool.submit(bundle, "x", SamplingParams(), workspace="busy") for _ in range(3)]
        with pytest.raises(GenerationBusy):
            pool.submit(bundle, "x", SamplingParams(), workspace="busy")
        # Another workspace still gets in while the first is at its share.
        other = pool.submit(bundle, "x", SamplingParams(), workspace="other")
        gate.set()
        assert [future.result(timeout=5) for future in [*held, other]] == [" reply"] * 4
        # Answered requests give the share back.
        assert pool.submit(bundle, "x", SamplingParams(), workspace="busy").result(timeout=5) == " reply"
        assert pool.outstanding == 0
    finally:
        gate.set()
        pool.close()


def test_a_per_workspace_share_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_queued_per_workspace 0, expected at least 1"):
        GenerationPool(ModelCache(loader=lambda path: None), max_queued_per_workspace=0)  # type: ignore[arg-type, return-value]
