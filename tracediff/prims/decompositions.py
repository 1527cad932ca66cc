"""Matrix factorizations and functions on stacks of matrices [..., m, n]:
`cholesky`, `eigh`, `svd`, `qr`, `lu` (and `lu_pivots_to_permutation`) and `expm`.
The front end composes pinv, lstsq, the matrix norms, scipy.linalg.cho_factor,
lu_solve... from them.

Each VJP is written with NumPy calls (and these primitives), so it differentiates
again. Sources: Murray 2016, "Differentiation of the Cholesky decomposition";
Giles 2008 and Seeger et al. 2017, "Auto-differentiating linear algebra" (eigh);
Townsend 2016, "Differentiating the singular value decomposition"; Liao et al.
2019, "Differentiable programming tensor networks" (QR); JAX's lu_jvp_rule (LU);
Al-Mohy & Higham 2009
(the Fréchet derivative of expm); JAX's lax.linalg and HIPS autograd for the
conventions (symmetric inputs, degenerate spectra).
"""

from __future__ import annotations

import numpy as np

from ..core import OTHER, Aval, Primitive
from .linalg import LIB_IMPORTS, float_matrices, leading_batch_rule, mT, triangle_mask, triangular_solve_p


def _bind(prim, *args, **params):
    from ..builder import bind

    return bind(prim, *args, **params)


def _diag(v):
    """[..., n] -> [..., n, n] with v on the diagonal."""
    n = np.shape(v)[-1]
    return np.expand_dims(v, -1) * np.eye(n, dtype=v.dtype)


def _in_lower(g):
    """A gradient g with respect to the symmetric matrix that a function builds from
    the lower triangle of its input, made the gradient with respect to that input:
    the off-diagonal terms of g and g^T land in the triangle that is read (as HIPS
    autograd's eigh rule), so it matches finite differences on any input."""
    n = np.shape(g)[-1]
    w = triangle_mask(n, g.dtype, lower=True) - 0.5 * np.eye(n, dtype=g.dtype)
    return (g + mT(g)) * w


# --- cholesky ------------------------------------------------------------------------------

cholesky_p = Primitive("cholesky", OTHER)
cholesky_p.call["cpu"] = "lib_linalg.cholesky({0})"
cholesky_p.imports["cpu"] = LIB_IMPORTS
cholesky_p.def_batch(leading_batch_rule(cholesky_p))


@cholesky_p.def_abstract
def _cholesky_abstract(a):
    float_matrices("cholesky", a)
    return Aval(a.shape, a.dtype)


cholesky_p.def_impl(np.linalg.cholesky)  # reads the lower triangle


@cholesky_p.def_vjp
def _cholesky_vjp(ct, L, a):
    # Murray 2016 (eq. 10), as JAX's cholesky_jvp_rule transposed:
    # S = L^-T Phi(L^T ct) L^-1, Phi = the lower triangle with the diagonal halved;
    # the gradient with respect to the symmetric input is (S + S^T) / 2
    n = np.shape(L)[-1]
    phi = triangle_mask(n, L.dtype, lower=True) - 0.5 * np.eye(n, dtype=L.dtype)
    p = np.matmul(mT(L), ct * triangle_mask(n, L.dtype, lower=True)) * phi
    x = _bind(triangular_solve_p, L, p, lower=True, trans=True, unit=False)  # L^-T P
    s = mT(_bind(triangular_solve_p, L, mT(x), lower=True, trans=True, unit=False))  # L^-T P L^-1
    return [_in_lower(0.5 * (s + mT(s)))]


# --- eigh ----------------------------------------------------------------------------------

eigh_p = Primitive("eigh", OTHER, nout=2)
eigh_p.symbolic_zeros = True
eigh_p.call["cpu"] = "lib_linalg.eigh({0})"
eigh_p.imports["cpu"] = LIB_IMPORTS
eigh_p.def_batch(leading_batch_rule(eigh_p))


@eigh_p.def_abstract
def _eigh_abstract(a):
    float_matrices("eigh", a)
    return [Aval(a.shape[:-1], a.dtype), Aval(a.shape, a.dtype)]


@eigh_p.def_impl
def _eigh_impl(a):
    return list(np.linalg.eigh(a))  # UPLO="L"; the front end transposes for "U"


def _inv_gaps(d, eye):
    """F[i, j] = 1 / (d[j] - d[i]) off the diagonal, 0 on it (inf where two are equal)."""
    gaps = np.expand_dims(d, -2) - np.expand_dims(d, -1)
    return (1 - eye) / (gaps + eye)


