"""float32 x**y: |x|^y = e^{y log|x|} evaluated in float64 with the float64
exp and log of this package. Their relative errors are about 2^-52, and
|y log|x|| <= 104 wherever the float32 result is neither 0 nor inf, so the
float64 value is within 2^-45 of the exact power: the float32 result is the
correctly rounded one except for rare double roundings (<= 0.5 ulp + tiny).

The C99 special cases are selects: x**0 == 1 and 1**y == 1 (NaN too),
(-1)**(+-inf) == 1, a negative finite x with a finite non-integer y is NaN,
a negative x (-0 and -inf included) with an odd integer y keeps its sign.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .bits import bits_of_f32
from .exp import exp_f64
from .log import log_f64

__all__ = ["pow_f32"]


@njit(inline="always", error_model="numpy", cache=True)
def pow_f32(x, y):
    xd = np.float64(x)
    yd = np.float64(y)
    r = exp_f64(yd * log_f64(abs(xd)))
    is_int = np.floor(yd) == yd  # +-inf counts as an even integer, as C99 wants
    is_odd = is_int & (np.floor(yd * 0.5) * 2.0 != yd)
    if (bits_of_f32(x) < 0) & is_odd:  # sign bit of x: -0 and -inf too
        r = -r
    if (xd < 0.0) & (xd > -np.inf) & (abs(yd) < np.inf) & ~is_int:
        r = np.nan
    if (yd == 0.0) | (xd == 1.0) | ((xd == -1.0) & (abs(yd) == np.inf)):
        r = 1.0
    return np.float32(r)
