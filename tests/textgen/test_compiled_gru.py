"""The GRU step's compiled element-wise part (`textgen/_gru.c`) against the cell's equations in float64."""

import numpy as np
import pytest

from textgen._gru import gru_step_half, gru_update
from textgen._halfmatmul import matmul


def reference(projected, inner, bias, h_prev):
    """Keras' GRU (`reset_after`) after the recurrent product, in float64."""
    units = h_prev.shape[1]
    p, inner = projected.astype(np.float64), (inner + bias).astype(np.float64)
    z = 1 / (1 + np.exp(-(p[:, :units] + inner[:, :units])))
    r = 1 / (1 + np.exp(-(p[:, units : 2 * units] + inner[:, units : 2 * units])))
    candidate = np.tanh(p[:, 2 * units :] + r * inner[:, 2 * units :])
    return z * h_prev + (1 - z) * candidate


@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0], ids=["near zero", "typical", "saturated"])
def test_each_row_is_the_gru_equations_to_float32_precision(scale):
    rng = np.random.default_rng(0)
    batch, units = 3, 37  # an odd width: the vectorised loop's remainder is computed too
    projected = (rng.standard_normal((batch, 3 * units)) * scale).astype(np.float32)
    inner = (rng.standard_normal((batch, 3 * units)) * scale).astype(np.float32)
    bias = (rng.standard_normal(3 * units) * scale).astype(np.float32)
    h_prev = rng.uniform(-1, 1, (batch, units)).astype(np.float32)
    out = np.empty_like(h_prev)
    gru_update(projected, inner, bias, h_prev, out, batch, units)
    np.testing.assert_allclose(out, reference(projected, inner, bias, h_prev), rtol=0, atol=2e-6)


def test_arrays_of_the_wrong_shape_or_type_are_refused_in_one_line():
    batch, units = 2, 4
    ok = {
        "projected": np.zeros((batch, 3 * units), np.float32),
        "inner": np.zeros((batch, 3 * units), np.float32),
        "recurrent_bias": np.zeros(3 * units, np.float32),
        "h_prev": np.zeros((batch, units), np.float32),
        "out": np.zeros((batch, units), np.float32),
    }
    for name in ok:
        for bad in (ok[name].astype(np.float64), ok[name][..., :-1].copy()):
            arrays = {**ok, name: bad}
            with pytest.raises(ValueError, match=f"{name} must be C-contiguous float32"):
                gru_update(*arrays.values(), batch, units)
    readonly = ok["out"].copy()
    readonly.flags.writeable = False
    with pytest.raises((ValueError, BufferError)):
        gru_update(*list(ok.values())[:4], readonly, batch, units)


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_the_fused_half_step_is_the_half_product_then_the_update(batch):
    rng = np.random.default_rng(batch)
    units = 37
    projected = rng.standard_normal((batch, 3 * units)).astype(np.float32)
    h_prev = rng.uniform(-1, 1, (batch, units)).astype(np.float32)
    recurrent = (rng.standard_normal((units, 3 * units)) * 0.3).astype(np.float16)
    bias = rng.standard_normal(3 * units).astype(np.float32)
    inner = np.empty((batch, 3 * units), np.float32)
    matmul(h_prev, recurrent, inner, batch, units, 3 * units)
    separate, fused = np.empty_like(h_prev), np.empty_like(h_prev)
    gru_update(projected, inner, bias, h_prev, separate, batch, units)
    gru_step_half(projected, h_prev, recurrent, bias, fused, batch, units)
    np.testing.assert_array_equal(fused, separate)
    exact = reference(projected, h_prev.astype(np.float64) @ recurrent.astype(np.float64), bias, h_prev)
    np.testing.assert_allclose(fused, exact, rtol=0, atol=1e-5)


def test_the_fused_half_step_refuses_a_float32_or_misshapen_recurrent_kernel():
    batch, units = 1, 4
    args = [np.zeros((batch, 3 * units), np.float32), np.zeros((batch, units), np.float32)]
    rest = [np.zeros(3 * units, np.float32), np.zeros((batch, units), np.float32), batch, units]
    for bad in (np.zeros((units, 3 * units), np.float32), np.zeros((units, 2 * units), np.float16)):
        with pytest.raises(ValueError, match=r"recurrent must be C-contiguous float16 \(4, 12\)"):
            gru_step_half(*args, bad, *rest)
