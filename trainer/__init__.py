"""The trainer: retrain schedules, the queue poll, fine-tuning, the promotion gate, and model resolution.

Modules: `config` (TrainerConfig), `base_model`, `corpus` (a scope's training and held-out text),
`serving` (which bundle answers in a channel; used by the bots too), `heartbeat`, `worker` (one job from
claim to finish), `schedules` (per-scope cron retrains), `service` (the process), `importing` (chat
logs into the messages table).

Names are re-exported lazily: `trainer.serving` must not pay for importing TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainerConfig": "trainer.config",
    "TrainerError": "trainer.errors",
    "CorpusTooSmall": "trainer.errors",
    "ScopeNotFound": "trainer.errors",
    "find_base_model": "trainer.base_model",
    "ScopeCorpus": "trainer.corpus",
    "load_scope_corpus": "trainer.corpus",
    "ServingModel": "trainer.serving",
    "resolve_bundle_path": "trainer.serving",
    "resolve_serving_model": "trainer.serving",
    "serving_model_for_scope": "trainer.serving",
    "JobOutcome": "trainer.worker",
    "Worker": "trainer.worker",
    "TrainerService": "trainer.service",
    "ImportResult": "trainer.importing",
    "import_corpus": "trainer.importing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'trainer' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
