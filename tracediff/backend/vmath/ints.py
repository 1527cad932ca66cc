"""Integer helpers for generated loops."""

from __future__ import annotations

from numba import njit

__all__ = ["ipow", "ifloordiv", "irem"]


@njit(inline="always")
def ipow(x, y):
    """x ** y for integers, as NumPy: a negative exponent raises (Numba's `**` would
    return 0 or 1 instead)."""
    if y < 0:
        raise ValueError("pow: integers to negative integer powers are not allowed")
    return x**y


@njit(inline="always")
def ifloordiv(x, y):
    """x // y for integers, as NumPy: 0 for y == 0, and MIN // -1 wraps to MIN
    (the machine's division traps on both)."""
    if y == 0:
        return x - x
    if y == -1:
        return -x
    return x // y


@njit(inline="always")
def irem(x, y):
    """x % y for integers, as NumPy: 0 for y == 0 and y == -1 (MIN % -1 traps)."""
    if y == 0 or y == -1:
        return x - x
    return x % y
