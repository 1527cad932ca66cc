"""Vectorizable math for generated loops: branch-free polynomials that LLVM
turns into SIMD code, where Numba would call scalar libm functions.

So far: float32 `tanh`, evaluated in float64 through a float64 `exp`:
tanh|x| = (e^{2|x|} - 1) / (e^{2|x|} + 1). The float64 exp (Cody-Waite range
reduction, a degree-11 Taylor polynomial on |r| <= ln2/2, the exponent built
by bit manipulation) is accurate to about 1e-15, so the float32 result is
within 1 ulp of the correctly rounded tanh (measured in tests/test_vmath.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .bits import f64_from_bits

__all__ = ["tanh_f32"]

LOG2E = 1.4426950408889634
LN2_HI = 0.6931471803691238  # ln 2 split so k * LN2_HI is exact for |k| < 2^20
LN2_LO = 1.9082149292705877e-10
# 1/n! for n = 2..11: |r|^12/12! < 1.2e-15 on |r| <= ln2/2
C2, C3, C4, C5, C6, C7 = 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040
C8, C9, C10, C11 = 1 / 40320, 1 / 362880, 1 / 3628800, 1 / 39916800
TANH_SATURATE = 9.5  # float32 tanh rounds to +-1 beyond 9.02
TANH_TINY = 1e-8  # tanh(x) == x in float32 below this


@njit(inline="always", error_model="numpy", cache=True)
def exp_f64(y):
    """e**y for float64 y in [-700, 700], relative error about 1e-15."""
    k = np.floor(y * LOG2E + 0.5)
    r = (y - k * LN2_HI) - k * LN2_LO
    p = C11
    p = p * r + C10
    p = p * r + C9
    p = p * r + C8
    p = p * r + C7
    p = p * r + C6
    p = p * r + C5
    p = p * r + C4
    p = p * r + C3
    p = p * r + C2
    p = p * r + 1.0
    p = p * r + 1.0
    return p * f64_from_bits((np.int64(k) + 1023) << 52)


@njit(inline="always", error_model="numpy", cache=True)
def tanh_f32(x):
    a = np.float64(abs(x))
    if a > TANH_SATURATE:  # a select, not a branch; NaN compares false and stays NaN
        a = TANH_SATURATE
    t = exp_f64(2.0 * a)
    r = (t - 1.0) / (t + 1.0)
    if x < 0:
        r = -r
    return x if abs(x) < TANH_TINY else np.float32(r)
