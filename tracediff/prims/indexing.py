"""Gathers and scatter-adds on flat indices.

Every integer-array index (take, take_along_axis, fancy indexing, boolean
masks, diagonals) is turned by the front end into flat indices into the
raveled operand, so one pair of primitives serves them all.
"""

from __future__ import annotations

import numpy as np

from ..core import INDEXING, Aval, Primitive

gather_p = Primitive("gather", INDEXING)


def _check_index(name, idx):
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name}: indices must be integers, got {idx}")


@gather_p.def_abstract
def _gather_abstract(x, idx):
    _check_index("gather", idx)
    return Aval(idx.shape, x.dtype, x.weak)


@gather_p.def_impl
def _gather_impl(x, idx):
    x = np.asarray(x)
    return np.take(x.reshape(-1), idx)


@gather_p.def_vjp
def _gather_vjp(ct, ans, x, idx):
    return [scatter_add(ct, idx, x.shape), None]


# scatter_add[shape](upd, idx): zeros(shape) with upd added at flat idx
scatter_add_p = Primitive("scatter_add", INDEXING)


@scatter_add_p.def_abstract
def _scatter_add_abstract(upd, idx, *, shape):
    _check_index("scatter_add", idx)
    if upd.shape != idx.shape:
        raise ValueError(f"scatter_add: updates {upd} and indices {idx} differ in shape")
    return Aval(tuple(shape), upd.dtype)


@scatter_add_p.def_impl
def _scatter_add_impl(upd, idx, *, shape):
    size = int(np.prod(shape, dtype=np.int64))
    upd = np.asarray(upd)
    flat = np.ravel(idx)
    if flat.size and (flat.min() < 0 or flat.max() >= size):
        raise IndexError(f"scatter_add: index out of bounds for size {size}")
    # bincount sums in float64: faster than np.add.at, and at least as exact
    out = np.bincount(flat, weights=upd.ravel(), minlength=size)
    return out.astype(upd.dtype, copy=False).reshape(shape)


@scatter_add_p.def_vjp
def _scatter_add_vjp(ct, ans, upd, idx, *, shape):
    return [gather(ct, idx), None]


def gather(x, idx):
    from ..tracing import bind

    return bind(gather_p, x, idx)


def scatter_add(upd, idx, shape):
    from ..tracing import bind

    return bind(scatter_add_p, upd, idx, shape=tuple(shape))
