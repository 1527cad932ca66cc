"""Indexing: basic and advanced getitem, take, take_along_axis, repeat, diagonal, trace
(every integer-array index becomes a gather on flat indices).
"""

from __future__ import annotations

import builtins

import numpy as np

from ..builder import bind
from ..prims import indexing as ix
from ..prims import shape as sh
from ..tracer import Tracer, TracerError
from .common import (
    _fail,
    _lift,
    _no_out,
    aval_of,
    normalize_axes,
    traced,
)
from .reductions import (
    sum,
)
from .shapes import (
    _full_slice,
    broadcast_to,
    expand_dims,
    moveaxis,
    ravel,
    reshape,
    transpose,
)
from .ufuncs import (
    _fill_like,
    astype,
)


def repeat(x, repeats, axis=None):
    if axis is None:
        x, axis = ravel(_lift(x)), 0
    a = aval_of(x)
    (ax,) = normalize_axes(axis, a.ndim, "np.repeat")
    if traced(repeats):
        _fail(TracerError, "np.repeat: traced repeats give a data-dependent shape")
    reps = np.asarray(repeats)
    if reps.size == 0:
        reps = reps.astype(np.int64)
    if reps.ndim == 0:
        r = int(reps)
        y = expand_dims(x, ax + 1)
        y = broadcast_to(y, a.shape[: ax + 1] + (r,) + a.shape[ax + 1 :])
        return reshape(y, a.shape[:ax] + (a.shape[ax] * r,) + a.shape[ax + 1 :])
    return take(x, np.repeat(np.arange(a.shape[ax]), reps), axis=ax)


