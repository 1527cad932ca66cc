"""np.linalg's norms (every ord, axis forms, keepdims), cond and matrix_rank on traced
arrays: sums and maxima of |x|, and singular values (the svd primitive) for the
matrix 2-norm, -2 and nuclear norms."""

from __future__ import annotations

import numpy as np

from ..builder import bind
from ..prims import decompositions as dec
from .common import _fail, _lift, aval_of, normalize_axes
from .linalg_numpy import inv, linalg_dtype, matrices, svd_parts
from .ufuncs import astype


def _max0(y, axis, keepdims=False):
    """The largest of values >= 0 along `axis`, 0 where there are none (NumPy's
    max(..., initial=0): the norm of an empty vector or matrix is 0)."""
    shape = aval_of(y).shape
    if all(shape[a] for a in ((axis,) if isinstance(axis, int) else axis)):
        return np.max(y, axis=axis, keepdims=keepdims)
    return np.zeros_like(np.sum(y, axis=axis, keepdims=keepdims))


def _vector_norm(x, ord, axis, keepdims):
    ax = np.abs(x)
    if ord is None or ord == 2:
        return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))
    if isinstance(ord, str):
        _fail(ValueError, f"np.linalg.norm: invalid norm order {ord!r} for vectors")
    if ord == np.inf:
        return _max0(ax, axis, keepdims)
    if ord == -np.inf:
        return np.min(ax, axis=axis, keepdims=keepdims)
    if ord == 0:  # the number of nonzero entries
        return np.sum(astype(x != 0, aval_of(x).dtype), axis=axis, keepdims=keepdims)
    if ord == 1:
        return np.sum(ax, axis=axis, keepdims=keepdims)
    p = aval_of(x).dtype.type(ord)
    return np.sum(ax**p, axis=axis, keepdims=keepdims) ** (1 / p)


def _svd_norm(x, row, col, reduce):
    s = bind(dec.svd_p, astype(np.moveaxis(x, (row, col), (-2, -1)), linalg_dtype("np.linalg.norm", x)))[1]
    return reduce(s, axis=-1)


def _matrix_norm(x, ord, row, col):
    ax = np.abs(x)
    if ord is None or ord in ("fro", "f"):
        return np.sqrt(np.sum(x * x, axis=(row, col)))
    if ord == "nuc":
        return _svd_norm(x, row, col, np.sum)
    if ord in (2, -2):
        return _svd_norm(x, row, col, _max0 if ord == 2 else np.min)
    if ord in (1, -1):  # the largest (smallest) column sum
        red = _max0 if ord == 1 else np.min
        return red(np.sum(ax, axis=row), axis=col - (col > row))
    if ord in (np.inf, -np.inf):  # the largest (smallest) row sum
        red = _max0 if ord == np.inf else np.min
        return red(np.sum(ax, axis=col), axis=row - (row > col))
    _fail(ValueError, f"np.linalg.norm: invalid norm order {ord!r} for matrices")


def norm(x, ord=None, axis=None, keepdims=False):
    x = _lift(x)
    a = aval_of(x)
    if a.dtype.kind != "f":  # NumPy computes the norm of integers in float64
        x = astype(x, np.float64)
    nd = a.ndim
    if axis is None:
        if ord is None or (ord == 2 and nd == 1) or (ord in ("f", "fro") and nd == 2):
            return np.sqrt(np.sum(x * x, axis=None, keepdims=keepdims))
        if nd not in (1, 2):
            _fail(ValueError, f"np.linalg.norm: improper number of dimensions to norm ({a} with ord={ord!r})")
        axis = tuple(range(nd))
    if not isinstance(axis, tuple):
        if not isinstance(axis, (int, np.integer)):
            _fail(
                TypeError,
                f"np.linalg.norm: 'axis' must be None, an integer or a tuple of integers, got {axis!r}",
            )
    axes = axis if isinstance(axis, tuple) else (int(axis),)
    if len(axes) == 1:
        return _vector_norm(x, ord, normalize_axes(axes, nd, "np.linalg.norm"), keepdims)
    if len(axes) != 2:
        _fail(ValueError, f"np.linalg.norm: improper number of dimensions to norm (axis={axis!r})")
    for ax_ in axes:
        normalize_axes(ax_, nd, "np.linalg.norm")
    row, col = (int(ax_) % nd for ax_ in axes)
    if row == col:
        _fail(ValueError, f"np.linalg.norm: duplicate axes given (axis={axis!r})")
    r = _matrix_norm(x, ord, row, col)
    if keepdims:
        r = np.expand_dims(r, (row, col))
    return r


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    x = _lift(x)
    if axis is None:
        r = norm(np.reshape(x, (-1,)), ord=ord)
        return np.reshape(r, (1,) * aval_of(x).ndim) if keepdims else r
    if isinstance(axis, tuple) and len(axis) > 1:  # several axes: one vector each
        nd = aval_of(x).ndim
        axes = normalize_axes(axis, nd, "np.linalg.vector_norm")
        rest = [i for i in range(nd) if i not in axes]
        y = np.transpose(x, rest + list(axes))
        y = np.reshape(y, tuple(aval_of(y).shape[: len(rest)]) + (-1,))
        r = norm(y, ord=ord, axis=-1)
        return np.expand_dims(r, axes) if keepdims else r
    return norm(x, ord=ord, axis=axis, keepdims=keepdims)


def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


def cond(x, p=None):
    (x,) = matrices("np.linalg.cond", x, square=p not in (None, 2, -2))
    if p in (None, 2, -2):
        s = bind(dec.svd_p, x)[1]
        return np.max(s, axis=-1) / np.min(s, axis=-1) if p != -2 else np.min(s, axis=-1) / np.max(s, axis=-1)
    return norm(x, p, axis=(-2, -1)) * norm(inv(x), p, axis=(-2, -1))


def matrix_rank(A, tol=None, hermitian=False, *, rtol=None):
    a = aval_of(A)
    if a.ndim < 2:  # as NumPy: 1 unless every entry is 0
        return astype(np.any(np.not_equal(A, 0)), np.int64)
    (x,) = matrices("np.linalg.matrix_rank", A, square=bool(hermitian))
    s = svd_parts(x, hermitian)[1]
    if tol is None:
        rtol = max(a.shape[-2:]) * np.finfo(aval_of(x).dtype).eps if rtol is None else rtol
        tol = _max0(s, -1) * rtol
    return np.sum(s > np.expand_dims(tol, -1), axis=-1)


FUNCTIONS: dict = {
    np.linalg.norm: norm,
    np.linalg.vector_norm: vector_norm,
    np.linalg.matrix_norm: matrix_norm,
    np.linalg.cond: cond,
    np.linalg.matrix_rank: matrix_rank,
}
