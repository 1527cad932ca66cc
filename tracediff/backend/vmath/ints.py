"""Division and powers for generated loops, with NumPy's answers where the
machine's own instructions (or Numba's) differ: integer division by 0 and of
MIN by -1, integer negative powers, the signs of float remainders and floor
quotients."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["ipow", "ifloordiv", "irem", "ffloordiv", "frem"]


@njit(forceinline=True, error_model="numpy")
def ipow(x, y):
    """x ** y for integers, as NumPy: a negative exponent raises (Numba's `**` would
    return 0 or 1 instead)."""
    if y < 0:
        raise ValueError("pow: integers to negative integer powers are not allowed")
    # by squaring, wrapping around as NumPy's loop does (Numba's ** goes through
    # floating point for large exponents)
    r = x - x + 1
    b = x
    while y > 0:
        if y & 1:
            r = r * b
        b = b * b
        y = y >> 1
    return r


@njit(forceinline=True, error_model="numpy")
def ifloordiv(x, y):
    """x // y for integers, as NumPy: 0 for y == 0, and MIN // -1 wraps to MIN
    (the machine's division traps on both)."""
    if y == 0:
        return x - x
    if y == -1:
        return -x
    return x // y


@njit(forceinline=True, error_model="numpy")
def irem(x, y):
    """x % y for integers, as NumPy: 0 for y == 0 and y == -1 (MIN % -1 traps)."""
    if y == 0 or y == -1:
        return x - x
    return x % y


@njit(forceinline=True, error_model="numpy")
def _fdivmod(a, b):
    """NumPy's npy_divmod: (floor quotient, remainder with the divisor's sign)."""
    mod = np.fmod(a, b)
    if b == 0:
        return a / b, mod
    div = (a - mod) / b
    if mod != 0:
        if (b < 0) != (mod < 0):
            mod += b
            div -= 1.0
    else:
        mod = math.copysign(0.0, b)
    if div != 0:
        q = np.floor(div)
        if div - q > 0.5:
            q += 1.0
    else:
        q = math.copysign(0.0, a / b)
    return q, mod


@njit(forceinline=True, error_model="numpy")
def ffloordiv(a, b):
    return _fdivmod(a, b)[0]


@njit(forceinline=True, error_model="numpy")
def frem(a, b):
    return _fdivmod(a, b)[1]
