"""The trainer: retrain schedules, the queue poll, fine-tuning, the promotion gate and publishing.

Modules: `config` (TrainerConfig), `corpus` (a scope's training and held-out text), `heartbeat`,
`worker` (the job loop: one job from claim to finish), `gate` (the promotion gate), `publishing`
(registering a published model), `schedules` (per-scope cron retrains), `service` (the process),
`importing` (chat logs and exports into the messages table). Which model serves a scope is `db.serving`'s rule, shared
with the bots.

Names are re-exported lazily: importing `trainer` must not pay for importing TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainerConfig": "trainer.config",
    "TrainerError": "trainer.errors",
    "CorpusTooSmall": "trainer.errors",
    "ScopeNotFound": "trainer.errors",
    "ScopeCorpus": "trainer.corpus",
    "load_scope_corpus": "trainer.corpus",
    "Verdict": "trainer.gate",
    "judge_candidate": "trainer.gate",
    "JobOutcome": "trainer.worker",
    "Worker": "trainer.worker",
    "TrainerService": "trainer.service",
    "ImportResult": "trainer.importing",
    "import_corpus": "trainer.importing",
    "import_records": "trainer.importing",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'trainer' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
