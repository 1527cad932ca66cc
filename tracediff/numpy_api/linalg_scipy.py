"""scipy.linalg on traced arrays. SciPy's functions call np.asarray on their
arguments, so NumPy cannot dispatch them; each is registered by path
(`register_form`): while tracing, a call of scipy.linalg.solve_triangular runs
`solve_triangular` below. Matrices broadcast over leading axes as in np.linalg;
a right-hand side b is a vector [n] or a stack of matrices [..., n, k].
"""

from __future__ import annotations

import numpy as np

from ..builder import bind
from ..control.arrays import register_form
from ..prims import decompositions as dec
from ..prims import linalg as la
from .common import _fail, _lift, aval_of
from .linalg_numpy import _pinv, det, eye_like, lstsq, matrices, mT, solve_with, svd
from .ufuncs import astype

_TRANS = {0: False, "N": False, 1: True, "T": True, 2: True, "C": True}


def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False, check_finite=True):
    if trans not in _TRANS:
        _fail(
            ValueError,
            f"scipy.linalg.solve_triangular: trans must be 0, 1, 2, 'N', 'T' or 'C', got {trans!r}",
        )
    params = dict(lower=bool(lower), trans=_TRANS[trans], unit=bool(unit_diagonal))
    return solve_with(la.triangular_solve_p, "scipy.linalg.solve_triangular", a, b, **params)


def _lower_factor(name, a, lower):
    """The Cholesky factor L of the symmetric matrix in a's lower (or upper) triangle."""
    (a,) = matrices(name, a)
    return bind(dec.cholesky_p, a if lower else mT(a))


def cholesky(a, lower=False, overwrite_a=False, check_finite=True):
    low = _lower_factor("scipy.linalg.cholesky", a, lower)
    return low if lower else mT(low)  # SciPy's default: upper, U^T U = a


def cho_factor(a, lower=False, overwrite_a=False, check_finite=True):
    """(c, lower) as SciPy's; c's other triangle holds zeros (SciPy: unspecified values)."""
    return cholesky(a, lower=lower), lower


def cho_solve(c_and_lower, b, overwrite_b=False, check_finite=True):
    c, lower = c_and_lower
    name = "scipy.linalg.cho_solve"
    # c = L: L L^T x = b; c = U: U^T U x = b (only c's triangle is read, as SciPy)
    y = solve_with(la.triangular_solve_p, name, c, b, lower=bool(lower), trans=not lower, unit=False)
    return solve_with(la.triangular_solve_p, name, c, y, lower=bool(lower), trans=bool(lower), unit=False)


def _symmetric(a, lower):
    """The symmetric matrix SciPy's assume_a='sym' reads: a's lower (upper) triangle."""
    t = a if lower else mT(a)
    n = aval_of(t).shape[-1]
    low = t * la.triangle_mask(n, aval_of(t).dtype, lower=True)
    return low + mT(low * la.triangle_mask(n, aval_of(t).dtype, lower=True, strict=True))


def solve(
    a,
    b,
    lower=False,
    overwrite_a=False,
    overwrite_b=False,
    check_finite=True,
    assume_a=None,
    transposed=False,
):
    name = "scipy.linalg.solve"
    (a,) = matrices(name, _lift(a))
    if transposed:
        a = mT(a)
    kind = "gen" if assume_a in (None, "gen", "general") else assume_a
    if kind == "gen":
        return solve_with(la.solve_p, name, a, b)
    if kind in ("sym", "her", "symmetric", "hermitian"):
        return solve_with(la.solve_p, name, _symmetric(a, lower), b)
    if kind in ("pos", "positive definite"):
        return cho_solve((cholesky(a, lower=lower), lower), b)
    if kind in ("lower triangular", "upper triangular"):
        return solve_with(la.triangular_solve_p, name, a, b, lower=kind[0] == "l", trans=False, unit=False)
    if kind == "diagonal":
        d = np.diagonal(a, axis1=-2, axis2=-1)
        return b / d if aval_of(b).ndim == 1 else b / np.expand_dims(d, -1)
    _fail(NotImplementedError, f"{name}: assume_a={assume_a!r} is not supported")


def inv(a, overwrite_a=False, check_finite=True, *, assume_a=None, lower=False):
    (a,) = matrices("scipy.linalg.inv", a)
    return solve(a, eye_like(a), lower=lower, assume_a=assume_a)


def expm(A):
    (a,) = matrices("scipy.linalg.expm", A)
    return bind(dec.expm_p, a)


def eigh(a, b=None, *, lower=True, eigvals_only=False, **kw):
    name = "scipy.linalg.eigh"
    if b is not None or any(
        v is not None for k, v in kw.items() if k in ("subset_by_index", "subset_by_value")
    ):
        _fail(NotImplementedError, f"{name}: the generalized problem (b=) and subsets are not supported")
    (a,) = matrices(name, a)
    w, v = bind(dec.eigh_p, a if lower else mT(a))
    return w if eigvals_only else (w, v)


def scipy_svd(
    a, full_matrices=True, compute_uv=True, overwrite_a=False, check_finite=True, lapack_driver="gesdd"
):
    return svd(a, full_matrices=full_matrices, compute_uv=compute_uv)


