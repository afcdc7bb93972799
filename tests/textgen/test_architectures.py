"""The architecture registry: a `ModelSpec` names its family, and a family added to the registry is
built, saved, served and decoded with nothing else changed."""

import numpy as np
import pytest

from textgen.architectures import ARCHITECTURES, FAMILIES, family_of
from textgen.architectures.cells import GRUCell
from textgen.architectures.recurrent import RecurrentFamily
from textgen.bundle import load_serving_bundle, save_bundle
from textgen.errors import TextgenError
from textgen.generator import Generator
from textgen.model import build_model
from textgen.spec import ModelSpec
from textgen.tokenizers import ByteTokenizer


def test_every_registered_architecture_is_a_valid_spec_with_its_own_family():
    assert ARCHITECTURES == ("simplernn", "lstm", "gru", "bilstm")
    for arch in ARCHITECTURES:
        spec = ModelSpec(arch=arch)
        assert spec.family is family_of(arch) and spec.family.arch == arch
    assert [ModelSpec(arch=arch).causal for arch in ARCHITECTURES] == [True, True, True, False]


def test_an_unknown_architecture_is_refused_naming_the_known_ones():
    with pytest.raises(TextgenError, match="unknown architecture 'transformer'; use one of: simplernn, lstm"):
        ModelSpec(arch="transformer")


def test_a_family_added_to_the_registry_trains_saves_and_serves(tmp_path, monkeypatch):
    # A GRU under another name stands in for a new architecture: one registry entry, nothing else.
    monkeypatch.setitem(FAMILIES, "wide-gru", RecurrentFamily("wide-gru", GRUCell, "GRU"))
    spec = ModelSpec(arch="wide-gru", units=8, embedding=4, seq_len=8)
    model = build_model(spec, ByteTokenizer().vocab_size)
    save_bundle(tmp_path / "bundle", model, spec, ByteTokenizer())

    served = load_serving_bundle(tmp_path / "bundle")
    assert served.spec.arch == "wide-gru"
    tokens = np.array([[70, 71, 72]], dtype=np.int32)
    np.testing.assert_allclose(
        Generator(served).stepper.window_logits(tokens), model(tokens).numpy()[:, -1], rtol=1e-5, atol=1e-5
    )
    [text] = Generator(served).generate("hi", max_tokens=5, temperature=1.0, seed=0)
    assert text.startswith("hi")