@eigh_p.def_vjp
def _eigh_vjp(cts, ans, a):
    # a = V diag(w) V^T: ct_a = V (diag(ct_w) + F o (V^T ct_V)) V^T with F the inverse
    # eigenvalue gaps (Giles 2008, 3.1; Seeger et al. 2017); it assumes distinct
    # eigenvalues (F is infinite for repeated ones, as in JAX and autograd)
    ct_w, ct_v = cts
    w, v = ans
    n = np.shape(a)[-1]
    eye = np.eye(n, dtype=w.dtype)
    inner = 0
    if ct_w is not None:
        inner = _diag(ct_w)
    if ct_v is not None:
        inner = inner + _inv_gaps(w, eye) * np.matmul(mT(v), ct_v)
    if ct_w is None and ct_v is None:
        return [None]
    g = np.matmul(np.matmul(v, inner), mT(v))
    return [_in_lower(0.5 * (g + mT(g)))]


# --- svd -----------------------------------------------------------------------------------

svd_p = Primitive("svd", OTHER, nout=3)
svd_p.symbolic_zeros = True
svd_p.call["cpu"] = "lib_linalg.svd({0})"
svd_p.imports["cpu"] = LIB_IMPORTS
svd_p.def_batch(leading_batch_rule(svd_p))


@svd_p.def_abstract
def _svd_abstract(a):
    float_matrices("svd", a, square=False)
    m, n = a.shape[-2:]
    k = min(m, n)
    lead = a.shape[:-2]
    return [Aval(lead + (m, k), a.dtype), Aval(lead + (k,), a.dtype), Aval(lead + (k, n), a.dtype)]


@svd_p.def_impl
def _svd_impl(a):
    return list(np.linalg.svd(a, full_matrices=False))


@svd_p.def_vjp
def _svd_vjp(cts, ans, a):
    # Townsend 2016 (JAX's svd_jvp_rule transposed), a = U S V^T reduced, k = min(m, n):
    # ct_a = U [diag(ct_s) + (J + J^T) S + S (K + K^T)] V^T
    #        + (I - U U^T) ct_U S^-1 V^T + U S^-1 ct_V^T (I - V V^T),
    # J = F o (U^T ct_U), K = F o (V^T ct_V), F[i, j] = 1 / (s_j^2 - s_i^2).
    # Singular values' derivatives always exist; the vectors' need distinct, nonzero ones.
    ct_u, ct_s, ct_vt = cts
    u, s, vt = ans
    m, n = np.shape(a)[-2:]
    k = min(m, n)
    if ct_u is None and ct_s is None and ct_vt is None:
        return [None]
    eye = np.eye(k, dtype=s.dtype)
    s_row, s_col = np.expand_dims(s, -2), np.expand_dims(s, -1)  # s_j, s_i
    inv_gaps = _inv_gaps(s * s, eye)
    mid = _diag(ct_s) if ct_s is not None else 0
    extra = 0
    if ct_u is not None:
        j = inv_gaps * np.matmul(mT(u), ct_u)
        mid = mid + (j + mT(j)) * s_row
        if m > k:
            extra = np.matmul((ct_u - np.matmul(u, np.matmul(mT(u), ct_u))) / s_row, vt)
    if ct_vt is not None:
        ct_v = mT(ct_vt)
        kk = inv_gaps * np.matmul(vt, ct_v)
        mid = mid + s_col * (kk + mT(kk))
        if n > k:
            extra = extra + np.matmul(u, mT((ct_v - np.matmul(mT(vt), np.matmul(vt, ct_v))) / s_row))
    return [np.matmul(np.matmul(u, mid), vt) + extra]


# --- qr ------------------------------------------------------------------------------------

qr_p = Primitive("qr", OTHER, nout=2)
qr_p.symbolic_zeros = True
qr_p.call["cpu"] = "lib_linalg.qr({0})"
qr_p.imports["cpu"] = LIB_IMPORTS
qr_p.def_batch(leading_batch_rule(qr_p))


@qr_p.def_abstract
def _qr_abstract(a):
    float_matrices("qr", a, square=False)
    m, n = a.shape[-2:]
    k = min(m, n)
    return [Aval(a.shape[:-1] + (k,), a.dtype), Aval(a.shape[:-2] + (k, n), a.dtype)]


@qr_p.def_impl
def _qr_impl(a):
    return list(np.linalg.qr(a, mode="reduced"))


