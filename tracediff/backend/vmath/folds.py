"""Sums of a buffer for generated loops (regions.buffered_folds)."""

from __future__ import annotations

from numba import njit

__all__ = ["wide_sum"]


@njit(forceinline=True, error_model="numpy")
def wide_sum(buf, lo, hi):
    """buf[lo:hi] summed in four interleaved partial sums: four dependency chains,
    not one, where each add waits for the last. For float32 summands in a float64
    sum (the only use), the order moves the float64 result by about 1e-16 of it,
    far below the float32 rounding it gets next."""
    a0 = buf[lo] - buf[lo]
    a1, a2, a3 = a0, a0, a0
    j = lo
    while j + 4 <= hi:
        a0 += buf[j]
        a1 += buf[j + 1]
        a2 += buf[j + 2]
        a3 += buf[j + 3]
        j += 4
    while j < hi:
        a0 += buf[j]
        j += 1
    return (a0 + a1) + (a2 + a3)
