"""NumPy functions written with the others: splits along fixed axes, append,
rollaxis, sinc, gradient."""

from __future__ import annotations

import math

import numpy as np

from .common import _fail, _lift, aval_of, normalize_axes, strong
from .shapes import concatenate, moveaxis, ravel, split


def _split_on(name: str, axis: int, min_ndim: int):
    def fn(ary, indices_or_sections):
        a = aval_of(ary)
        if a.ndim < min_ndim:
            _fail(ValueError, f"np.{name} only works on arrays of {min_ndim} or more dimensions, got {a}")
        ax = 1 if (axis == 1 and a.ndim > 1) else (0 if axis == 1 else axis)
        return split(ary, indices_or_sections, axis=ax)

    fn.__name__ = name
    return fn


def append(arr, values, axis=None):
    if axis is None:
        return concatenate([ravel(_lift(arr)), ravel(_lift(values))], axis=0)
    return concatenate([arr, values], axis=axis)


def rollaxis(a, axis, start=0):
    nd = aval_of(a).ndim
    (ax,) = normalize_axes(axis, nd, "np.rollaxis")
    if not -nd <= start <= nd:
        _fail(ValueError, f"np.rollaxis: start {start} out of range for {aval_of(a)}")
    start = start % (nd + 1) if start < 0 else start
    if ax < start:
        start -= 1
    return moveaxis(a, ax, start) if ax != start else a


def sinc(x):
    """sin(y) / y with y = pi x; near 0 its Taylor polynomial 1 - y^2/6 + y^4/120
    (exact there to rounding, and so are its derivatives: sinc''(0) = -pi^2/3);
    the division sees y = 1 there (no 0/0 in the derivative of the untaken side)."""
    x = strong(_lift(x))
    if aval_of(x).dtype.kind not in "fc":
        x = x * 1.0
    y = x * math.pi
    near0 = np.abs(y) < 1e-3
    safe = np.where(near0, 1.0, y)
    y2 = y * y
    return np.where(near0, 1.0 - y2 / 6.0 + y2 * y2 / 120.0, np.sin(safe) / safe)


def gradient(f, *varargs, axis=None, edge_order=1):
    """Central differences inside, one-sided at the edges (uniform spacing)."""
    f = strong(_lift(f))
    a = aval_of(f)
    axes = list(range(a.ndim)) if axis is None else list(normalize_axes(axis, a.ndim, "np.gradient"))
    if len(varargs) == 0:
        spacing = [1.0] * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        spacing = [varargs[0]] * len(axes)
    elif len(varargs) == len(axes) and all(np.ndim(v) == 0 for v in varargs):
        spacing = list(varargs)
    else:
        _fail(NotImplementedError, "np.gradient: only scalar (uniform) spacings are supported")
    if edge_order not in (1, 2):
        _fail(ValueError, "np.gradient: edge_order must be 1 or 2")
    if a.dtype.kind not in "fc":
        f = f * 1.0
    out = []
    for ax, h in zip(axes, spacing):
        n = a.shape[ax]
        if n < edge_order + 1:
            _fail(
                ValueError,
                f"np.gradient: shape of the array too small to calculate a numerical gradient ({a}, axis {ax})",
            )

        def sl(lo, hi, ax=ax):
            idx = [slice(None)] * a.ndim
            idx[ax] = slice(lo, hi)
            return f[tuple(idx)]

        inner = (sl(2, None) - sl(0, n - 2)) / (2.0 * h)
        if edge_order == 1:
            first = (sl(1, 2) - sl(0, 1)) / h
            last = (sl(n - 1, n) - sl(n - 2, n - 1)) / h
        else:
            first = (-1.5 * sl(0, 1) + 2.0 * sl(1, 2) - 0.5 * sl(2, 3)) / h
            last = (0.5 * sl(n - 3, n - 2) - 2.0 * sl(n - 2, n - 1) + 1.5 * sl(n - 1, n)) / h
        out.append(concatenate([first, inner, last], axis=ax))
    return out[0] if len(out) == 1 else tuple(out)


def complex_norm(norm):
    """np.linalg.norm that also takes complex arrays: every norm but the matrix
    2-norms and the nuclear norm (singular values) is the norm of |x|."""

    def fn(x, ord=None, axis=None, keepdims=False):
        a = aval_of(x)
        if a.dtype.kind != "c":
            return norm(x, ord=ord, axis=axis, keepdims=keepdims)
        matrix = (isinstance(axis, tuple) and len(axis) == 2) or (
            axis is None and a.ndim == 2 and ord is not None
        )
        if matrix and ord in (2, -2, "nuc"):
            _fail(
                NotImplementedError, f"np.linalg.norm(ord={ord!r}) of a complex matrix {a} is not supported"
            )
        return norm(np.abs(x), ord=ord, axis=axis, keepdims=keepdims)

    fn.__name__ = "norm"
    return fn


FUNCTIONS = {
    np.hsplit: _split_on("hsplit", 1, 1),
    np.vsplit: _split_on("vsplit", 0, 2),
    np.dsplit: _split_on("dsplit", 2, 3),
    np.append: append,
    np.rollaxis: rollaxis,
    np.sinc: sinc,
    np.gradient: gradient,
}
VIEW_FUNCS = {np.rollaxis}
