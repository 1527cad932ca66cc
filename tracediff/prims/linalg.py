"""Contractions. One primitive: batched matrix product with equal batch dims;
the front end maps dot, inner, outer, tensordot, einsum and 1-D matmul onto it
with reshapes and transposes."""

from __future__ import annotations

import numpy as np

from ..core import CONTRACTION, Aval, Primitive

matmul_p = Primitive("matmul", CONTRACTION)


@matmul_p.def_abstract
def _matmul_abstract(x, y):
    if x.ndim < 2 or x.ndim != y.ndim or x.shape[:-2] != y.shape[:-2] or x.shape[-1] != y.shape[-2]:
        raise ValueError(f"matmul: shapes {x} and {y} do not match (need [...,m,k] @ [...,k,n])")
    if x.dtype != y.dtype:
        raise TypeError(f"matmul: operands must have equal dtypes, got {x} and {y}")
    return Aval(x.shape[:-1] + y.shape[-1:], x.dtype)


matmul_p.def_impl(np.matmul)


@matmul_p.def_vjp
def _matmul_vjp(ct, ans, x, y):
    return [np.matmul(ct, np.swapaxes(y, -1, -2)), np.matmul(np.swapaxes(x, -1, -2), ct)]
