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
    if upd.dtype.kind == "c":  # (bincount weighs with floats: the parts one at a time)
        w = upd.ravel()
        out = np.bincount(flat, weights=w.real, minlength=size) + 1j * np.bincount(
            flat, weights=w.imag, minlength=size
        )
    else:
        out = np.bincount(flat, weights=upd.ravel(), minlength=size)
    return out.astype(upd.dtype, copy=False).reshape(shape)


@scatter_add_p.def_vjp
def _scatter_add_vjp(ct, ans, upd, idx, *, shape):
    return [gather(ct, idx), None]


def gather(x, idx):
    from ..builder import bind

    return bind(gather_p, x, idx)


def scatter_add(upd, idx, shape):
    from ..builder import bind

    return bind(scatter_add_p, upd, idx, shape=tuple(shape))


# scatter[unique](x, upd, idx): x with upd stored at flat idx (NumPy's `x.flat[idx] = upd`:
# where an index repeats, the last write wins). `unique`: the indices are known distinct.
scatter_p = Primitive("scatter", INDEXING)


@scatter_p.def_abstract
def _scatter_abstract(x, upd, idx, *, unique):
    _check_index("scatter", idx)
    if upd.shape != idx.shape or upd.dtype != x.dtype:
        raise ValueError(f"scatter: updates {upd} must match indices {idx} in shape and {x} in dtype")
    return Aval(x.shape, x.dtype)


def _check_bounds(name, flat, size):
    if flat.size and (flat.min() < 0 or flat.max() >= size):
        raise IndexError(f"{name}: index out of bounds for size {size}")


@scatter_p.def_impl
def _scatter_impl(x, upd, idx, *, unique):
    out = np.array(x, copy=True, order="C")  # C order: reshape(-1) below is a view
    flat = np.ravel(idx)
    _check_bounds("scatter", flat, out.size)
    out.reshape(-1)[flat] = np.ravel(upd)
    return out


@scatter_p.def_vjp
def _scatter_vjp(ct, ans, x, upd, idx, *, unique):
    dupd = gather(ct, idx)  # first: then ct is dead after the scatter, which may reuse it
    dx = scatter(ct, np.zeros_like(upd), idx, unique=unique)
    if not unique:  # an overwritten write does not reach the result
        dupd = np.where(_last_writes(idx, ct.shape), dupd, np.zeros_like(dupd))
    return [dx, dupd, None]


def _last_writes(idx, shape):
    """Which entries of `idx` are the last write to their position."""
    order = np.arange(idx.size, dtype=np.int64).reshape(idx.shape)
    writer = scatter(np.full(shape, -1, np.int64), order, idx)
    return gather(writer, idx) == order


# scatter_accum(x, upd, idx): NumPy's `np.add.at(x, idx, upd)` on flat indices: each
# update is added in turn, repeated indices accumulate
scatter_accum_p = Primitive("scatter_accum", INDEXING)


@scatter_accum_p.def_abstract
def _scatter_accum_abstract(x, upd, idx):
    _check_index("scatter_accum", idx)
    if upd.shape != idx.shape or upd.dtype != x.dtype:
        raise ValueError(f"scatter_accum: updates {upd} must match indices {idx} in shape and {x} in dtype")
    return Aval(x.shape, x.dtype)


@scatter_accum_p.def_impl
def _scatter_accum_impl(x, upd, idx):
    out = np.array(x, copy=True, order="C")
    flat = np.ravel(idx)
    _check_bounds("scatter_accum", flat, out.size)
    np.add.at(out.reshape(-1), flat, np.ravel(upd))
    return out


@scatter_accum_p.def_vjp
def _scatter_accum_vjp(ct, ans, x, upd, idx):
    return [ct, gather(ct, idx), None]


def scatter(x, upd, idx, unique=False):
    from ..builder import bind

    return bind(scatter_p, x, upd, idx, unique=bool(unique))


def scatter_accum(x, upd, idx):
    from ..builder import bind

    return bind(scatter_accum_p, x, upd, idx)


# index_check[n](i): a traced index into an axis of length n, normalized into [0, n);
# one out of bounds raises IndexError naming the user's line, as NumPy's indexing does
index_check_p = Primitive("index_check", INDEXING, differentiable=False)


@index_check_p.def_abstract
def _index_check_abstract(i, *, n):
    _check_index("index_check", i)
    return Aval(i.shape, i.dtype)


@index_check_p.def_impl
def _index_check_impl(i, *, n):
    i = np.asarray(i)
    bad = (i < -n) | (i >= n)
    if np.any(bad):
        raise IndexError(f"index {i[bad].flat[0]} is out of bounds for axis with size {n}")
    return np.where(i < 0, i + n, i).astype(i.dtype)


def index_check(i, n: int):
    from ..builder import bind

    return bind(index_check_p, i, n=int(n))


# --- batching: flat indices into one member become indices into the raveled batch ----------


def _fronted(args, dims, size):
    from ..batching import to_front

    return [to_front(a, d, size) for a, d in zip(args, dims)]


@gather_p.def_batch
def _gather_batch(args, dims, size):
    from ..batching import flat_offsets, shape_of, size_of, to_front
    from ..builder import bind

    (x, idx), (dx, di) = args, dims
    if dx is None:  # one operand, a batch of indices
        return [bind(gather_p, x, idx)], [di]
    x = to_front(x, dx, size)
    idx = flat_offsets(to_front(idx, di, size), size, size_of(shape_of(x)[1:]))
    return [bind(gather_p, x, idx)], [0]


@scatter_add_p.def_batch
def _scatter_add_batch(args, dims, size, *, shape):
    from ..batching import flat_offsets, size_of
    from ..builder import bind

    upd, idx = _fronted(args, dims, size)
    idx = flat_offsets(idx, size, size_of(shape))
    return [bind(scatter_add_p, upd, idx, shape=(size,) + tuple(shape))], [0]


def _scatter_rule(prim):
    def rule(args, dims, size, **params):
        from ..batching import flat_offsets, shape_of, size_of
        from ..builder import bind

        x, upd, idx = _fronted(args, dims, size)
        idx = flat_offsets(idx, size, size_of(shape_of(x)[1:]))
        return [bind(prim, x, upd, idx, **params)], [0]

    return rule


scatter_p.def_batch(_scatter_rule(scatter_p))
scatter_accum_p.def_batch(_scatter_rule(scatter_accum_p))


@index_check_p.def_batch
def _index_check_batch(args, dims, size, *, n):
    from ..batching import only_active
    from ..builder import bind

    # members that do not run this path check index 0 instead of theirs
    i, d = only_active(args[0], dims[0], size, 0) if n > 0 else (args[0], dims[0])
    return [bind(index_check_p, i, n=n)], [d]
