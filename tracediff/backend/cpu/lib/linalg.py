"""Linear algebra for compiled CPU programs: the `solve`, `triangular_solve`,
`slogdet`, `cholesky`, `eigh`, `svd`, `qr` and `expm` primitives as calls.

Each takes C-contiguous arrays of matrices stacked along leading axes and loops
over them, calling Numba's `np.linalg` (LAPACK through SciPy) on one matrix at a
time. Numba raises `np.linalg.LinAlgError` where LAPACK fails (a singular
matrix in `solve`, a matrix that is not positive definite in `cholesky`), as
NumPy does.

Numba's `np.linalg` also refuses any matrix with an inf or NaN entry, where
NumPy hands it to LAPACK (NaN results, or for `eigh` none at all when the
non-finite entries lie in the upper triangle it does not read). Such a matrix
goes to NumPy's own function instead, in object mode, so that compiled and
interpreted programs (and a tiered function's first and later calls) give the
same values or raise the same error.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.extending import overload

from tracediff.prims.decompositions import PADE13, THETA13

# Each operation is a thin function of any number of leading axes, which views its
# operands as stacks [nb, m, n], and a loop over the stack that calls LAPACK: the loop
# (slow to compile) is compiled once per dtype, not once per number of dimensions.


@numba.njit(cache=True, nogil=True)
def _count(shape, ncore):
    """How many matrices the leading axes of `shape` hold (ncore trailing axes)."""
    c = 1
    for i in range(len(shape) - ncore):
        c *= shape[i]
    return c


@numba.njit(cache=True, nogil=True)
def _finite(a) -> bool:
    """Whether every entry of the matrix `a` is finite (Numba's LAPACK calls refuse it otherwise)."""
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            if not np.isfinite(a[i, j]):
                return False
    return True


def _numpy_call(name, a, outs, *extra):
    """Object mode: NumPy's np.linalg.<name>(a, *extra) of one matrix, into the arrays `outs`."""
    res = getattr(np.linalg, name)(a, *extra)
    for out, r in zip(outs, res if isinstance(res, tuple) else (res,)):
        out[...] = r


@numba.njit(cache=True)
def _numpy2(name, a, out0, out1):
    with numba.objmode():
        _numpy_call(name, a, (out0, out1))


@numba.njit(cache=True)
def _numpy3(name, a, out0, out1, out2):
    with numba.objmode():
        _numpy_call(name, a, (out0, out1, out2), False)


@numba.njit(cache=True)
def _numpy_solve(a, b, out):
    with numba.objmode():
        out[...] = np.linalg.solve(a, b)


_SMALL = 8  # up to this order, an LU written here: LAPACK's per-call copies cost more than the work


@numba.njit(cache=True, nogil=True)
def _lu_solve_small(a, b, out, lu):
    """a x = b by LU with partial pivoting (LAPACK's getrf/getrs, unblocked)."""
    n, k = b.shape
    lu[:] = a
    out[:] = b
    for j in range(n):
        p, best = j, abs(lu[j, j])
        for i in range(j + 1, n):
            if abs(lu[i, j]) > best:
                p, best = i, abs(lu[i, j])
        if best == 0:
            raise np.linalg.LinAlgError("Matrix is singular to machine precision.")
        if p != j:
            for c in range(n):
                lu[j, c], lu[p, c] = lu[p, c], lu[j, c]
            for c in range(k):
                out[j, c], out[p, c] = out[p, c], out[j, c]
        for i in range(j + 1, n):
            m = lu[i, j] / lu[j, j]
            for c in range(j + 1, n):
                lu[i, c] -= m * lu[j, c]
            for c in range(k):
                out[i, c] -= m * out[j, c]
    for i in range(n - 1, -1, -1):
        for c in range(k):
            acc = out[i, c]
            for j in range(i + 1, n):
                acc -= lu[i, j] * out[j, c]
            out[i, c] = acc / lu[i, i]


@numba.njit(cache=True, nogil=True)
def _solve3(a, b, out):
    n = a.shape[1]
    if n <= _SMALL:
        lu = np.empty((n, n), a.dtype)
        for i in range(a.shape[0]):
            _lu_solve_small(a[i], b[i], out[i], lu)
        return
    for i in range(a.shape[0]):
        if _finite(a[i]) and _finite(b[i]):
            out[i] = np.linalg.solve(a[i], b[i])
        else:
            _numpy_solve(a[i], b[i], out[i])


@numba.njit(cache=True, nogil=True)
def solve(a, b):
    n, k = b.shape[-2], b.shape[-1]
    out = np.empty(b.shape, b.dtype)
    nb = _count(b.shape, 2)
    if nb and n and k:
        _solve3(a.reshape((nb, n, n)), b.reshape((nb, n, k)), out.reshape((nb, n, k)))
    return out


@numba.njit(cache=True, nogil=True)
def _trsm3(a, b, out, lower, trans, unit):
    """op(a) x = b by substitution, reading only a's `lower` (or upper) triangle;
    op(a) = a.T when `trans`."""
    nb, n, k = b.shape
    down = lower != trans  # op(a) is lower triangular: solve from the top row down
    for m in range(nb):
        if not unit:
            for d in range(n):
                if a[m, d, d] == 0:  # as scipy.linalg.solve_triangular
                    raise np.linalg.LinAlgError("solve_triangular: singular matrix (a zero on the diagonal)")
        for step in range(n):
            i = step if down else n - 1 - step
            lo, hi = (0, i) if down else (i + 1, n)
            for c in range(k):
                acc = b[m, i, c]
                for j in range(lo, hi):
                    acc -= (a[m, j, i] if trans else a[m, i, j]) * out[m, j, c]
                out[m, i, c] = acc if unit else acc / a[m, i, i]


@numba.njit(cache=True, nogil=True)
def triangular_solve(a, b, lower, trans, unit):
    n, k = b.shape[-2], b.shape[-1]
    out = np.empty(b.shape, b.dtype)
    nb = _count(b.shape, 2)
    if nb and n and k:
        _trsm3(a.reshape((nb, n, n)), b.reshape((nb, n, k)), out.reshape((nb, n, k)), lower, trans, unit)
    return out


@numba.njit(cache=True, nogil=True)
def _slogdet3(a, sign, logdet):
    for i in range(a.shape[0]):
        if _finite(a[i]):
            s, ld = np.linalg.slogdet(a[i])
            sign[i], logdet[i] = s, ld
        else:
            _numpy2("slogdet", a[i], sign[i : i + 1], logdet[i : i + 1])


@numba.njit(cache=True, nogil=True)
def _slogdet_stack(a):
    n = a.shape[-1]
    nb = _count(a.shape, 2)
    sign = np.empty(a.shape[:-2], a.dtype)
    logdet = np.empty(a.shape[:-2], a.dtype)
    _slogdet3(a.reshape((nb, n, n)), sign.reshape(nb), logdet.reshape(nb))
    return sign, logdet


@numba.njit(cache=True, nogil=True)
def _slogdet_one(a):
    sign, logdet = np.empty(1, a.dtype), np.empty(1, a.dtype)
    _slogdet3(a.reshape((1,) + a.shape), sign, logdet)
    return sign[0], logdet[0]


def slogdet(a):
    """(sign, log|det|) of each matrix; scalars for one matrix (a program's 0-d values are scalars)."""
    return np.linalg.slogdet(a)


@overload(slogdet, jit_options={"cache": True, "nogil": True})
def _slogdet_overload(a):
    return (lambda a: _slogdet_one(a)) if a.ndim == 2 else (lambda a: _slogdet_stack(a))


@numba.njit(cache=True, nogil=True)
def _cholesky3(a, out):
    for i in range(a.shape[0]):
        out[i] = np.linalg.cholesky(a[i])  # reads the lower triangle, as NumPy's


@numba.njit(cache=True, nogil=True)
def cholesky(a):
    n = a.shape[-1]
    nb = _count(a.shape, 2)
    out = np.empty(a.shape, a.dtype)
    if nb and n:
        _cholesky3(a.reshape((nb, n, n)), out.reshape((nb, n, n)))
    return out


@numba.njit(cache=True, nogil=True)
def _eigh3(a, w, v):
    for i in range(a.shape[0]):
        if _finite(a[i]):
            wi, vi = np.linalg.eigh(a[i])  # the lower triangle, as NumPy's UPLO='L'
            w[i], v[i] = wi, vi
        else:
            _numpy2("eigh", a[i], w[i], v[i])


@numba.njit(cache=True, nogil=True)
def eigh(a):
    n = a.shape[-1]
    nb = _count(a.shape, 2)
    w = np.empty(a.shape[:-1], a.dtype)
    v = np.empty(a.shape, a.dtype)
    if nb and n:
        _eigh3(a.reshape((nb, n, n)), w.reshape((nb, n)), v.reshape((nb, n, n)))
    return w, v


@numba.njit(cache=True, nogil=True)
def _svd3(a, u, s, vt):
    for i in range(a.shape[0]):
        if _finite(a[i]):
            ui, si, vi = np.linalg.svd(a[i], full_matrices=False)
            u[i], s[i], vt[i] = ui, si, vi
        else:
            _numpy3("svd", a[i], u[i], s[i], vt[i])


@numba.njit(cache=True, nogil=True)
def svd(a):
    m, n = a.shape[-2], a.shape[-1]
    k = min(m, n)
    nb = _count(a.shape, 2)
    u = np.empty(a.shape[:-1] + (k,), a.dtype)
    s = np.empty(a.shape[:-2] + (k,), a.dtype)
    vt = np.empty(a.shape[:-2] + (k, n), a.dtype)
    if nb and k:
        _svd3(a.reshape((nb, m, n)), u.reshape((nb, m, k)), s.reshape((nb, k)), vt.reshape((nb, k, n)))
    return u, s, vt


@numba.njit(cache=True, nogil=True)
def _qr3(a, q, r):
    for i in range(a.shape[0]):
        if _finite(a[i]):
            qi, ri = np.linalg.qr(a[i])
            q[i], r[i] = qi, ri
        else:
            _numpy2("qr", a[i], q[i], r[i])


@numba.njit(cache=True, nogil=True)
def qr(a):
    m, n = a.shape[-2], a.shape[-1]
    k = min(m, n)
    nb = _count(a.shape, 2)
    q = np.empty(a.shape[:-1] + (k,), a.dtype)
    r = np.empty(a.shape[:-2] + (k, n), a.dtype)
    if nb and k:
        _qr3(a.reshape((nb, m, n)), q.reshape((nb, m, k)), r.reshape((nb, k, n)))
    return q, r


@numba.njit(cache=True, nogil=True)
def _expm1(a):
    """exp(a) of one matrix, in float64: Padé 13 with scaling and squaring, step by
    step as the interpreter's (prims/decompositions.py expm_pade13)."""
    n = a.shape[0]
    if not _finite(a):  # as the interpreter's: NaN throughout (max() below would drop a NaN)
        return np.full(a.shape, np.nan)
    norm1 = 0.0
    for j in range(n):
        norm1 = max(norm1, np.sum(np.abs(a[:, j])))
    s = 0
    if norm1 > THETA13:
        s = int(np.ceil(np.log2(norm1 / THETA13)))
    x = a / 2.0**s
    b = PADE13
    ident = np.eye(n)
    x2 = x @ x
    x4 = x2 @ x2
    x6 = x4 @ x2
    u = x @ (x6 @ (b[13] * x6 + b[11] * x4 + b[9] * x2) + b[7] * x6 + b[5] * x4 + b[3] * x2 + b[1] * ident)
    v = x6 @ (b[12] * x6 + b[10] * x4 + b[8] * x2) + b[6] * x6 + b[4] * x4 + b[2] * x2 + b[0] * ident
    r = np.ascontiguousarray(np.linalg.solve(v - u, v + u))  # LAPACK's result is Fortran-ordered
    for _ in range(s):
        r = r @ r
    return r


@numba.njit(cache=True, nogil=True)
def _expm3(a, out):
    for i in range(a.shape[0]):
        out[i] = _expm1(a[i].astype(np.float64)).astype(out.dtype)


@numba.njit(cache=True, nogil=True)
def expm(a):
    n = a.shape[-1]
    nb = _count(a.shape, 2)
    out = np.empty(a.shape, a.dtype)
    if nb and n:
        _expm3(a.reshape((nb, n, n)), out.reshape((nb, n, n)))
    return out


@numba.njit(cache=True, nogil=True)
def _lu3(lu, piv, perm):
    """In place, LAPACK's getf2: partial pivoting (the first largest |entry|), row
    interchanges recorded in piv and composed in perm; a zero pivot is left as it is."""
    nb, m, n = lu.shape
    for b in range(nb):
        x, p = lu[b], perm[b]
        for i in range(m):
            p[i] = i
        for j in range(min(m, n)):
            r, best = j, abs(x[j, j])
            for i in range(j + 1, m):
                if abs(x[i, j]) > best:
                    r, best = i, abs(x[i, j])
            piv[b, j] = r
            if r != j:
                for c in range(n):
                    x[j, c], x[r, c] = x[r, c], x[j, c]
                p[j], p[r] = p[r], p[j]
            if x[j, j] == 0:
                continue
            for i in range(j + 1, m):
                x[i, j] /= x[j, j]
                f = x[i, j]
                for c in range(j + 1, n):
                    x[i, c] -= f * x[j, c]


@numba.njit(cache=True, nogil=True)
def lu(a):
    m, n = a.shape[-2], a.shape[-1]
    nb = _count(a.shape, 2)
    out = a.copy()
    piv = np.empty(a.shape[:-2] + (min(m, n),), np.int32)
    perm = np.empty(a.shape[:-2] + (m,), np.int32)
    if nb and m and n:
        _lu3(out.reshape((nb, m, n)), piv.reshape((nb, min(m, n))), perm.reshape((nb, m)))
    return out, piv, perm


@numba.njit(cache=True, nogil=True)
def _pivots3(piv, perm):
    for b in range(piv.shape[0]):
        for i in range(perm.shape[1]):
            perm[b, i] = i
        for j in range(piv.shape[1]):
            r = piv[b, j]
            if r < j or r >= perm.shape[1]:
                raise ValueError("lu_solve: invalid pivots (piv[j] must lie in [j, n))")
            perm[b, j], perm[b, r] = perm[b, r], perm[b, j]


@numba.njit(cache=True, nogil=True)
def lu_pivots_to_permutation(piv, n):
    k = piv.shape[-1]
    nb = _count(piv.shape, 1)
    perm = np.empty(piv.shape[:-1] + (n,), np.int32)
    if nb and n:
        _pivots3(piv.reshape((nb, k)), perm.reshape((nb, n)))
    return perm
