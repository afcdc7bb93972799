"""Decoding with float16 copies of the step's matrices (`textgen.half_weights`): every compiled kernel is
the product of the float16 weights, every architecture still computes its model, and the base model's
held-out figure does not move."""

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.core.models import ModelCache
from chatsmith.base_model import find_base_model
from textgen._halfmatmul import kernels, matmul, to_half
from textgen.architectures import ARCHITECTURES
from textgen.bundle import load_serving_bundle, save_bundle
from textgen.corpus import load_corpus
from textgen.evaluate import evaluate_messages
from textgen.generator import Generator
from textgen.half_weights import HalfMatrix, fast_half_products, halve, halve_step_matrices
from textgen.model import build_model
from textgen.spec import ModelSpec
from textgen.tokenizers import ByteTokenizer

STRIPE_HEAD = Path(__file__).parents[1] / "data" / "stripe-irc-head.log"


@pytest.mark.parametrize("kernel", kernels())
@pytest.mark.parametrize(
    ("rows", "n_in", "n_out"),
    # One row and batches (four rows share a pass), and widths that leave every kind of column tail.
    [(1, 384, 1152), (1, 384, 260), (4, 384, 260), (9, 48, 150), (3, 7, 5), (2, 0, 3), (0, 5, 5)],
)
def test_each_kernel_is_the_product_of_the_float16_weights(kernel, rows, n_in, n_out):
    rng = np.random.default_rng(rows * 1000 + n_out)
    x = rng.standard_normal((rows, n_in)).astype(np.float32)
    w = rng.standard_normal((n_in, n_out)).astype(np.float16)
    out = np.full((rows, n_out), np.nan, dtype=np.float32)
    matmul(x, w, out, rows, n_in, n_out, kernel=kernel)
    exact = x.astype(np.float64) @ w.astype(np.float64)
    # float32 sums of n_in terms: a few units in the last place of the largest partial sums.
    np.testing.assert_allclose(out, exact, rtol=0, atol=1e-6 * max(1, n_in) * 4)


def test_the_portable_kernel_is_always_there_and_the_fastest_comes_first():
    names = kernels()
    assert names[-1] == "generic" and set(names) <= {"avx512", "avx2", "generic"}
    assert fast_half_products() == (names[0] != "generic")


def test_wrong_buffers_are_refused_in_one_line():
    x, w = np.ones((1, 4), np.float32), np.ones((4, 3), np.float16)
    with pytest.raises(TypeError, match="w must be float16"):
        matmul(x, w.astype(np.float32), np.empty((1, 3), np.float32), 1, 4, 3)
    with pytest.raises(ValueError, match="do not have the shapes given"):
        matmul(x, w, np.empty((1, 2), np.float32), 1, 4, 3)
    with pytest.raises(ValueError, match="no neon kernel"):
        matmul(x, w, np.empty((1, 3), np.float32), 1, 4, 3, kernel="neon")


def test_a_half_matrix_multiplies_from_the_left_and_is_a_float16_array_otherwise():
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((6, 10)).astype(np.float32)
    half = halve(weights)
    rounded = weights.astype(np.float16).astype(np.float64)
    for x in (rng.standard_normal(6).astype(np.float32), rng.standard_normal((3, 6))):
        product = x @ half
        assert (
            type(product) is np.ndarray
            and product.dtype == np.float32
            and product.shape == (*x.shape[:-1], 10)
        )
        np.testing.assert_allclose(product, x @ rounded, atol=1e-5)
    assert half.shape == (6, 10) and half.nbytes == 120
    doubled = half * 2
    assert type(doubled) is np.ndarray and doubled.dtype == np.float16
    with pytest.raises(ValueError, match=r"cannot multiply \(4,\) by a \(6, 10\) matrix"):
        np.ones(4, np.float32) @ half


