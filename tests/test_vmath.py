"""Vectorizable math (tracediff.backend.vmath) against correctly rounded values."""

import numba
import numpy as np

import tracediff as td
from tracediff.backend.vmath import tanh_f32


@numba.njit(error_model="numpy")
def _apply(x, out):
    for i in range(x.shape[0]):
        out[i] = tanh_f32(x[i])


def _float32_sample(step: int) -> np.ndarray:
    """Every `step`-th positive finite float32 (subnormals to 3.4e38), both signs."""
    x = np.arange(0, 0x7F800000, step, dtype=np.uint32).view(np.float32)
    return np.concatenate([x, -x])


def test_tanh_f32_correctly_rounded_on_a_dense_sample():
    x = _float32_sample(1009)  # 4.2 million points over the whole range
    out = np.empty_like(x)
    _apply(x, out)
    exact = np.tanh(x.astype(np.float64))
    rounded = exact.astype(np.float32)
    ulp = np.abs(out.astype(np.float64) - rounded) / np.spacing(np.abs(rounded)).astype(np.float64)
    assert ulp.max() <= 1.0, f"max error {ulp.max()} ulp at x = {x[np.argmax(ulp)]!r}"


def test_tanh_f32_special_values():
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-30, -1e-45, 9.0, 9.1, 20.0, 3e38], np.float32)
    out = np.empty_like(x)
    _apply(x, out)
    np.testing.assert_array_equal(out[[0, 1]], [1.0, -1.0])
    assert np.isnan(out[2])
    assert out[3] == 0 and not np.signbit(out[3]) and out[4] == 0 and np.signbit(out[4])
    np.testing.assert_array_equal(out[5:], np.tanh(x[5:].astype(np.float64)).astype(np.float32))


def test_math_option_selects_the_implementation():
    x = np.linspace(-3, 3, 11, dtype=np.float32)
    fast = td.jit(lambda x: np.tanh(x))
    libm = td.jit(lambda x: np.tanh(x), math="libm")
    assert "tanh_f32(" in td.dump(fast, x, stage="source")
    src = td.dump(libm, x, stage="source")
    assert "math.tanh(" in src and "tanh_f32(" not in src
    np.testing.assert_array_equal(fast(x), np.tanh(x.astype(np.float64)).astype(np.float32))
    np.testing.assert_allclose(libm(x), np.tanh(x), rtol=1e-6)
