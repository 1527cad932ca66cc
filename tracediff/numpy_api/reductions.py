"""Reductions: sum, prod, max, min, mean, var, std, argmax/argmin, cumsum, norm, round."""

from __future__ import annotations

import builtins
import functools

import numpy as np

from ..builder import bind
from ..prims import reduce as rd
from .common import (
    _fail,
    _lift,
    _no_out,
    aval_of,
    normalize_axes,
    traced,
)
from .shapes import (
    ravel,
    reshape,
)
from .ufuncs import (
    astype,
)


def _keep(x, axes, keepdims, in_shape):
    if not keepdims:
        return x
    return reshape(x, tuple(1 if i in axes else d for i, d in enumerate(in_shape)))


@functools.lru_cache(maxsize=256)
def _acc_dtype(name: str, dtype: np.dtype) -> np.dtype:
    return getattr(np, name)(np.zeros(1, dtype)).dtype


def _reduce(name, prim, x, axis, keepdims, dtype=None, where=None, initial=None, out=None):
    _no_out(f"np.{name}", out)
    if where is not None and where is not True:
        _fail(NotImplementedError, f"np.{name}(..., where=...) is not supported; use np.where")
    if initial is not None:
        _fail(NotImplementedError, f"np.{name}(..., initial=...) is not supported")
    if not traced(x):
        return (
            getattr(np, name)(x, axis=axis, keepdims=keepdims, dtype=dtype)
            if dtype
            else getattr(np, name)(x, axis=axis, keepdims=keepdims)
        )
    axes = normalize_axes(axis, x.ndim, f"np.{name}")
    if dtype is not None:
        x = astype(x, dtype)
    elif name in ("sum", "prod"):
        x = astype(x, _acc_dtype(name, x.dtype))
    if prim in (rd.reduce_max_p, rd.reduce_min_p) and any(x.shape[a] == 0 for a in axes):
        _fail(ValueError, f"np.{name}: zero-size array {x.aval} has no identity")
    out = bind(prim, x, axes=axes) if axes else x
    return _keep(out, axes, keepdims, x.shape)