@qr_p.def_vjp
def _qr_vjp(cts, ans, a):
    # reduced QR of a tall or square a (Liao et al. 2019, eq. 6; as JAX, no rule for
    # wide matrices): M = R ct_R^T - ct_Q^T Q, ct_a = (ct_Q + Q copyltu(M)) R^-T,
    # copyltu(M) the symmetric matrix with M's lower triangle
    ct_q, ct_r = cts
    q, r = ans
    m, n = np.shape(a)[-2:]
    if m < n:
        raise NotImplementedError(
            f"the derivative of np.linalg.qr of a wide matrix ({m}x{n}, more columns than rows) "
            "is not supported (as in JAX)"
        )
    if ct_q is None and ct_r is None:
        return [None]
    mm = 0
    if ct_r is not None:
        mm = np.matmul(r, mT(ct_r))
    if ct_q is not None:
        mm = mm - np.matmul(mT(ct_q), q)
    low = mm * triangle_mask(n, q.dtype, lower=True, strict=True)
    lhs = np.matmul(q, low + mT(low) + mm * np.eye(n, dtype=q.dtype))
    if ct_q is not None:
        lhs = lhs + ct_q
    # X R^-T = (R^-1 X^T)^T
    return [mT(_bind(triangular_solve_p, r, mT(lhs), lower=False, trans=False, unit=False))]


# --- expm ----------------------------------------------------------------------------------

expm_p = Primitive("expm", OTHER)
expm_p.call["cpu"] = "lib_linalg.expm({0})"
expm_p.imports["cpu"] = LIB_IMPORTS
expm_p.def_batch(leading_batch_rule(expm_p))


@expm_p.def_abstract
def _expm_abstract(a):
    float_matrices("expm", a)
    return Aval(a.shape, a.dtype)


# Padé 13 coefficients and the 1-norm up to which it needs no scaling (Higham 2005,
# "The scaling and squaring method for the matrix exponential revisited", table 2.3)
PADE13 = np.array(
    [
        64764752532480000.0,
        32382376266240000.0,
        7771770303897600.0,
        1187353796428800.0,
        129060195264000.0,
        10559470521600.0,
        670442572800.0,
        33522128640.0,
        1323241920.0,
        40840800.0,
        960960.0,
        16380.0,
        182.0,
        1.0,
    ]
)
THETA13 = 5.371920351148152


def expm_pade13(a: np.ndarray) -> np.ndarray:
    """exp(a) of one float64 matrix: Padé 13 with scaling and squaring (Higham 2005),
    the compiled code's algorithm step by step (as accurate as SciPy's, or more once
    it squares)."""
    n = a.shape[0]
    norm1 = np.max(np.sum(np.abs(a), axis=0), initial=0.0)
    if not np.isfinite(norm1):  # inf or NaN entries
        return np.full(a.shape, np.nan)
    s = int(np.ceil(np.log2(norm1 / THETA13))) if norm1 > THETA13 else 0
    x = a / 2.0**s
    b, ident = PADE13, np.eye(n)
    x2 = x @ x
    x4 = x2 @ x2
    x6 = x4 @ x2
    u = x @ (x6 @ (b[13] * x6 + b[11] * x4 + b[9] * x2) + b[7] * x6 + b[5] * x4 + b[3] * x2 + b[1] * ident)
    v = x6 @ (b[12] * x6 + b[10] * x4 + b[8] * x2) + b[6] * x6 + b[4] * x4 + b[2] * x2 + b[0] * ident
    r = np.linalg.solve(v - u, v + u)
    for _ in range(s):
        r = r @ r
    return r


@expm_p.def_impl
def _expm_impl(a):
    # float32 too is computed in float64, then rounded
    out = np.empty(a.shape, a.dtype)
    for i in np.ndindex(a.shape[:-2]):
        out[i] = expm_pade13(a[i].astype(np.float64))
    return out


@expm_p.def_vjp
def _expm_vjp(ct, ans, a):
    # the adjoint of the Fréchet derivative L(a, .) is L(a^T, .), and L(x, e) is the
    # upper right block of expm([[x, e], [0, x]]) (Al-Mohy & Higham 2009, eq. 1.3)
    n = np.shape(a)[-1]
    at = mT(a)
    top = np.concatenate([at, ct], axis=-1)
    bottom = np.concatenate([np.zeros_like(at), at], axis=-1)
    big = _bind(expm_p, np.concatenate([top, bottom], axis=-2))
    return [big[..., :n, n:]]


# --- lu --------------------------------------------------------------------------------------