def qr(a, overwrite_a=False, lwork=None, mode="full", pivoting=False, check_finite=True):
    name = "scipy.linalg.qr"
    (a,) = matrices(name, a, square=False)
    m, n = aval_of(a).shape[-2:]
    if pivoting or mode not in ("economic", "r", "full") or (mode == "full" and m > n):
        _fail(
            NotImplementedError,
            f"{name}: mode={mode!r} (pivoting={pivoting}) of {aval_of(a)} is not supported; use mode='economic'",
        )
    q, r = bind(dec.qr_p, a)
    return (r,) if mode == "r" else (q, r)


def pinv(a, *, atol=None, rtol=None, return_rank=False, check_finite=True):
    name = "scipy.linalg.pinv"
    if atol is not None or return_rank:
        _fail(NotImplementedError, f"{name}: atol= and return_rank= are not supported")
    (a,) = matrices(name, a, square=False)
    if rtol is None:
        rtol = max(aval_of(a).shape[-2:]) * np.finfo(aval_of(a).dtype).eps
    return _pinv(a, rtol)


def scipy_lstsq(a, b, cond=None, overwrite_a=False, overwrite_b=False, check_finite=True, lapack_driver=None):
    return lstsq(a, b, rcond=cond)


def lu_factor(a, overwrite_a=False, check_finite=True):
    (a,) = matrices("scipy.linalg.lu_factor", a, square=False)
    lu, piv, _ = bind(dec.lu_p, a)
    return lu, piv


def _rows(x, perm, inverse=False):
    """x[..., perm, :] (P x), or with `inverse` P^T x."""
    n = aval_of(x).shape[-2]
    p = astype(np.expand_dims(perm, -1) == np.arange(n), aval_of(x).dtype)  # P[i, j] = [perm[i] == j]
    return np.matmul(mT(p) if inverse else p, x)


def lu_solve(lu_and_piv, b, trans=0, overwrite_b=False, check_finite=True):
    name = "scipy.linalg.lu_solve"
    lu, piv = lu_and_piv
    if trans not in _TRANS:
        _fail(ValueError, f"{name}: trans must be 0, 1, 2, 'N', 'T' or 'C', got {trans!r}")
    (lu,) = matrices(name, lu)
    n = aval_of(lu).shape[-1]
    if aval_of(piv).shape != aval_of(lu).shape[:-1]:
        _fail(ValueError, f"{name}: pivots {aval_of(piv)} do not match the factor {aval_of(lu)}")
    perm = bind(dec.lu_pivots_to_permutation_p, astype(_lift(piv), np.int32), n=n)
    vector = aval_of(b).ndim == 1
    b = np.expand_dims(_lift(b), -1) if vector else b
    if not _TRANS[trans]:  # a = P^T L U: x = U^-1 L^-1 P b
        y = solve_with(la.triangular_solve_p, name, lu, _rows(b, perm), lower=True, trans=False, unit=True)
        x = solve_with(la.triangular_solve_p, name, lu, y, lower=False, trans=False, unit=False)
    else:  # a^T = U^T L^T P: x = P^T L^-T U^-T b
        y = solve_with(la.triangular_solve_p, name, lu, b, lower=False, trans=True, unit=False)
        x = _rows(
            solve_with(la.triangular_solve_p, name, lu, y, lower=True, trans=True, unit=True), perm, True
        )
    return x[..., 0] if vector else x


def lu(a, permute_l=False, overwrite_a=False, check_finite=True, p_indices=False):
    """(p, l, u) with a = p @ l @ u ((pl, u) with permute_l; p as row indices with
    p_indices: a = l[p] @ u), as SciPy's."""
    (a,) = matrices("scipy.linalg.lu", a, square=False)
    m, n = aval_of(a).shape[-2:]
    k = min(m, n)
    packed, _, perm = bind(dec.lu_p, a)
    low = packed[..., :, :k] * la.triangle_mask(max(m, k), aval_of(a).dtype, lower=True, strict=True)[:m, :k]
    low = low + np.eye(m, k, dtype=aval_of(a).dtype)
    up = packed[..., :k, :] * la.triangle_mask(max(k, n), aval_of(a).dtype, lower=False)[:k, :n]
    if permute_l:
        return _rows(low, perm, True), up
    if p_indices:
        return astype(np.argsort(perm, axis=-1), np.int32), low, up
    return mT(astype(np.expand_dims(perm, -1) == np.arange(m), aval_of(a).dtype)), low, up


def _no_sqrtm(A, *args, **kwargs):
    _fail(
        NotImplementedError,
        "scipy.linalg.sqrtm is not supported on traced arrays (for a symmetric positive definite matrix, "
        "use V @ np.diag(np.sqrt(w)) @ V.T with w, V = np.linalg.eigh(A))",
    )


for _name, _form in {
    "solve_triangular": solve_triangular,
    "cho_factor": cho_factor,
    "cho_solve": cho_solve,
    "cholesky": cholesky,
    "solve": solve,
    "inv": inv,
    "det": lambda a, overwrite_a=False, check_finite=True: det(a),
    "expm": expm,
    "eigh": eigh,
    "svd": scipy_svd,
    "qr": qr,
    "pinv": pinv,
    "lstsq": scipy_lstsq,
    "lu_factor": lu_factor,
    "lu_solve": lu_solve,
    "lu": lu,
    "sqrtm": _no_sqrtm,
}.items():
    register_form(f"scipy.linalg.{_name}", _form)
