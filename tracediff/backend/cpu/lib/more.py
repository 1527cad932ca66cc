"""Sorting, searching and cumulative operations for compiled CPU programs (the
`argsort`, `searchsorted`, `linrec` and `cumarg` primitives): each works along the
last axis of a C-contiguous array, row by row."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def argsort(x):
    n = x.shape[-1]
    out = np.empty(x.shape, np.int64)
    if n == 0 or x.size == 0:
        return out
    rows = x.reshape((x.size // n, n))
    res = out.reshape((x.size // n, n))
    for r in range(rows.shape[0]):
        res[r] = np.argsort(rows[r], kind="mergesort")  # stable, NaN last: as NumPy's "stable"
    return out


@numba.njit(cache=True, nogil=True)
def _search(row, v, right):
    lo, hi = 0, row.shape[0]
    while lo < hi:  # NaN sorts last, as in NumPy
        mid = (lo + hi) // 2
        m = row[mid]
        if right:  # not (v < m) in NumPy's order
            go = not (v < m or (m != m and v == v))
        else:  # m < v in NumPy's order
            go = m < v or (v != v and m == m)
        if go:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def searchsorted(a, v, right):
    n, m = a.shape[-1], v.shape[-1]
    out = np.empty(v.shape, np.int64)
    if m == 0 or v.size == 0:
        return out
    rows = v.size // m
    av = a.reshape((rows, n))
    vv = v.reshape((rows, m))
    res = out.reshape((rows, m))
    for r in range(rows):
        for j in range(m):
            res[r, j] = _search(av[r], vv[r, j], right)
    return out


@numba.njit(cache=True, nogil=True)
def linrec(a, b, reverse):
    n = b.shape[-1]
    out = np.empty(b.shape, b.dtype)
    if n == 0 or b.size == 0:
        return out
    rows = b.size // n
    av, bv, zv = a.reshape((rows, n)), b.reshape((rows, n)), out.reshape((rows, n))
    for r in range(rows):
        prev = bv[r, 0] * 0
        for k in range(n):
            i = n - 1 - k if reverse else k
            prev = av[r, i] * prev + bv[r, i]
            zv[r, i] = prev
    return out


@numba.njit(cache=True, nogil=True)
def cumarg(x, op):
    n = x.shape[-1]
    out = np.empty(x.shape, np.int64)
    if n == 0 or x.size == 0:
        return out
    rows = x.size // n
    xv, res = x.reshape((rows, n)), out.reshape((rows, n))
    want_max = op == "max" or op == "fmax"
    propagate = op == "max" or op == "min"
    for r in range(rows):
        best = 0
        cur = xv[r, 0]
        res[r, 0] = 0
        for i in range(1, n):
            v = xv[r, i]
            better = v > cur if want_max else v < cur
            if propagate:  # NaN wins and stays
                better = (better and cur == cur) or (v != v and cur == cur)
            else:  # NaN loses unless everything so far was NaN
                better = better or (cur != cur and v == v)
            if better:
                best, cur = i, v
            res[r, i] = best
    return out
