"""Sorting and searching on traced arrays: sort, argsort, partition, searchsorted,
digitize, interp, and the order statistics (median, percentile, quantile)."""

from __future__ import annotations

import numpy as np

from ..builder import bind
from ..prims import sorting as so
from .common import _fail, _lift, aval_of, normalize_axes, result_dtype, strong, traced
from .indexing import take


def _check_kind(name: str, kind, order) -> None:
    if order is not None:
        _fail(NotImplementedError, f"np.{name}: order= (structured arrays) is not supported")
    if kind not in (None, "quicksort", "mergesort", "heapsort", "stable"):
        _fail(ValueError, f"np.{name}: unknown kind {kind!r}")


def _last(x, axis: int, name: str):
    """x with `axis` moved last, and that axis (normalized)."""
    (ax,) = normalize_axes(axis, aval_of(x).ndim, f"np.{name}")
    return np.moveaxis(x, ax, -1), ax


def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    _check_kind("argsort", kind, order)
    if not traced(a):
        return np.argsort(a, axis=axis, kind=kind)
    if axis is None:
        a, axis = np.ravel(a), 0
    if a.ndim == 0:
        _fail(np.exceptions.AxisError, f"np.argsort: axis {axis} is out of bounds for array of dimension 0")
    x, ax = _last(a, axis, "argsort")
    return np.moveaxis(bind(so.argsort_p, x), -1, ax)  # ties in stable order


def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    _check_kind("sort", kind, order)
    if not traced(a):
        return np.sort(a, axis=axis, kind=kind)
    if axis is None:
        a, axis = np.ravel(a), 0
    if a.ndim == 0:
        _fail(np.exceptions.AxisError, f"np.sort: axis {axis} is out of bounds for array of dimension 0")
    x, ax = _last(a, axis, "sort")
    # a gather at the sorting permutation: the gradient scatters back to where each value came from
    s = np.take_along_axis(x, bind(so.argsort_p, x), axis=-1)
    return np.moveaxis(s, -1, ax)


def _check_kth(name: str, a, kth, axis) -> None:
    n = aval_of(a).size if axis is None else aval_of(a).shape[normalize_axes(axis, aval_of(a).ndim, name)[0]]
    for k in np.atleast_1d(kth):
        if not -n <= int(k) < n:
            _fail(ValueError, f"np.{name}: kth(={int(k)}) out of bounds ({n})")


def partition(a, kth, axis=-1, kind="introselect", order=None):
    """A full sort: a valid partition for every kth (NumPy leaves the order within each side unspecified)."""
    _check_kth("partition", a, kth, axis)
    return sort(a, axis=axis, order=order)


def argpartition(a, kth, axis=-1, kind="introselect", order=None):
    _check_kth("argpartition", a, kth, axis)
    return argsort(a, axis=axis, order=order)


def searchsorted(a, v, side="left", sorter=None):
    if not traced(a) and not traced(v):
        return np.searchsorted(a, v, side=side, sorter=sorter)
    if side not in ("left", "right"):
        _fail(ValueError, f"np.searchsorted: side must be 'left' or 'right', got {side!r}")
    a = _lift(a)
    if aval_of(a).ndim != 1:
        _fail(ValueError, f"np.searchsorted: a must be one-dimensional, got {aval_of(a)}")
    if sorter is not None:
        a = np.take(a, sorter)
    v = _lift(v)
    dt = result_dtype(aval_of(a), aval_of(v))
    shape = aval_of(v).shape
    a, v = (x.astype(dt) if traced(x) else np.asarray(x, dt) for x in (a, v))
    # one row of knots, the values flattened into one row
    out = bind(so.searchsorted_p, np.reshape(a, (1, -1)), np.reshape(v, (1, -1)), side=side)
    return np.reshape(out, shape)


def digitize(x, bins, right=False):
    b = _lift(bins)
    if aval_of(b).ndim != 1:
        _fail(ValueError, f"np.digitize: bins must be one-dimensional, got {aval_of(b)}")
    if not traced(b):  # NumPy's rule: bins monotonic, increasing or decreasing
        d = np.diff(b)
        if not (np.all(d >= 0) or np.all(d <= 0)):
            _fail(ValueError, "np.digitize: bins must be monotonically increasing or decreasing")
        if d.size and np.all(d <= 0) and not np.all(d == 0):  # decreasing: search the reversed bins
            n = b.shape[0]
            return n - searchsorted(b[::-1], x, side="left" if right else "right")
    return searchsorted(b, x, side="left" if right else "right")


