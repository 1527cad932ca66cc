"""Cumulative operations along the last axis beyond `cumsum`:

- `linrec[a, b; reverse]`: the linear recurrence z[i] = a[i] * z[i-1] + b[i]
  (z[-1] = 0; with `reverse`, z[i] = a[i] * z[i+1] + b[i]). `np.cumprod` is
  linrec(x, [x0, 0, 0...]). Its VJP is a linrec the other way (the transpose
  of the linear map b -> z, with a's cotangent from the saved z; first-order
  linear recurrences as scans: Blelloch 1990, "Prefix sums and their
  applications"). No division, so derivatives are exact where x has zeros
  (JAX gets the same by differentiating an associative scan of products).
- `cumarg[x; op]`: the index of the running max/min (op: max, min propagating
  NaN as np.maximum/np.minimum; fmax, fmin ignoring it), not differentiable:
  the running extreme is a gather at it, so its gradient goes to that element.
"""

from __future__ import annotations

import numpy as np

from ..core import OTHER, Aval, Primitive

_LIB = ("import tracediff.backend.cpu.lib.more as lib_more",)

linrec_p = Primitive("linrec", OTHER)


@linrec_p.def_abstract
def _linrec_abstract(a, b, *, reverse):
    if a.shape != b.shape or a.ndim < 1:
        raise ValueError(f"linrec: operands must have equal shapes of at least one dimension, got {a}, {b}")
    if a.dtype != b.dtype or a.dtype.kind not in "iuf":
        raise TypeError(f"linrec: operands must have one numeric dtype, got {a} and {b}")
    return Aval(b.shape, b.dtype)


@linrec_p.def_impl
def _linrec_impl(a, b, *, reverse):
    a, b = np.asarray(a), np.asarray(b)
    z = np.empty_like(b)
    n = b.shape[-1]
    prev = np.zeros(b.shape[:-1], b.dtype)
    for i in reversed(range(n)) if reverse else range(n):
        prev = a[..., i] * prev + b[..., i]
        z[..., i] = prev
    return z


linrec_p.call["cpu"] = "lib_more.linrec({0}, {1}, {reverse})"
linrec_p.imports["cpu"] = _LIB


def shifted(x, toward_end: bool):
    """x moved one place along the last axis, a zero entering at the free end."""
    zero = np.zeros_like(x[..., :1])
    if toward_end:
        return np.concatenate([zero, x[..., :-1]], axis=-1)
    return np.concatenate([x[..., 1:], zero], axis=-1)


@linrec_p.def_vjp
def _linrec_vjp(ct, z, a, b, *, reverse):
    # z[i] = a[i] z[i-1] + b[i]  =>  lam[i] = ct[i] + a[i+1] lam[i+1] (the adjoint
    # recurrence, run the other way); ct_b = lam, ct_a[i] = lam[i] z[i-1]
    lam = linrec(shifted(a, toward_end=reverse), ct, reverse=not reverse)
    return [lam * shifted(z, toward_end=not reverse), lam]


def linrec(a, b, *, reverse: bool = False):
    from ..builder import bind

    return bind(linrec_p, a, b, reverse=reverse)


@linrec_p.def_batch
def _linrec_batch(args, dims, size, *, reverse):
    from ..batching import to_front
    from ..builder import bind

    a, b = (to_front(x, d, size) for x, d in zip(args, dims))
    return [bind(linrec_p, a, b, reverse=reverse)], [0]


cumarg_p = Primitive("cumarg", OTHER, differentiable=False)
_CUMARG_OPS = ("max", "min", "fmax", "fmin")


@cumarg_p.def_abstract
def _cumarg_abstract(x, *, op):
    if op not in _CUMARG_OPS:
        raise ValueError(f"cumarg: op must be one of {_CUMARG_OPS}, got {op!r}")
    if x.ndim < 1 or x.dtype.kind not in "biuf":
        raise ValueError(f"cumarg: needs a numeric array of at least one dimension, got {x}")
    return Aval(x.shape, np.dtype(np.int64))


@cumarg_p.def_impl
def _cumarg_impl(x, *, op):
    x = np.asarray(x)
    out = np.empty(x.shape, np.int64)
    if x.shape[-1] == 0:
        return out
    best = np.zeros(x.shape[:-1], np.int64)
    cur = x[..., 0].copy()
    out[..., 0] = 0
    for i in range(1, x.shape[-1]):
        v = x[..., i]
        better = v > cur if op in ("max", "fmax") else v < cur
        if x.dtype.kind == "f" and op in ("max", "min"):  # NaN wins and stays
            better = (better & ~np.isnan(cur)) | (np.isnan(v) & ~np.isnan(cur))
        elif x.dtype.kind == "f":  # NaN loses unless everything so far was NaN
            better = better | (np.isnan(cur) & ~np.isnan(v))
        best = np.where(better, i, best)
        cur = np.where(better, v, cur)
        out[..., i] = best
    return out


cumarg_p.call["cpu"] = "lib_more.cumarg({0}, {op!r})"
cumarg_p.imports["cpu"] = _LIB


@cumarg_p.def_batch
def _cumarg_batch(args, dims, size, *, op):
    from ..batching import move_axis
    from ..builder import bind

    return [bind(cumarg_p, move_axis(args[0], dims[0], 0), op=op)], [0]