def sum(x, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    return _reduce("sum", rd.reduce_sum_p, x, axis, keepdims, dtype, where, initial, out)


def prod(x, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    return _reduce("prod", rd.reduce_prod_p, x, axis, keepdims, dtype, where, initial, out)


def max(x, axis=None, out=None, keepdims=False, initial=None, where=None):
    return _reduce("max", rd.reduce_max_p, x, axis, keepdims, None, where, initial, out)


def min(x, axis=None, out=None, keepdims=False, initial=None, where=None):
    return _reduce("min", rd.reduce_min_p, x, axis, keepdims, None, where, initial, out)


def _count(x, axis):
    axes = normalize_axes(axis, aval_of(x).ndim, "mean")
    return int(np.prod([aval_of(x).shape[a] for a in axes], dtype=np.int64))


def _float_for_mean(x, dtype):
    if dtype is not None:
        return astype(x, dtype)
    if aval_of(x).dtype.kind in "biu":
        return astype(x, np.float64)
    return x


def mean(x, axis=None, dtype=None, out=None, keepdims=False, where=None):
    _no_out("np.mean", out)
    if not traced(x):
        return np.mean(x, axis=axis, dtype=dtype, keepdims=keepdims)
    x = _float_for_mean(x, dtype)
    m = sum(x, axis=axis, keepdims=keepdims, where=where) / _count(x, axis)
    # an integer dtype= sums in it and casts the quotient back, as NumPy does
    return astype(m, dtype) if dtype is not None and np.dtype(dtype).kind in "biu" else m


def var(
    x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None
):
    _no_out("np.var", out)
    if where is not None and where is not True:
        _fail(NotImplementedError, "np.var(..., where=...) is not supported; use np.where")
    if correction is not None:
        if ddof != 0:
            _fail(ValueError, "np.var: ddof and correction can't be provided simultaneously")
        ddof = correction
    if not traced(x) and not traced(mean):
        return np.var(x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims, mean=mean)
    x = _float_for_mean(_lift(x), dtype)
    n = _count(x, axis)
    if mean is None:
        mean = globals()["mean"](x, axis=axis, keepdims=True)
    else:  # NumPy's precomputed mean: the shape of a keepdims=True mean
        want = tuple(
            1 if i in normalize_axes(axis, aval_of(x).ndim, "np.var") else d
            for i, d in enumerate(aval_of(x).shape)
        )
        if aval_of(mean).shape != want:
            _fail(
                ValueError,
                f"np.var: mean= must have the shape {want} of a keepdims=True mean, got {aval_of(mean)}",
            )
    d = x - mean
    sq = d * d if aval_of(d).dtype.kind != "c" else np.real(d * np.conjugate(d))  # |d|^2, as NumPy
    return sum(sq, axis=axis, keepdims=keepdims) / float(builtins.max(n - ddof, 0))  # as NumPy: inf/nan


def std(
    x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None
):
    _no_out("np.std", out)
    if not traced(x) and not traced(mean):
        return np.std(
            x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims, mean=mean, correction=correction
        )
    return np.sqrt(var(x, axis, dtype, None, ddof, keepdims, where=where, mean=mean, correction=correction))


def _arg(name, prim, x, axis, keepdims, out):
    _no_out(f"np.{name}", out)
    if not traced(x):
        return getattr(np, name)(x, axis=axis, keepdims=keepdims)
    in_shape = x.shape
    n = x.size if axis is None else in_shape[normalize_axes(axis, x.ndim, f"np.{name}")[0]]
    if n == 0:
        _fail(ValueError, f"np.{name}: attempt to get {name} of an empty sequence ({x.aval}, axis={axis})")
    if axis is None:
        out = bind(prim, ravel(x), axis=0)
        return reshape(out, (1,) * len(in_shape)) if keepdims else out
    (ax,) = normalize_axes(axis, x.ndim, f"np.{name}")
    out = bind(prim, x, axis=ax)
    return _keep(out, (ax,), keepdims, in_shape)


def argmax(x, axis=None, out=None, *, keepdims=False):
    return _arg("argmax", rd.argmax_p, x, axis, keepdims, out)


def argmin(x, axis=None, out=None, *, keepdims=False):
    return _arg("argmin", rd.argmin_p, x, axis, keepdims, out)


def cumsum(x, axis=None, dtype=None, out=None):
    _no_out("np.cumsum", out)
    if not traced(x):
        return np.cumsum(x, axis=axis, dtype=dtype)
    if axis is None:
        x, axis = ravel(x), 0
    (ax,) = normalize_axes(axis, x.ndim, "np.cumsum")
    x = astype(x, dtype if dtype is not None else _acc_dtype("sum", x.dtype))
    return bind(rd.cumsum_p, x, axis=ax)


def norm(x, ord=None, axis=None, keepdims=False):
    if ord not in (None, 2, "fro") or (ord == 2 and axis is None and aval_of(x).ndim > 1):
        _fail(
            NotImplementedError,
            f"np.linalg.norm: ord={ord!r} is not supported (only the 2-norm/Frobenius norm)",
        )
    if aval_of(x).dtype.kind != "f":  # NumPy computes the norm of integers in float64
        x = astype(_lift(x), np.float64)
    return np.sqrt(sum(x * x, axis=axis, keepdims=keepdims))


def round_(x, decimals=0, out=None):
    _no_out("np.round", out)
    dt = aval_of(x).dtype
    if dt == np.dtype(bool):  # NumPy rounds booleans in float16, and only to integers
        if decimals != 0:
            _fail(TypeError, "np.round: a boolean array can only be rounded to decimals=0 (as in NumPy)")
        x = astype(_lift(x), np.float16)
    elif dt.kind in "iu":
        if decimals >= 0:
            return x
        # NumPy divides in float64, rounds half to even, multiplies back and casts
        f = 10.0 ** (-decimals)
        return astype(np.rint(astype(_lift(x), np.float64) / f) * f, dt)
    if decimals == 0:
        return np.rint(x)
    if decimals > 0:
        s = 10.0**decimals
        return np.rint(x * s) / s
    s = 10.0 ** (-decimals)
    return np.rint(x / s) * s
