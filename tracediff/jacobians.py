"""Dense Jacobians and Hessians."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from . import pytree
from .numpy_api import aval_of
from .pyconv import convert
from .staging import _normalize_argnums, argnums_spec
from .transforms import jvp, vjp


def _basis(shape, dtype):
    n = int(np.prod(shape, dtype=np.int64))
    eye = np.eye(n, dtype=dtype)
    return [eye[i].reshape(shape) for i in range(n)]


def jacrev(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False):
    """Jacobian by reverse mode: one VJP per output element."""
    argnums = argnums_spec(argnums, "jacobian")

    def jac_fn(*args):
        nums = _normalize_argnums(argnums, len(args), fun, "jacobian")

        def sub(*wrt):
            full = list(args)
            for i, w in zip(nums, wrt):
                full[i] = w
            return convert(fun)(*full)  # this wrapper is ours: the user's control flow is converted

        res = vjp(sub, *[args[i] for i in nums], has_aux=has_aux)
        out, f_vjp = res[0], res[1]
        out_leaves, otree = pytree.flatten(out)
        per_out = []
        for j, o in enumerate(out_leaves):
            oa = aval_of(o)
            rows = []
            for e in _basis(oa.shape, oa.dtype):
                cts = [
                    e if k == j else np.zeros(aval_of(q).shape, aval_of(q).dtype)
                    for k, q in enumerate(out_leaves)
                ]
                rows.append(f_vjp(pytree.unflatten(otree, cts)))
            jacs = []
            for i in range(len(nums)):
                wa = aval_of(args[nums[i]])
                if rows:
                    jacs.append(np.reshape(np.stack([r[i] for r in rows]), oa.shape + wa.shape))
                else:
                    jacs.append(np.zeros(oa.shape + wa.shape, wa.dtype))
            per_out.append(jacs[0] if isinstance(argnums, int) else tuple(jacs))
        jac = pytree.unflatten(otree, per_out)
        return (jac, res[2]) if has_aux else jac

    return jac_fn


jacobian = jacrev


def jacfwd(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False):
    """Jacobian by forward mode: one JVP per input element."""
    argnums = argnums_spec(argnums, "jacfwd")

    def jac_fn(*args):
        nums = _normalize_argnums(argnums, len(args), fun, "jacfwd")
        aux = []

        def sub(*wrt):
            full = list(args)
            for i, w in zip(nums, wrt):
                full[i] = w
            return convert(fun)(*full)  # this wrapper is ours: the user's control flow is converted

        def fwd(wrt, tans):
            res = jvp(sub, wrt, tans, has_aux=has_aux)
            if has_aux:
                aux.append(res[2])
            return res[0], res[1]

        wrt = [args[i] for i in nums]
        jacs = []
        otree = None
        for i, w in enumerate(wrt):
            wa = aval_of(w)
            cols = []
            for e in _basis(wa.shape, wa.dtype):
                tans = [
                    e if k == i else np.zeros(aval_of(q).shape, aval_of(q).dtype) for k, q in enumerate(wrt)
                ]
                out, t_out = fwd(wrt, tans)
                t_leaves, otree = pytree.flatten(t_out)
                cols.append(t_leaves)
            out_leaves = (
                pytree.flatten(fwd(wrt, [np.zeros(aval_of(q).shape, aval_of(q).dtype) for q in wrt])[0])[0]
                if not cols
                else None
            )
            per_leaf = []
            n_out = len(cols[0]) if cols else len(out_leaves)
            for j in range(n_out):
                if cols:
                    oa = aval_of(cols[0][j])
                    stacked = np.stack([c[j] for c in cols], axis=-1)
                    per_leaf.append(np.reshape(stacked, oa.shape + wa.shape))
                else:
                    oa = aval_of(out_leaves[j])
                    per_leaf.append(np.zeros(oa.shape + wa.shape, wa.dtype))
            jacs.append(per_leaf)
        if otree is None:
            otree = pytree.flatten(fwd(wrt, [np.zeros(aval_of(q).shape, aval_of(q).dtype) for q in wrt])[0])[
                1
            ]
        leaves = [
            jacs[0][j] if isinstance(argnums, int) else tuple(j_[j] for j_ in jacs)
            for j in range(len(jacs[0]))
        ]
        jac = pytree.unflatten(otree, leaves)
        return (jac, aux[-1]) if has_aux else jac

    return jac_fn


def hessian(fun: Callable, argnums: int | Sequence[int] = 0):
    """Dense Hessian: forward over reverse."""
    return jacfwd(jacrev(fun, argnums), argnums)