def trace(x, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _no_out("np.trace", out)
    return sum(diagonal(x, offset, axis1, axis2), axis=-1, dtype=dtype)


def diagonal(x, offset=0, axis1=0, axis2=1):
    a = aval_of(x)
    a1, a2 = (normalize_axes(v, a.ndim, "np.diagonal")[0] for v in (axis1, axis2))
    y = moveaxis(_lift(x), (a1, a2), (-2, -1))
    n, m = aval_of(y).shape[-2:]
    rows = np.arange(builtins.max(0, -offset), n)
    rows = rows[rows + offset < m]
    flat = rows * m + rows + offset
    y = reshape(y, aval_of(y).shape[:-2] + (n * m,))
    return take(y, flat, axis=-1)


def _is_int_scalar(i):
    return isinstance(i, (int, np.integer)) and not isinstance(i, bool)


def _index_array(i):
    """An advanced index entry as an int array (NumPy constant or tracer), or None."""
    if traced(i):
        if i.dtype == np.dtype(bool):
            _fail(
                TracerError,
                f"boolean mask indexing with a traced mask {i.aval} gives a data-dependent "
                "shape; use np.where(mask, x, 0) or a mask built from constants",
            )
        if i.dtype.kind not in "iu":
            _fail(IndexError, f"arrays used as indices must be of integer type, got {i.aval}")
        return i
    if isinstance(i, (list, tuple, np.ndarray)):  # (a tuple inside the index is a sequence, as in NumPy)
        arr = np.asarray(i)
        if isinstance(i, (list, tuple)) and not arr.size:  # NumPy reads an empty list as integers
            arr = arr.astype(np.int64)
        if arr.dtype.kind not in "iub":
            _fail(IndexError, f"arrays used as indices must be of integer or boolean type, got {arr.dtype}")
        return arr
    return None


def _scalar_bool(i) -> bool:
    return isinstance(i, (bool, np.bool_)) or (
        type(i) is np.ndarray and i.ndim == 0 and i.dtype == np.dtype(bool)
    )


def _bool_scalar_index(x, idx):
    """x[..., True, ...]: NumPy's advanced index of one new axis, of length 1
    (True) or 0 (False); alone among slices, None and `...` it is a new axis."""
    k = [j for j, i in enumerate(idx) if _scalar_bool(i)]
    if len(k) > 1 or any(
        not (i is None or i is Ellipsis or isinstance(i, slice)) for i in idx[: k[0]] + idx[k[0] + 1 :]
    ):
        _fail(
            NotImplementedError,
            "a boolean scalar index (x[True]) is supported only alone among slices, None and '...'",
        )
    (k,) = k
    keep = bool(idx[k])
    idx = idx[:k] + (None,) + idx[k + 1 :]
    y = getitem(x, idx)
    if keep:
        return y
    # the new axis's position: one axis per slice or None before it, plus what `...` stands for
    n_real = builtins.sum(1 for i in idx if isinstance(i, slice))
    pos = builtins.sum(1 if i is None or isinstance(i, slice) else aval_of(x).ndim - n_real for i in idx[:k])
    return getitem(y, (slice(None),) * pos + (slice(0, 0),))


def _is_mask(e) -> bool:
    return isinstance(e, np.ndarray) and e.dtype == np.dtype(bool)


def _slice_spec(e: slice, n: int) -> tuple:
    """(start, stop, step) of `e` on an axis of length n, normalized (stop None where a
    negative step runs through index 0; an empty slice as 0:0)."""
    start, stop, step = e.indices(n)
    if len(range(start, stop, step)) == 0:
        return (0, 0, 1)
    return (start, stop if stop >= 0 else None, step)


def getitem(x, idx):
    idx = idx if isinstance(idx, tuple) else (idx,)
    if any(_scalar_bool(i) for i in idx):
        return _bool_scalar_index(x, idx)
    raw = []
    for i in idx:
        if i is None or i is Ellipsis or isinstance(i, slice) or _is_int_scalar(i):
            raw.append(i)
            continue
        arr = _index_array(i)
        if arr is None:
            _fail(
                IndexError,
                f"only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and integer or "
                f"boolean arrays are valid indices, got {type(i).__name__} {i!r}",
            )
        raw.append(arr)
    if builtins.sum(1 for i in raw if i is Ellipsis) > 1:
        _fail(IndexError, "an index can only have a single ellipsis ('...')")

    def consumed(e) -> int:  # how many axes of x an entry indexes
        return 0 if e is None or e is Ellipsis else (e.ndim if _is_mask(e) else 1)

    n_real = builtins.sum(consumed(e) for e in raw)
    if n_real > x.ndim:
        _fail(IndexError, f"too many indices for array {x.aval}: {n_real} indices")
    # boolean masks expand into one integer array per masked axis, checked against those axes
    entries, pos = [], 0
    for e in raw:
        if e is Ellipsis:
            entries += [slice(None)] * (x.ndim - n_real)
            pos += x.ndim - n_real
        elif _is_mask(e):
            for k, d in enumerate(e.shape):
                if x.shape[pos + k] != d:
                    _fail(
                        IndexError,
                        f"boolean index did not match indexed array along axis {pos + k}; size of axis "
                        f"is {x.shape[pos + k]} but size of corresponding boolean axis is {d}",
                    )
            entries.extend(np.nonzero(e))
            pos += e.ndim
        else:
            entries.append(e)
            pos += consumed(e)
    entries += [slice(None)] * (x.ndim - pos)
    advanced = any(isinstance(e, (np.ndarray, Tracer)) for e in entries)
    # 1. new axes
    if any(e is None for e in entries):
        it = iter(x.shape)
        x = reshape(x, tuple(1 if e is None else next(it) for e in entries))
        entries = [slice(None) if e is None else e for e in entries]
    # 2. basic slicing; integers too when there is no advanced index
    spec, drop, adv = [], [], []
    for ax, (e, n) in enumerate(zip(entries, x.shape)):
        if isinstance(e, slice):
            spec.append(_slice_spec(e, n))
        elif _is_int_scalar(e):
            if not -n <= e < n:
                _fail(IndexError, f"index {e} is out of bounds for axis {ax} with size {n} (array {x.aval})")
            if advanced:
                adv.append((ax, np.asarray(int(e) % n)))
                spec.append(_full_slice(n))
            else:
                spec.append((int(e) % n, int(e) % n + 1, 1))
                drop.append(ax)
        else:
            adv.append((ax, e))
            spec.append(_full_slice(n))
    if any(s != _full_slice(n) for s, n in zip(spec, x.shape)):
        x = bind(sh.slice_p, x, spec=tuple(spec))
    if drop:
        x = reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in drop))
    if not adv:
        return x
    return _advanced(x, adv)


def _normalize_index(i, n, ax):
    if traced(i):  # checked at run time: NumPy raises IndexError for an index out of bounds
        i = astype(i, np.int64) if i.dtype != np.dtype(np.int64) or i.aval.weak else i
        return ix.index_check(i, n)
    i = np.asarray(i, dtype=np.int64)
    if i.size and (i.min() < -n or i.max() >= n):
        bad = i[(i < -n) | (i >= n)].flat[0]
        _fail(IndexError, f"index {bad} is out of bounds for axis {ax} with size {n}")
    return np.where(i < 0, i + n, i)


