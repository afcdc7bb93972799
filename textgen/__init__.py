"""textgen: the machine-learning core. Tokenizers, model specs and builders, streaming datasets,
training, evaluation, bundles and generation. Knows nothing of chat platforms or databases.

Names are re-exported lazily: `import textgen.corpus` must not pay for importing TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Bundle": "textgen.bundle",
    "load_bundle": "textgen.bundle",
    "save_bundle": "textgen.bundle",
    "Corpus": "textgen.corpus",
    "load_corpus": "textgen.corpus",
    "parse_corpus": "textgen.corpus",
    "TextgenError": "textgen.errors",
    "Evaluation": "textgen.evaluate",
    "evaluate_messages": "textgen.evaluate",
    "Generator": "textgen.generator",
    "build_model": "textgen.model",
    "SamplingParams": "textgen.sampling",
    "ModelSpec": "textgen.spec",
    "TrainConfig": "textgen.spec",
    "ByteTokenizer": "textgen.tokenizers",
    "CharTokenizer": "textgen.tokenizers",
    "Tokenizer": "textgen.tokenizers",
    "WordTokenizer": "textgen.tokenizers",
    "build_tokenizer": "textgen.tokenizers",
    "TrainingProgress": "textgen.training",
    "TrainResult": "textgen.training",
    "train_model": "textgen.training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'textgen' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
