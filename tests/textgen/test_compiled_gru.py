"""The GRU step's compiled element-wise part (`textgen/_gru.c`) against the cell's equations in float64."""

import numpy as np
import pytest

from textgen._gru import gru_update


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
