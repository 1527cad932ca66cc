"""Cumulative products and running extremes: np.cumprod (and np.multiply.accumulate),
np.maximum/minimum/fmax/fmin.accumulate, as the `linrec` and `cumarg` primitives."""

from __future__ import annotations

import numpy as np

from ..builder import bind
from ..prims import cumulative as cu
from .common import _fail, _lift, _no_out, aval_of, normalize_axes, strong, traced
from .reductions import _acc_dtype


def _along_last(name: str, x, axis):
    """x (raveled for axis=None) with `axis` last, and where to put it back."""
    x = strong(_lift(x))
    if axis is None:
        x, axis = np.ravel(x), 0
    if aval_of(x).ndim == 0:
        _fail(np.exceptions.AxisError, f"{name}: axis {axis} is out of bounds for array of dimension 0")
    (ax,) = normalize_axes(axis, aval_of(x).ndim, name)
    return np.moveaxis(x, ax, -1), ax


def cumprod(a, axis=None, dtype=None, out=None):
    _no_out("np.cumprod", out)
    if not traced(a):
        return np.cumprod(a, axis=axis, dtype=dtype)
    x, ax = _along_last("np.cumprod", a, axis)
    x = x.astype(dtype if dtype is not None else _acc_dtype("prod", aval_of(x).dtype))
    if aval_of(x).shape[-1] == 0:
        return np.moveaxis(x, -1, ax)
    # z[i] = x[i] z[i-1] + b[i], b = [x0, 0, 0, ...]: products without a division (exact at zeros)
    b = np.concatenate([x[..., :1], np.zeros_like(x[..., 1:])], axis=-1)
    return np.moveaxis(bind(cu.linrec_p, x, b, reverse=False), -1, ax)


def _accumulate(op: str, ufunc_name: str):
    name = f"np.{ufunc_name}.accumulate"

    def accumulate(array, axis=0, dtype=None, out=None):
        _no_out(name, out)
        if dtype is not None and np.dtype(dtype) != aval_of(array).dtype:
            _fail(NotImplementedError, f"{name}: dtype= is not supported")
        x, ax = _along_last(name, array, axis if axis is not None else 0)
        if aval_of(x).shape[-1] == 0:
            return np.moveaxis(x, -1, ax)
        # the value at the running extreme's index: its gradient goes to that element
        idx = bind(cu.cumarg_p, x, op=op)
        return np.moveaxis(np.take_along_axis(x, idx, axis=-1), -1, ax)

    return accumulate


def _multiply_accumulate(array, axis=0, dtype=None, out=None):
    return cumprod(array, axis=0 if axis is None else axis, dtype=dtype, out=out)


# (ufunc, method) -> implementation, for ufunc methods the core front end lacks
UFUNC_METHODS = {
    (np.maximum, "accumulate"): _accumulate("max", "maximum"),
    (np.minimum, "accumulate"): _accumulate("min", "minimum"),
    (np.fmax, "accumulate"): _accumulate("fmax", "fmax"),
    (np.fmin, "accumulate"): _accumulate("fmin", "fmin"),
    (np.multiply, "accumulate"): _multiply_accumulate,
}

FUNCTIONS = {np.cumprod: cumprod}