@pytest.mark.skipif(not fast_half_products(), reason="this CPU has no vector kernel for float16 weights")
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_decodes_its_model_with_half_weights(tmp_path, arch):
    spec = ModelSpec(arch=arch, layers=2, units=40, embedding=12, seq_len=10)
    model = build_model(spec, ByteTokenizer().vocab_size)
    save_bundle(tmp_path / "bundle", model, spec, ByteTokenizer())
    served = load_serving_bundle(tmp_path / "bundle")
    full, half = Generator(served), Generator(served, half_weights=True)
    halved = [name for name, array in half.weights.items() if isinstance(array, HalfMatrix)]
    assert "logits/kernel" in halved and sum(name.endswith("/recurrent_kernel") for name in halved) >= 2
    assert not any(isinstance(array, HalfMatrix) for array in full.weights.values())
    tokens = np.random.default_rng(1).integers(4, 200, size=(3, 10))
    exact = full.stepper.window_logits(tokens)
    np.testing.assert_allclose(
        half.stepper.window_logits(tokens), exact, rtol=0, atol=2e-3 * np.abs(exact).max()
    )
    assert half.nbytes < full.nbytes


@pytest.mark.skipif(not fast_half_products(), reason="this CPU has no vector kernel for float16 weights")
def test_the_base_model_scores_held_out_chat_the_same_with_half_weights():
    served = load_serving_bundle(find_base_model(None))
    messages = load_corpus(STRIPE_HEAD).messages[:150]
    exact = evaluate_messages(served, messages)
    half = evaluate_messages(replace(served, weights=halve_step_matrices(served.weights)), messages)
    assert exact.chars > 5_000
    assert abs(half.nats_per_char - exact.nats_per_char) < 1e-3


@pytest.mark.skipif(not fast_half_products(), reason="this CPU has no vector kernel for float16 weights")
def test_the_bots_model_cache_decodes_with_half_weights():
    generator = ModelCache().get(find_base_model(None))
    assert isinstance(generator.stepper.output_kernel, HalfMatrix)
    assert isinstance(generator.stepper.layers[0].recurrent, HalfMatrix)
    [text] = generator.generate("the webhook", max_tokens=30, seed=0)
    assert text.startswith("the webhook") and len(text) > len("the webhook")


def _resident_mib() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the resident size from /proc")
def test_halving_a_mapped_bundle_keeps_only_the_float16_copies_resident():
    # A fresh load: its weights.npy is mapped, nothing of it read yet by this process.
    served = load_serving_bundle(find_base_model(None))
    before = _resident_mib()
    halved = halve_step_matrices(served.weights)
    grown = _resident_mib() - before
    names = [name for name, array in halved.items() if isinstance(array, HalfMatrix)]
    half_mib = sum(halved[name].nbytes for name in names) / 2**20
    # Read through the map, the float32 pages (twice the copies) would stay resident beside them.
    assert grown < half_mib + 0.5, (grown, half_mib)
    for name in names:
        np.testing.assert_array_equal(np.asarray(halved[name]), np.asarray(served.weights[name], np.float16))


@pytest.mark.skipif(not fast_half_products(), reason="this CPU has no vector kernel for float16 weights")
def test_the_compiled_rounding_to_float16_is_numpys_bit_for_bit():
    rng = np.random.default_rng(3)
    edges = [
        0.0,
        -0.0,
        1e-8,
        2.0**-24,
        2.0**-25,
        3 * 2.0**-26,
        6.1e-5,
        1.00048828125,
        65504,
        65519.9,
        65520,
        1e6,
    ]
    values = np.concatenate(
        [
            rng.standard_normal(1001) * 3,
            rng.standard_normal(999) * 1e-6,
            edges,
            np.negative(edges),
            [np.inf, -np.inf],
        ]
    ).astype(np.float32)
    rounded = np.empty(values.size, dtype=np.float16)
    to_half(values, rounded, values.size)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16)
    np.testing.assert_array_equal(rounded.view(np.uint16), expected.view(np.uint16))
    assert np.isnan(halve(np.array([[np.nan, 1.0]], dtype=np.float32))[0, 0])