lu_p = Primitive("lu", OTHER, nout=3)
lu_p.symbolic_zeros = True  # the pivots and the permutation are integers: no cotangent
lu_p.call["cpu"] = "lib_linalg.lu({0})"
lu_p.imports["cpu"] = LIB_IMPORTS
lu_p.def_batch(leading_batch_rule(lu_p))


@lu_p.def_abstract
def _lu_abstract(a):
    float_matrices("lu", a, square=False)
    m, n = a.shape[-2:]
    lead = a.shape[:-2]
    i32 = np.dtype(np.int32)
    return [Aval(a.shape, a.dtype), Aval(lead + (min(m, n),), i32), Aval(lead + (m,), i32)]


def pivots_to_permutation(piv: np.ndarray, m: int) -> np.ndarray:
    """LAPACK's row interchanges (row j swapped with piv[j], in order) as the
    permutation `perm` with a[perm] = L U."""
    perm = np.broadcast_to(np.arange(m, dtype=np.int32), piv.shape[:-1] + (m,)).copy()
    for idx in np.ndindex(piv.shape[:-1]):
        p = perm[idx]
        for j, r in enumerate(piv[idx]):
            if not j <= r < m:
                raise ValueError(f"lu_solve: invalid pivots {piv[idx]} (piv[j] must lie in [j, {m}))")
            p[j], p[r] = p[r], p[j]
    return perm


@lu_p.def_impl
def _lu_impl(a):
    """LU with partial pivoting, packed as LAPACK's getrf: a[perm] = L U, L unit lower
    (below the diagonal of lu), U upper (on and above it); pivots 0-based."""
    import scipy.linalg

    m, n = a.shape[-2:]
    lu = np.empty(a.shape, a.dtype)
    piv = np.empty(a.shape[:-2] + (min(m, n),), np.int32)
    for i in np.ndindex(a.shape[:-2]):
        lu[i], piv[i] = scipy.linalg.lu_factor(a[i], check_finite=False)
    return [lu, piv, pivots_to_permutation(piv, m)]


@lu_p.def_vjp
def _lu_vjp(cts, ans, a):
    # JAX's lu_jvp_rule transposed (square matrices): with X = L^-1 P da U^-1,
    # d(lu) = L tril(X, -1) + triu(X) U, so ct_X = tril(L^T tril(ct, -1), -1) + triu(triu(ct) U^T)
    # and ct_a = P^T L^-T ct_X U^-T
    ct = cts[0]
    lu, _, perm = ans
    m, n = np.shape(a)[-2:]
    if m != n:
        raise NotImplementedError(
            f"the derivative of an LU factorization of a non-square matrix ({m}x{n}) is not supported"
        )
    if ct is None:
        return [None]
    strict = triangle_mask(n, lu.dtype, lower=True, strict=True)
    upper = triangle_mask(n, lu.dtype, lower=False)
    low = lu * strict + np.eye(n, dtype=lu.dtype)  # L: unit diagonal
    ct_x = np.matmul(mT(low), ct * strict) * strict + np.matmul(ct * upper, mT(lu * upper)) * upper
    y = _bind(triangular_solve_p, lu, ct_x, lower=True, trans=True, unit=True)  # L^-T ct_X
    z = mT(_bind(triangular_solve_p, lu, mT(y), lower=False, trans=False, unit=False))  # ... U^-T
    p = (np.expand_dims(perm, -1) == np.arange(n)).astype(lu.dtype)  # P[i, j] = [perm[i] == j]
    return [np.matmul(mT(p), z)]


lu_pivots_to_permutation_p = Primitive("lu_pivots_to_permutation", OTHER, differentiable=False)
lu_pivots_to_permutation_p.call["cpu"] = "lib_linalg.lu_pivots_to_permutation({0}, {n})"
lu_pivots_to_permutation_p.imports["cpu"] = LIB_IMPORTS
lu_pivots_to_permutation_p.def_batch(leading_batch_rule(lu_pivots_to_permutation_p))
lu_pivots_to_permutation_p.def_impl(lambda piv, *, n: pivots_to_permutation(piv, n))


@lu_pivots_to_permutation_p.def_abstract
def _lu_pivots_abstract(piv, *, n):
    if piv.dtype.kind not in "iu" or piv.ndim < 1 or piv.shape[-1] > n:
        raise TypeError(
            f"lu_pivots_to_permutation: pivots must be integers [..., k] with k <= {n}, got {piv}"
        )
    return Aval(piv.shape[:-1] + (n,), np.dtype(np.int32))
