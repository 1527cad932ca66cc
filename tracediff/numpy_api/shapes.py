"""Shape functions: reshape, transpose and moves of axes, broadcasting, joining, flips,
tiles, differences, splits.
"""

from __future__ import annotations

import builtins

import numpy as np

from ..builder import bind, innermost_builder
from ..prims import shape as sh
from ..tracer import Tracer
from .common import (
    _emit,
    _fail,
    _fmt,
    _lift,
    _no_options,
    _no_out,
    aval_of,
    normalize_axes,
    prepare,
    result_dtype,
    traced,
)


def reshape(x, shape, order="C", newshape=None, copy=None):
    if newshape is not None:
        shape = newshape
    if order != "C":
        _fail(NotImplementedError, f"reshape: order={order!r} is not supported")
    if not traced(x):
        return np.reshape(x, shape)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        _fail(ValueError, f"reshape: can only specify one unknown dimension, got {shape}")
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
        if known == 0 or x.size % known:
            _fail(ValueError, f"reshape: cannot reshape {x.aval} into shape {shape}")
        shape = tuple(x.size // known if s == -1 else s for s in shape)
    if shape == x.shape:
        return x
    return bind(sh.reshape_p, x, shape=shape)


def ravel(x, order="C"):
    return reshape(x, (-1,), order=order)


def transpose(x, axes=None):
    if not traced(x):
        return np.transpose(x, axes)
    if axes is None:
        perm = tuple(reversed(range(x.ndim)))
    else:
        perm = tuple(int(a) % x.ndim if x.ndim else 0 for a in axes)
        if sorted(perm) != list(range(x.ndim)):
            _fail(ValueError, f"transpose: axes {tuple(axes)} don't match {x.aval}")
    if perm == tuple(range(x.ndim)):
        return x
    return bind(sh.transpose_p, x, perm=perm)


def swapaxes(x, a, b):
    nd = aval_of(x).ndim
    (a,) = normalize_axes(a, nd, "np.swapaxes")
    (b,) = normalize_axes(b, nd, "np.swapaxes")
    perm = list(range(nd))
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(x, perm)


def moveaxis(x, source, destination):
    nd = aval_of(x).ndim
    src = [normalize_axes(s, nd, "np.moveaxis")[0] for s in np.atleast_1d(source)]
    dst = [normalize_axes(d, nd, "np.moveaxis")[0] for d in np.atleast_1d(destination)]
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, order)


def expand_dims(x, axis):
    a = aval_of(x)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    nd = a.ndim + len(axes)
    axes = normalize_axes(axes, nd, "np.expand_dims")
    it = iter(a.shape)
    return reshape(x, tuple(1 if i in axes else next(it) for i in range(nd)))


def squeeze(x, axis=None):
    a = aval_of(x)
    if axis is None:
        axes = tuple(i for i, d in enumerate(a.shape) if d == 1)
    else:
        axes = normalize_axes(axis, a.ndim, "np.squeeze")
        if any(a.shape[i] != 1 for i in axes):
            _fail(
                ValueError,
                f"np.squeeze: cannot select an axis to squeeze out which has size not equal to one ({a})",
            )
    return reshape(x, tuple(d for i, d in enumerate(a.shape) if i not in axes))


def broadcast_to(x, shape, subok=False):
    if not traced(x):
        return np.broadcast_to(x, shape)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if shape == x.shape:
        return x
    try:
        np.broadcast_shapes(x.shape, shape)
        if len(shape) < x.ndim or np.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        _fail(ValueError, f"np.broadcast_to: cannot broadcast {x.aval} to shape {shape}")
    return bind(sh.broadcast_p, x, shape=shape)


def atleast_1d(x):
    return reshape(x, (1,)) if aval_of(x).ndim == 0 else x


def atleast_2d(x):
    a = aval_of(x)
    return reshape(x, (1,) * (2 - a.ndim) + a.shape) if a.ndim < 2 else x


def concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    _no_out("np.concatenate", out)
    _no_options("np.concatenate", {"casting": casting}, {"casting": "same_kind"})
    arrays = list(arrays)
    b = innermost_builder(arrays)
    if b is None:
        return np.concatenate(arrays, axis=axis, dtype=dtype)
    if axis is None:
        arrays, axis = [ravel(_lift(a)) for a in arrays], 0
    avals = [aval_of(a) for a in arrays]
    if any(a.ndim == 0 for a in avals):
        _fail(ValueError, "np.concatenate: zero-dimensional arrays cannot be concatenated")
    if len({a.ndim for a in avals}) != 1:
        _fail(ValueError, f"np.concatenate: operands have different numbers of dimensions: {_fmt(avals)}")
    (ax,) = normalize_axes(axis, avals[0].ndim, "np.concatenate")
    dt = np.dtype(dtype) if dtype is not None else result_dtype(*avals)
    ins = [prepare(b, a, dt, av.shape) for a, av in zip(arrays, avals)]
    if len(ins) == 1:  # a new array, whatever the one part shares memory with
        r = ins[0]
        return Tracer(b, r.tvar) if isinstance(r, Tracer) else _emit(b, sh.reshape_p, r, shape=avals[0].shape)
    return _emit(b, sh.concatenate_p, *ins, axis=ax)


