"""Sorting and searching: `argsort` and `searchsorted`, both along the last axis and
non-differentiable (integer results). Sorted values are a gather of `argsort`'s
indices, so their derivative scatters back through `gather`'s VJP.
"""

from __future__ import annotations

import numpy as np

from ..core import OTHER, Aval, Primitive

_LIB = ("import tracediff.backend.cpu.lib.more as lib_more",)

# argsort[x]: stable ascending order along the last axis (NaN last, as NumPy)
argsort_p = Primitive("argsort", OTHER, differentiable=False)


@argsort_p.def_abstract
def _argsort_abstract(x):
    if x.ndim < 1:
        raise ValueError(f"argsort: needs an array of at least one dimension, got {x}")
    if x.dtype.kind not in "biuf":
        raise TypeError(f"argsort: cannot sort {x}")
    return Aval(x.shape, np.dtype(np.int64))


argsort_p.def_impl(lambda x: np.argsort(x, axis=-1, kind="stable").astype(np.int64))
argsort_p.call["cpu"] = "lib_more.argsort({0})"
argsort_p.imports["cpu"] = _LIB


@argsort_p.def_batch
def _argsort_batch(args, dims, size):
    from ..batching import move_axis
    from ..builder import bind

    return [bind(argsort_p, move_axis(args[0], dims[0], 0))], [0]


# searchsorted[a, v; side]: for sorted rows a[..., n], the insertion points of
# v[..., m] (equal leading axes), as np.searchsorted on each row
searchsorted_p = Primitive("searchsorted", OTHER, differentiable=False)


@searchsorted_p.def_abstract
def _searchsorted_abstract(a, v, *, side):
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    if a.ndim < 1 or v.ndim != a.ndim or a.shape[:-1] != v.shape[:-1]:
        raise ValueError(f"searchsorted: shapes {a} and {v} do not match (need [...,n] and [...,m])")
    if a.dtype != v.dtype:
        raise TypeError(f"searchsorted: operands must have equal dtypes, got {a} and {v}")
    return Aval(v.shape, np.dtype(np.int64))


@searchsorted_p.def_impl
def _searchsorted_impl(a, v, *, side):
    a, v = np.asarray(a), np.asarray(v)
    out = np.empty(v.shape, np.int64)
    for i in np.ndindex(a.shape[:-1]):
        out[i] = np.searchsorted(a[i], v[i], side=side)
    return out


searchsorted_p.call["cpu"] = "lib_more.searchsorted({0}, {1}, {side!r} == 'right')"
searchsorted_p.imports["cpu"] = _LIB


@searchsorted_p.def_batch
def _searchsorted_batch(args, dims, size, *, side):
    from ..batching import to_front
    from ..builder import bind

    a, v = (to_front(x, d, size) for x, d in zip(args, dims))
    return [bind(searchsorted_p, a, v, side=side)], [0]
