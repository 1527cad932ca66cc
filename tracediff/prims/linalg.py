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


@matmul_p.def_batch
def _matmul_batch(args, dims, size, **params):
    from ..batching import move_axis, shape_of, to_front
    from ..builder import bind
    from .shape import reshape_p

    (x, y), (dx, dy) = args, dims
    xs, ys = shape_of(x), shape_of(y)
    if dy is None and len(xs) == 3 and len(ys) == 2 and dx == 2 and xs[0] == 1:
        # a batch of row vectors, the batch last ([1,k,B]): y^T @ [k,B], no transpose of x
        from .shape import transpose_p

        out = bind(matmul_p, bind(transpose_p, y, perm=(1, 0)), bind(reshape_p, x, shape=(xs[1], size)))
        return [bind(reshape_p, out, shape=(1, ys[1], size))], [2]
    if dy is None and len(xs) == 3:
        # a batch of [m,k] matrices times one [k,n]: one [B*m,k] @ [k,n] product
        x = move_axis(x, dx, 0)
        m, k = shape_of(x)[1:]
        out = bind(matmul_p, bind(reshape_p, x, shape=(size * m, k)), y)
        return [bind(reshape_p, out, shape=(size, m, ys[-1]))], [0]
    if dx is None and len(ys) == 3:
        if dy == 1:  # [k,B,n]: [m,k] @ [k,B*n] as it lies
            k, _, n = ys
            out = bind(matmul_p, x, bind(reshape_p, y, shape=(k, size * n)))
            return [bind(reshape_p, out, shape=(xs[0], size, n))], [1]
        y = move_axis(y, dy, 0)
        _, k, n = shape_of(y)
        if n == 1:
            # one [m,k] matrix times a batch of vectors: [B,k] @ [k,m]^T, batch first
            from .shape import transpose_p

            out = bind(matmul_p, bind(reshape_p, y, shape=(size, k)), bind(transpose_p, x, perm=(1, 0)))
            return [bind(reshape_p, out, shape=(size, xs[0], 1))], [0]
        # a batch of [k,n]: [m,k] @ [k,B*n], the batch on axis 1
        y = move_axis(y, 0, 1)
        out = bind(matmul_p, x, bind(reshape_p, y, shape=(k, size * n)))
        return [bind(reshape_p, out, shape=(xs[0], size, n))], [1]
    return [bind(matmul_p, to_front(x, dx, size), to_front(y, dy, size))], [0]