def stack(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    _no_out("np.stack", out)
    _no_options("np.stack", {"casting": casting}, {"casting": "same_kind"})
    arrays = list(arrays)
    shapes = {aval_of(a).shape for a in arrays}
    if len(shapes) != 1:
        _fail(
            ValueError,
            f"np.stack: all input arrays must have the same shape, got {_fmt(map(aval_of, arrays))}",
        )
    nd = aval_of(arrays[0]).ndim + 1
    (ax,) = normalize_axes(axis, nd, "np.stack")
    return concatenate([expand_dims(_lift(a), ax) for a in arrays], axis=ax, dtype=dtype)


def hstack(arrays, dtype=None, casting="same_kind"):
    _no_options("np.hstack", {"casting": casting}, {"casting": "same_kind"})
    arrays = [atleast_1d(_lift(a)) for a in arrays]
    return concatenate(arrays, axis=0 if aval_of(arrays[0]).ndim == 1 else 1, dtype=dtype)


def vstack(arrays, dtype=None, casting="same_kind"):
    _no_options("np.vstack", {"casting": casting}, {"casting": "same_kind"})
    return concatenate([atleast_2d(_lift(a)) for a in arrays], axis=0, dtype=dtype)


def _full_slice(n):
    return (0, n, 1)


def flip(x, axis=None):
    if not traced(x):
        return np.flip(x, axis)
    axes = normalize_axes(axis, x.ndim, "np.flip")
    if not axes:  # a 0-d value: nothing to flip
        return x
    spec = tuple((n - 1, None, -1) if i in axes else _full_slice(n) for i, n in enumerate(x.shape))
    return bind(sh.slice_p, x, spec=spec)


def tile(x, reps):
    a = aval_of(x)
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    nd = builtins.max(a.ndim, len(reps))
    shape = (1,) * (nd - a.ndim) + a.shape
    reps = (1,) * (nd - len(reps)) + reps
    inter = tuple(v for d in shape for v in (1, d))
    big = tuple(v for r, d in zip(reps, shape) for v in (r, d))
    y = broadcast_to(reshape(x, inter), big)
    return reshape(y, tuple(r * d for r, d in zip(reps, shape)))


def diff(x, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    if n == 0:  # as NumPy: the array itself, before any prepend/append
        return x
    if n < 0:
        _fail(ValueError, f"np.diff: order must be non-negative but got {n!r}")
    if prepend is not np._NoValue or append is not np._NoValue:
        a = aval_of(x)
        (ax,) = normalize_axes(axis, a.ndim, "np.diff")
        parts = []
        for v in (prepend, x, append):
            if v is np._NoValue:
                continue
            if v is not x and aval_of(v).ndim == 0:  # a scalar: one slice along the axis
                v = broadcast_to(v, a.shape[:ax] + (1,) + a.shape[ax + 1 :])
            parts.append(v)
        x = concatenate(parts, axis=ax)
    for _ in range(n):
        nd = aval_of(x).ndim
        (ax,) = normalize_axes(axis, nd, "np.diff")
        hi = tuple(slice(1, None) if i == ax else slice(None) for i in range(nd))
        lo = tuple(slice(None, -1) if i == ax else slice(None) for i in range(nd))
        # booleans differ by not_equal, as in NumPy
        x = np.not_equal(x[hi], x[lo]) if aval_of(x).dtype == np.dtype(bool) else x[hi] - x[lo]
    return x


def split(x, indices_or_sections, axis=0):
    a = aval_of(x)
    (ax,) = normalize_axes(axis, a.ndim, "np.split")
    n = a.shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if n % k:
            _fail(ValueError, f"np.split: array split does not result in an equal division ({a}, {k})")
        bounds = [i * (n // k) for i in range(k + 1)]
    else:
        bounds = [0] + list(indices_or_sections) + [n]
    pre = (slice(None),) * ax
    return [x[pre + (slice(lo, hi),)] for lo, hi in zip(bounds[:-1], bounds[1:])]


def shape(x):
    return aval_of(x).shape


def ndim(x):
    return aval_of(x).ndim


def size(x, axis=None):
    a = aval_of(x)
    return a.size if axis is None else a.shape[axis]
