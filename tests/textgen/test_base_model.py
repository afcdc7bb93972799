"""The base model shipped inside the package: new scopes are fine-tuned from it."""

from pathlib import Path

import pytest

import chatsmith
from textgen.bundle import load_bundle
from textgen.generator import Generator
from textgen.spec import ModelSpec
from textgen.tokenizers import ByteTokenizer

BASE_MODEL = Path(chatsmith.__file__).resolve().parent / "data" / "base-model"


@pytest.fixture(scope="module")
def base():
    if not BASE_MODEL.exists():
        pytest.fail(f"{BASE_MODEL} is missing; build it with `make base-model`")
    return load_bundle(BASE_MODEL)


# What `make base-model` trains (BASE_MODEL_SPEC in the Makefile).
BASE_MODEL_SPEC = ModelSpec(arch="gru", layers=1, units=384, embedding=64, seq_len=64)


def test_base_model_has_the_base_spec_and_the_fixed_vocabulary(base):
    # Scopes fine-tune from it and keep its spec: a stale base model would silently change model sizes.
    assert base.spec == BASE_MODEL_SPEC, (
        "the base spec changed; rebuild the base model with `make base-model`"
    )
    assert base.tokenizer.kind == "byte" and base.tokenizer.vocab_size == ByteTokenizer().vocab_size


def test_base_model_learned_chat(base):
    # Far better than a uniform guess over bytes (5.56 nats per byte) on its own held-out chat.
    assert base.metrics["val_nats_per_char"] < 2.5
    [sample] = Generator(base).generate("anyone know how to ", max_tokens=60, temperature=0.5, seed=1)
    words = sample.split()
    assert len(words) >= 6
    assert sum(word.isascii() for word in words) >= 0.9 * len(words)


def test_base_model_is_served_from_memory_mapped_arrays_identical_to_its_keras_weights(base):
    # Bots read weights.npy without h5py; without it every bot process would parse the HDF5 file.
    import json

    import numpy as np

    from textgen.bundle import MANIFEST, WEIGHT_ARRAYS, WEIGHT_INDEX, WEIGHTS
    from textgen.weights import read_keras_weights, read_weight_arrays

    index = json.loads((BASE_MODEL / MANIFEST).read_text())[WEIGHT_INDEX]
    served = read_weight_arrays(BASE_MODEL / WEIGHT_ARRAYS, index)
    keras_file = read_keras_weights(BASE_MODEL / WEIGHTS, base.spec)
    assert served.keys() == keras_file.keys()
    for name, array in keras_file.items():
        np.testing.assert_array_equal(served[name], array, err_msg=name)