def _advanced(x, adv):
    """Gather for integer-array indices `adv` = [(axis, index array)] of x."""
    axes = [a for a, _ in adv]
    rest = [a for a in range(x.ndim) if a not in axes]
    try:  # (no element selected: NumPy checks no bounds)
        empty = not int(np.prod(np.broadcast_shapes(*(aval_of(i).shape for _, i in adv))))
    except ValueError:
        empty = False
    idx = [
        _normalize_index(i, x.shape[a], a) if not empty else np.zeros(aval_of(i).shape, np.int64)
        for a, i in adv
    ]
    try:
        bshape = np.broadcast_shapes(*(aval_of(i).shape for i in idx))
    except ValueError:
        _fail(
            IndexError,
            "shape mismatch: indexing arrays could not be broadcast together with shapes "
            + " ".join(str(aval_of(i).shape) for i in idx),
        )
    # flat index into the advanced axes (row-major), then over the rest
    flat = 0
    for (a, _), i in zip(adv, idx):
        flat = flat * x.shape[a] + i
    rest_shape = tuple(x.shape[a] for a in rest)
    r = int(np.prod(rest_shape, dtype=np.int64))
    y = transpose(x, axes + rest)
    flat = np.broadcast_to(flat, bshape) if not traced(flat) else broadcast_to(flat, bshape)
    # one flat index per element of the result: the index dims, then the other axes
    flat = np.reshape(flat, bshape + (1,) * len(rest)) * r + np.arange(r).reshape(rest_shape)
    if not traced(flat):
        flat = np.array(flat, dtype=np.int64)  # contiguous, and 0-d stays 0-d
    out = ix.gather(y, flat)
    # NumPy puts the broadcast index dims where the indices were if adjacent
    adjacent = axes == list(range(axes[0], axes[0] + len(axes)))
    if adjacent and axes[0] > 0:
        nb = len(bshape)
        k = axes[0]
        perm = list(range(nb, nb + k)) + list(range(nb)) + list(range(nb + k, nb + len(rest)))
        out = transpose(out, perm)
    return out


def take(x, indices, axis=None, out=None, mode="raise"):
    _no_out("np.take", out)
    if not traced(x) and not traced(indices):
        return np.take(x, indices, axis=axis, mode=mode)
    if mode not in ("raise", "wrap", "clip"):
        _fail(ValueError, f"np.take: mode must be 'raise', 'wrap' or 'clip', got {mode!r}")
    x = _lift(x)
    if axis is None:
        x, axis = ravel(x), 0
    a = aval_of(x)
    (ax,) = normalize_axes(axis, a.ndim, "np.take")
    ind = _lift(indices)
    ai = aval_of(ind)
    if ai.dtype.kind not in "biu":
        _fail(TypeError, f"np.take: indices must be integers, got {ai}")
    n = a.shape[ax]
    out_shape = a.shape[:ax] + ai.shape + a.shape[ax + 1 :]
    if int(np.prod(a.shape[:ax], dtype=np.int64)) == 0:  # NumPy takes nothing, checks nothing
        return _fill_like(x, 0, shape=out_shape)
    if n == 0 and ai.size:
        _fail(IndexError, f"np.take: cannot do a non-empty take from an empty axis ({a}, axis {ax})")
    if mode != "raise" and n:  # bring every index into range first, as NumPy does
        ind = np.mod(ind, n) if mode == "wrap" else np.clip(ind, 0, n - 1)
    if not traced(ind) and ind.ndim == 0:
        return getitem(x, (slice(None),) * ax + (int(ind),))
    return getitem(x, (slice(None),) * ax + (ind,))


def take_along_axis(x, indices, axis):
    a, ai = aval_of(x), aval_of(indices)
    if axis is None:
        return take(ravel(_lift(x)), ravel(_lift(indices)))
    (ax,) = normalize_axes(axis, a.ndim, "np.take_along_axis")
    if ai.ndim != a.ndim:
        _fail(
            ValueError,
            f"np.take_along_axis: indices {ai} and array {a} must have the same number of dimensions",
        )
    idx = []
    for d in range(a.ndim):
        if d == ax:
            idx.append(indices)
        else:
            shape = [1] * a.ndim
            shape[d] = a.shape[d]
            idx.append(np.arange(a.shape[d]).reshape(shape))
    return getitem(_lift(x), tuple(idx))