def interp(x, xp, fp, left=None, right=None, period=None):
    """Piecewise-linear interpolation; differentiable in x, xp and fp (NumPy's values,
    including `left`/`right` beyond the ends)."""
    if period is not None:
        _fail(NotImplementedError, "np.interp: period= is not supported")
    xp, fp = _lift(xp), _lift(fp)
    if aval_of(xp).ndim != 1 or aval_of(fp).shape != aval_of(xp).shape or aval_of(xp).size == 0:
        _fail(
            ValueError,
            f"np.interp: xp and fp must be 1-D of equal nonzero length, got {aval_of(xp)}, {aval_of(fp)}",
        )
    dt = np.result_type(result_dtype(aval_of(x), aval_of(xp), aval_of(fp)), np.float64)
    x, xp, fp = (strong(v).astype(dt) if traced(v) else np.asarray(v, dt) for v in (x, _lift(xp), fp))
    n = aval_of(xp).shape[0]
    if n == 1:
        y = np.broadcast_to(fp[0], np.shape(x)) + np.zeros_like(x)
    else:
        j = np.clip(np.searchsorted(xp, x, side="right"), 1, n - 1)
        x0, x1, f0, f1 = take(xp, j - 1), take(xp, j), take(fp, j - 1), take(fp, j)
        y = f0 + (x - x0) * ((f1 - f0) / (x1 - x0))
        y = np.where(x == x1, f1, y)  # a point on a knot: its value exactly (as NumPy)
    lo = fp[0] if left is None else left
    hi = fp[-1] if right is None else right
    return np.where(x < xp[0], lo, np.where(x > xp[-1], hi, y)).astype(dt)


_METHODS = ("linear", "lower", "higher", "nearest", "midpoint")


def quantile(
    a,
    q,
    axis=None,
    out=None,
    overwrite_input=False,
    method="linear",
    keepdims=False,
    *,
    weights=None,
    interpolation=None,
):
    if out is not None:
        _fail(NotImplementedError, "np.quantile: out= is not supported")
    if weights is not None:
        _fail(NotImplementedError, "np.quantile: weights= is not supported")
    method = interpolation or method
    if method not in _METHODS:
        _fail(NotImplementedError, f"np.quantile: method={method!r} is not supported (only {_METHODS})")
    if traced(q):
        _fail(NotImplementedError, "np.quantile: q must be static (a Python or NumPy value)")
    q = np.asarray(q, np.float64)
    if np.any((q < 0) | (q > 1)) or np.any(np.isnan(q)):
        _fail(ValueError, "np.quantile: quantiles must be in the range [0, 1]")
    a = _lift(a)
    if aval_of(a).dtype.kind not in "f":
        a = a.astype(np.float64)
    nd = aval_of(a).ndim
    axes = normalize_axes(axis, nd, "np.quantile")
    if not axes:
        return a if q.ndim == 0 else np.broadcast_to(a, q.shape + aval_of(a).shape) + 0
    # the reduced axes flattened last, then sorted
    rest = [i for i in range(nd) if i not in axes]
    x = np.transpose(a, rest + list(axes))
    x = np.reshape(x, tuple(aval_of(a).shape[i] for i in rest) + (-1,))
    n = aval_of(x).shape[-1]
    if n == 0:
        _fail(IndexError, f"np.quantile: cannot take a quantile of an empty axis ({aval_of(a)}, axis={axis})")
    s = np.sort(x, axis=-1)
    pos = q * (n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    if method == "lower":
        r = s[..., lo]
    elif method == "higher":
        r = s[..., np.ceil(pos).astype(np.int64)]
    elif method == "nearest":
        r = s[..., np.around(pos).astype(np.int64)]  # ties to even, as NumPy
    elif method == "midpoint":
        r = np.where(frac == 0, s[..., lo], (s[..., lo] + s[..., hi]) * 0.5)
    else:
        # NumPy's lerp: the formula from the nearer end (exact at both ends)
        f = frac.astype(aval_of(s).dtype)
        a0, a1 = s[..., lo], s[..., hi]
        r = np.where(f >= 0.5, a1 - (a1 - a0) * (1 - f), a0 + (a1 - a0) * f)
    if aval_of(s).dtype.kind == "f":  # a NaN in the slice (sorted last) makes every quantile NaN, as NumPy
        has_nan = np.isnan(s[..., -1:])
        r = np.where(np.reshape(has_nan, aval_of(has_nan).shape[:-1] + (1,) * q.ndim), np.nan, r)
    if q.ndim:  # the quantiles' axes first, as NumPy
        r = np.moveaxis(r, tuple(range(-q.ndim, 0)), tuple(range(q.ndim)))
    if keepdims:
        shp = tuple(1 if i in axes else d for i, d in enumerate(aval_of(a).shape))
        r = np.reshape(r, q.shape + shp)
    return r


def percentile(
    a,
    q,
    axis=None,
    out=None,
    overwrite_input=False,
    method="linear",
    keepdims=False,
    *,
    weights=None,
    interpolation=None,
):
    if traced(q):
        _fail(NotImplementedError, "np.percentile: q must be static (a Python or NumPy value)")
    q = np.asarray(q, np.float64)
    if np.any((q < 0) | (q > 100)):
        _fail(ValueError, "np.percentile: percentiles must be in the range [0, 100]")
    return quantile(
        a, q / 100, axis, out, overwrite_input, method, keepdims, weights=weights, interpolation=interpolation
    )


def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    return quantile(a, 0.5, axis, out, overwrite_input, "linear", keepdims)


FUNCTIONS = {
    np.sort: sort,
    np.argsort: argsort,
    np.partition: partition,
    np.argpartition: argpartition,
    np.searchsorted: searchsorted,
    np.digitize: digitize,
    np.interp: interp,
    np.quantile: quantile,
    np.percentile: percentile,
    np.median: median,
}
