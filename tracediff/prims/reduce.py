"""Reductions over a sorted tuple of axes (no keepdims: the front end reshapes)."""

from __future__ import annotations

import numpy as np

from ..batching import move_axis
from ..core import REDUCTION, Aval, Primitive


def _reduced_shape(name, x, axes):
    if tuple(sorted(set(axes))) != tuple(axes) or any(not 0 <= a < x.ndim for a in axes):
        raise ValueError(f"{name}: axes {axes} invalid for {x}")
    return tuple(d for i, d in enumerate(x.shape) if i not in axes)


def _keepdims(ct, x, axes):
    """Bring a reduced cotangent back to x's shape (broadcast over `axes`)."""
    kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return np.broadcast_to(np.reshape(ct, kept), x.shape)


def _reduction(name, impl, vjp, *, differentiable=True, out_dtype=None):
    p = Primitive(name, REDUCTION, differentiable=differentiable)

    @p.def_abstract
    def abstract(x, *, axes):
        shape = _reduced_shape(name, x, axes)
        return Aval(shape, np.dtype(out_dtype) if out_dtype else x.dtype)

    p.def_impl(impl)
    p.def_batch(_axes_rule(p))
    if vjp is not None:
        p.def_vjp(vjp)
    return p


def _axes_rule(p):
    # the batch moves to axis 0; the reduced axes move up by one
    def rule(args, dims, size, *, axes):
        from ..builder import bind

        x = move_axis(args[0], dims[0], 0)
        return [bind(p, x, axes=tuple(a + 1 for a in axes))], [0]

    return rule


def _axis_rule(p):
    def rule(args, dims, size, *, axis):
        from ..builder import bind

        x = move_axis(args[0], dims[0], 0)
        return [bind(p, x, axis=axis + 1)], [0]

    return rule


reduce_sum_p = _reduction(
    "reduce_sum",
    lambda x, *, axes: np.asarray(np.sum(x, axis=axes, dtype=np.asarray(x).dtype)),  # no promotion
    lambda ct, ans, x, *, axes: [_keepdims(ct, x, axes)],
)


def _minmax_vjp(ct, ans, x, *, axes):
    # ties share the cotangent evenly
    hit = x == _keepdims(ans, x, axes)
    count = np.sum(hit, axis=axes).astype(x.dtype)
    return [np.where(hit, _keepdims(ct / count, x, axes), 0.0)]


reduce_max_p = _reduction("reduce_max", lambda x, *, axes: np.asarray(np.max(x, axis=axes)), _minmax_vjp)
reduce_min_p = _reduction("reduce_min", lambda x, *, axes: np.asarray(np.min(x, axis=axes)), _minmax_vjp)


def _prod_vjp(ct, ans, x, *, axes):
    # d prod / d x_i = the product of the others: the product of those before i
    # times the product of those after it (two linear recurrences along the reduced
    # axes, flattened last). No division, so it is exact where x has zeros, and so
    # are its own derivatives (a Hessian at a zero needs the others' dependence on it)
    if x.dtype.kind == "c":  # (linrec is real) ans / x_i, with the zeros counted
        return [_keepdims(ct, x, axes) * _others_by_division(x, axes)]
    from .cumulative import linrec, shifted

    rest = [i for i in range(x.ndim) if i not in axes]
    n = int(np.prod([x.shape[a] for a in axes]))
    xt = np.transpose(x, rest + list(axes))
    if n == 0:
        return [np.zeros_like(x)]
    xr = np.reshape(xt, xt.shape[: len(rest)] + (n,))
    first = np.concatenate([np.ones_like(xr[..., :1]), np.zeros_like(xr[..., 1:])], axis=-1)
    before = linrec(shifted(xr, toward_end=True), first)
    after = linrec(shifted(xr, toward_end=False), np.flip(first, axis=-1), reverse=True)
    others = np.transpose(np.reshape(before * after, xt.shape), np.argsort(rest + list(axes)))
    return [_keepdims(ct, x, axes) * others]


def _others_by_division(x, axes):
    # no zero -> ans / x_i; one zero -> product of the non-zeros at that zero
    is_zero = x == 0.0
    nonzero_prod = np.prod(np.where(is_zero, 1.0, x), axis=axes)
    zeros = np.sum(is_zero, axis=axes)
    safe_x = np.where(is_zero, 1.0, x)
    return np.where(
        _keepdims(zeros == 0, x, axes),
        _keepdims(nonzero_prod, x, axes) / safe_x,
        np.where(is_zero & _keepdims(zeros == 1, x, axes), _keepdims(nonzero_prod, x, axes), 0.0),
    )


reduce_prod_p = _reduction(
    "reduce_prod", lambda x, *, axes: np.asarray(np.prod(x, axis=axes, dtype=np.asarray(x).dtype)), _prod_vjp
)

# argmax/argmin over one axis; the front end moves flattening into a reshape
argmax_p = Primitive("argmax", REDUCTION, differentiable=False)
argmin_p = Primitive("argmin", REDUCTION, differentiable=False)
for _p, _fn in ((argmax_p, np.argmax), (argmin_p, np.argmin)):

    def _abstract(x, *, axis, _name=_p.name):
        return Aval(_reduced_shape(_name, x, (axis,)), np.dtype(np.int64))

    _p.def_abstract(_abstract)
    _p.def_impl(lambda x, *, axis, _fn=_fn: np.asarray(_fn(x, axis=axis)))
    _p.def_batch(_axis_rule(_p))

cumsum_p = Primitive("cumsum", REDUCTION)


@cumsum_p.def_abstract
def _cumsum_abstract(x, *, axis):
    if not 0 <= axis < x.ndim:
        raise ValueError(f"cumsum: axis {axis} invalid for {x}")
    return x


cumsum_p.def_impl(lambda x, *, axis: np.cumsum(x, axis=axis))
cumsum_p.def_batch(_axis_rule(cumsum_p))


@cumsum_p.def_vjp
def _cumsum_vjp(ct, ans, x, *, axis):
    return [np.flip(np.cumsum(np.flip(ct, axis), axis=axis), axis)]
