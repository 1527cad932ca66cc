"""Contractions and linear solves. `matmul`: batched matrix product with equal
batch dims (the front end maps dot, inner, outer, tensordot, einsum and 1-D
matmul onto it with reshapes and transposes). `solve`, `triangular_solve` and
`slogdet`: LAPACK-backed operations on stacks of matrices [..., n, n], from
which the front end composes inv, det, matrix_power, cho_solve...; the
factorizations are in decompositions.py.

Their derivative rules follow Giles 2008, "An extended collection of matrix
derivative results for forward and reverse mode AD", and JAX's lax.linalg.
"""

from __future__ import annotations

import numpy as np

from ..core import CONTRACTION, OTHER, Aval, Primitive

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


# --- linear solves -----------------------------------------------------------------------
# Operands are stacks of matrices with equal leading (batch) axes; the front end
# broadcasts them. Compiled CPU code calls tracediff/backend/cpu/lib/linalg.py.

LIB_IMPORTS = ("import tracediff.backend.cpu.lib.linalg as lib_linalg",)


def float_matrices(name: str, *avals: Aval, square: bool = True) -> None:
    """The checks every linear-algebra primitive shares: float dtypes, equal among
    operands, and (`square`) square trailing matrices."""
    for a in avals:
        if a.dtype.kind != "f" or a.dtype != avals[0].dtype:
            raise TypeError(f"{name}: operands must be float32 or float64 of one dtype, got {avals}")
        if a.ndim < 2:
            raise ValueError(f"{name}: operands must be stacks of matrices [..., m, n], got {a}")
    if square and avals[0].shape[-1] != avals[0].shape[-2]:
        raise ValueError(f"{name}: the matrix must be square, got {avals[0]}")


def leading_batch_rule(prim: Primitive):
    """A primitive over stacks of matrices batches by putting the batch first."""

    def rule(args, dims, size, **params):
        from ..batching import to_front
        from ..builder import bind

        outs = bind(prim, *(to_front(x, d, size) for x, d in zip(args, dims)), **params)
        outs = [outs] if prim.nout == 1 else list(outs)
        return outs, [0] * len(outs)

    return rule


def mT(x):
    """The transposes of a stack of matrices [..., m, n]."""
    return np.swapaxes(x, -1, -2)


def _solve_abstract_of(name):
    def rule(a, b, **params):
        float_matrices(name, a, b, square=True)
        if a.shape[:-1] != b.shape[:-1]:
            raise ValueError(f"{name}: shapes {a} and {b} do not match (need [..., n, n] and [..., n, k])")
        return Aval(b.shape, b.dtype)

    return rule


solve_p = Primitive("solve", OTHER)
solve_p.def_abstract(_solve_abstract_of("solve"))
solve_p.def_impl(np.linalg.solve)
solve_p.call["cpu"] = "lib_linalg.solve({0}, {1})"
solve_p.imports["cpu"] = LIB_IMPORTS


def _solve_batch_rule(prim):
    """One matrix for a batch of right-hand sides: the batch becomes more columns of
    b (one factorization instead of one per member, as JAX's rule)."""
    general = leading_batch_rule(prim)

    def rule(args, dims, size, **params):
        from ..batching import move_axis, shape_of
        from ..builder import bind
        from .shape import reshape_p

        (a, b), (da, db) = args, dims
        if da is not None:
            return general(args, dims, size, **params)
        b = move_axis(b, db, len(shape_of(b)) - 2)  # [..., n, B, k]
        *lead, n, _, k = shape_of(b)
        x = bind(prim, a, bind(reshape_p, b, shape=(*lead, n, size * k)), **params)
        return [bind(reshape_p, x, shape=(*lead, n, size, k))], [len(lead) + 1]

    return rule


solve_p.def_batch(_solve_batch_rule(solve_p))


@solve_p.def_vjp
def _solve_vjp(ct, x, a, b):
    # x = a^-1 b: ct_b = a^-T ct, ct_a = -ct_b x^T (Giles 2008, section 2.3.1)
    from ..builder import bind

    ct_b = bind(solve_p, mT(a), ct)
    return [-np.matmul(ct_b, mT(x)), ct_b]


triangular_solve_p = Primitive("triangular_solve", OTHER)
triangular_solve_p.def_abstract(_solve_abstract_of("triangular_solve"))
triangular_solve_p.call["cpu"] = "lib_linalg.triangular_solve({0}, {1}, {lower}, {trans}, {unit})"
triangular_solve_p.imports["cpu"] = LIB_IMPORTS
triangular_solve_p.def_batch(_solve_batch_rule(triangular_solve_p))


@triangular_solve_p.def_impl
def _triangular_solve_impl(a, b, *, lower: bool, trans: bool, unit: bool):
    """op(a) x = b reading only a's lower (or upper) triangle; op(a) = a^T if `trans`."""
    import scipy.linalg

    out = np.empty(b.shape, b.dtype)
    for i in np.ndindex(b.shape[:-2]):
        out[i] = scipy.linalg.solve_triangular(
            a[i], b[i], trans=int(trans), lower=lower, unit_diagonal=unit, check_finite=False
        )
    return out


def triangle_mask(n: int, dtype, lower: bool, strict: bool = False) -> np.ndarray:
    """Ones on the lower (upper) triangle, the diagonal unless `strict`."""
    ones = np.ones((n, n), dtype)
    return np.tril(ones, -int(strict)) if lower else np.triu(ones, int(strict))


@triangular_solve_p.def_vjp
def _triangular_solve_vjp(ct, x, a, b, *, lower, trans, unit):
    # as solve's, with the cotangent of a kept to the triangle the solve reads (JAX's
    # lax.linalg triangular_solve transpose rule)
    from ..builder import bind

    ct_b = bind(triangular_solve_p, a, ct, lower=lower, trans=not trans, unit=unit)
    ct_a = -(np.matmul(x, mT(ct_b)) if trans else np.matmul(ct_b, mT(x)))
    n = np.shape(a)[-1]
    return [ct_a * triangle_mask(n, ct_a.dtype, lower, strict=unit), ct_b]


slogdet_p = Primitive("slogdet", OTHER, nout=2)
slogdet_p.symbolic_zeros = True  # the sign has no derivative: its cotangent is never built
slogdet_p.call["cpu"] = "lib_linalg.slogdet({0})"
slogdet_p.imports["cpu"] = LIB_IMPORTS
slogdet_p.def_batch(leading_batch_rule(slogdet_p))


@slogdet_p.def_abstract
def _slogdet_abstract(a):
    float_matrices("slogdet", a)
    return [Aval(a.shape[:-2], a.dtype)] * 2


@slogdet_p.def_impl
def _slogdet_impl(a):
    sign, logdet = np.linalg.slogdet(a)
    return [np.asarray(sign, a.dtype), np.asarray(logdet, a.dtype)]


@slogdet_p.def_vjp
def _slogdet_vjp(cts, ans, a):
    # d log|det a| = tr(a^-1 da): ct_a = ct a^-T (Giles 2008, section 2.2.4)
    from ..builder import bind
    from .shape import broadcast_p

    ct = cts[1]
    if ct is None:
        return [None]
    eye = bind(broadcast_p, np.eye(np.shape(a)[-1], dtype=ct.dtype), shape=np.shape(a))
    return [np.expand_dims(ct, (-1, -2)) * bind(solve_p, mT(a), eye)]
