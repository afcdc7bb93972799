"""Bundles served without TensorFlow: the NumPy forward pass equals Keras' for every architecture, whether
the weights come from `weights.npy` or (older bundles) from the Keras `.weights.h5`."""

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

import chatsmith
from textgen.architectures import ARCHITECTURES, Stepper
from textgen.bundle import MANIFEST, WEIGHT_ARRAYS, WEIGHT_INDEX, load_serving_bundle, save_bundle
from textgen.engine import make_stepper
from textgen.errors import TextgenError
from textgen.generator import Generator
from textgen.model import build_model
from textgen.spec import ModelSpec
from textgen.tokenizers import ByteTokenizer

VOCAB = ByteTokenizer().vocab_size
BASE_MODEL_DIR = Path(chatsmith.__file__).resolve().parent / "data" / "base-model"
# Every registered architecture, one layer and stacked.
SPECS = [
    ModelSpec(arch=arch, layers=layers, units=12, embedding=8, seq_len=6)
    for arch in ARCHITECTURES
    for layers in (1, 2)
]


def saved_bundle(spec: ModelSpec, out: Path, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = build_model(spec, VOCAB)
    # Larger-than-initial weights so every gate matters and mistakes show.
    rng = np.random.default_rng(seed)
    model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    save_bundle(out, model, spec, ByteTokenizer())
    return model


def as_old_bundle(path: Path) -> None:
    """What a bundle written before `weights.npy` looks like: Keras weights only."""
    (path / WEIGHT_ARRAYS).unlink()
    manifest = json.loads((path / MANIFEST).read_text())
    del manifest[WEIGHT_INDEX]
    (path / MANIFEST).write_text(json.dumps(manifest))


def numpy_logits(stepper: Stepper, tokens: np.ndarray) -> np.ndarray:
    """Causal: logits at every position, step by step. BiLSTM: logits after each whole window."""
    if not stepper.carries_state:
        return stepper.window_logits(tokens)
    state = stepper.initial_state(tokens.shape[0])
    steps = []
    for position in range(tokens.shape[1]):
        logits, state = stepper.step(tokens[:, position], state)
        steps.append(logits)
    return np.stack(steps, axis=1)


@pytest.mark.parametrize("weights_file", ["weights.npy", "model.weights.h5"])
@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: f"{spec.arch}x{spec.layers}")
def test_numpy_forward_from_a_served_bundle_equals_keras(spec, weights_file, tmp_path):
    model = saved_bundle(spec, tmp_path / "bundle")
    if weights_file == "model.weights.h5":
        as_old_bundle(tmp_path / "bundle")
    bundle = load_serving_bundle(tmp_path / "bundle")
    length = 20 if spec.causal else spec.seq_len
    tokens = np.random.default_rng(1).integers(0, VOCAB, size=(4, length)).astype(np.int32)
    expected = model(tokens).numpy()
    np.testing.assert_allclose(
        numpy_logits(make_stepper(bundle.weights, spec), tokens), expected, rtol=1e-5, atol=2e-5
    )


def test_a_served_bundle_generates_what_the_keras_bundle_generates(tmp_path):
    from textgen.bundle import load_bundle

    spec = ModelSpec(arch="lstm", units=24, embedding=8, seq_len=8)
    saved_bundle(spec, tmp_path / "bundle", seed=3)
    served = Generator.from_bundle(tmp_path / "bundle")
    keras_loaded = Generator(load_bundle(tmp_path / "bundle"))
    prompt = dict(prompt="hello", max_tokens=40, temperature=0.9, seed=7, n=3)
    assert served.generate(**prompt) == keras_loaded.generate(**prompt)


def test_the_shipped_base_model_without_weights_npy_serves_the_same_from_its_keras_weights(tmp_path):
    # Bundles from before weights.npy existed are read with h5py; they must decode exactly the same.
    old = tmp_path / "base-model"
    shutil.copytree(BASE_MODEL_DIR, old)
    as_old_bundle(old)
    assert not (old / WEIGHT_ARRAYS).exists()
    [sample] = Generator.from_bundle(BASE_MODEL_DIR).generate("how do i ", max_tokens=40, seed=1)
    [from_keras] = Generator.from_bundle(old).generate("how do i ", max_tokens=40, seed=1)
    assert sample.startswith("how do i ") and len(sample) > len("how do i ")
    assert from_keras == sample


def test_damaged_weights_fail_in_one_line_naming_the_file(tmp_path):
    spec = ModelSpec(arch="gru", units=8, embedding=4, seq_len=8)
    saved_bundle(spec, tmp_path / "bundle")
    arrays = tmp_path / "bundle" / WEIGHT_ARRAYS
    arrays.write_bytes(arrays.read_bytes()[:-400])
    with pytest.raises(TextgenError, match=r"weights\.npy .*damaged; retrain it") as caught:
        load_serving_bundle(tmp_path / "bundle")
    assert "\n" not in str(caught.value)

    as_old_bundle(tmp_path / "bundle")
    (tmp_path / "bundle" / "model.weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(TextgenError, match=r"model\.weights\.h5 .*retrain") as caught:
        load_serving_bundle(tmp_path / "bundle")
    assert "\n" not in str(caught.value)


def test_weights_of_the_wrong_shape_are_refused(tmp_path):
    spec = ModelSpec(arch="gru", units=8, embedding=4, seq_len=8)
    saved_bundle(spec, tmp_path / "bundle")
    manifest = json.loads((tmp_path / "bundle" / MANIFEST).read_text())
    manifest["spec"]["units"] = 9
    (tmp_path / "bundle" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(TextgenError, match=r"shape .* expected .*retrain"):
        load_serving_bundle(tmp_path / "bundle")


def test_a_missing_bundle_names_the_fix(tmp_path):
    with pytest.raises(TextgenError, match="does not exist; train one"):
        load_serving_bundle(tmp_path / "nowhere")
