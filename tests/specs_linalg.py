"""Registry specs of the linear-algebra primitives (solve, triangular_solve, slogdet,
cholesky, eigh, svd, qr, expm), one shape each, several front-end functions per
spec. Matrices are well conditioned and spectra well separated, so finite
differences (and the eigen/singular-vector derivatives) are accurate in float32.
Outputs whose sign LAPACK chooses (eigen- and singular vectors) enter as products
u[i, j] * u[0, j], which do not depend on it."""

from __future__ import annotations

import numpy as np
import scipy.linalg
from spec_util import Spec, normal


def _mT(x):
    return np.swapaxes(x, -1, -2)


def wellcond(rng, dt, shape):
    """R / 2 + n I: far from singular, no small pivot."""
    return (0.5 * rng.standard_normal(shape) + shape[-1] * np.eye(shape[-1])).astype(dt)


def spd(rng, dt, shape):
    r = rng.standard_normal(shape)
    return (r @ _mT(r) + shape[-1] * np.eye(shape[-1])).astype(dt)


def _orthonormal(rng, shape):
    return np.linalg.qr(rng.standard_normal(shape))[0]


def spread(rng, dt, shape):
    """Symmetric, eigenvalues about 1, 2.5, 4, ... (gaps well above finite-difference steps)."""
    n = shape[-1]
    q = _orthonormal(rng, shape)
    w = 1.0 + 1.5 * np.arange(n) + 0.2 * rng.uniform(size=shape[:-1])
    return ((q * np.expand_dims(w, -2)) @ _mT(q)).astype(dt)


def spread_svd(rng, dt, shape):
    """[..., m, n] with singular values about 1, 2.5, 4, ..."""
    m, n = shape[-2:]
    k = min(m, n)
    u = _orthonormal(rng, shape[:-2] + (m, k))
    v = _orthonormal(rng, shape[:-2] + (n, k))
    s = 1.0 + 1.5 * np.arange(k) + 0.2 * rng.uniform(size=shape[:-2] + (k,))
    return ((u * np.expand_dims(s, -2)) @ _mT(v)).astype(dt)


def scaled(rng, dt, shape):
    return (0.4 * rng.standard_normal(shape)).astype(dt)


def _signless(u, axis):
    """u * (u's first row (axis=-2) or column (axis=-1)): free of each vector's sign."""
    return u * (u[..., :1, :] if axis == -2 else u[..., :, :1])


def _svd_parts(a):
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    return [_signless(u, -2).ravel(), s.ravel(), _signless(vt, -1).ravel()]


def _solve(a, b):
    return np.linalg.solve(a, b) + np.linalg.inv(a) + np.linalg.solve(a, b[0, :, 0])[..., None]


def _triangular(a, b):
    lo = scipy.linalg.solve_triangular(a, b, lower=True)
    return lo + scipy.linalg.solve_triangular(a, b, trans=1, unit_diagonal=True)


def _slogdet(a):
    return np.linalg.slogdet(a)[1] + np.linalg.det(a)


def _eigh(a):
    w, _ = np.linalg.eigh(a)
    _, v = np.linalg.eigh(a, UPLO="U")
    return w[..., None] + _signless(v, -2)


def _svd(a):
    return np.concatenate(_svd_parts(a) + _svd_parts(_mT(a)) + [np.linalg.svd(a, compute_uv=False)])


def _qr(a):
    q, r = np.linalg.qr(a)
    sign = np.sign(np.diagonal(r, axis1=-2, axis2=-1))  # Householder's signs jump: the
    return np.concatenate([q * sign[..., None, :], r * sign[..., :, None]], axis=-2)  # QR with R_ii > 0


def pivoting(rng, dt, shape):
    """Well conditioned, rows reversed: LU with partial pivoting swaps rows."""
    return np.flip(wellcond(rng, dt, shape), -2).copy()


def pivots(rng, dt, shape):
    """Valid LAPACK pivots: piv[j] in [j, n)."""
    n = shape[-1]
    return np.stack([rng.integers(j, n, shape[:-1]) for j in range(n)], -1).astype(np.int32)


_LU = wellcond(np.random.default_rng(0), np.float64, (3, 3))


def _lu(a, b):
    c = scipy.linalg.lu_factor(a)
    p, low, up = scipy.linalg.lu(a)
    solved = scipy.linalg.lu_solve(c, b) + scipy.linalg.lu_solve(c, b, trans=1)
    return c[0] + solved + p @ low + up


def _expm(a):
    # the second one squares (norm > 5.4), in float64 (SciPy's float32 squaring loses
    # more than 1e-6); a shift by 6 I keeps its relative condition that of expm(a)
    return scipy.linalg.expm(a) + scipy.linalg.expm(a.astype(np.float64) + 6.0 * np.eye(3))


SPECS = [
    Spec("solve", _solve, wellcond, normal, shapes=((2, 3, 3),)),
    Spec("triangular_solve", _triangular, wellcond, normal, shapes=((2, 3, 3),)),
    Spec("slogdet", _slogdet, wellcond, shapes=((3, 3),)),
    Spec("cholesky", np.linalg.cholesky, spd, shapes=((2, 3, 3),)),
    Spec("eigh", _eigh, spread, shapes=((3, 3),)),
    Spec("svd", _svd, spread_svd, shapes=((4, 3),)),
    Spec("qr", _qr, spread_svd, shapes=((4, 3),)),
    Spec("expm", _expm, scaled, shapes=((3, 3),)),
    Spec("lu", _lu, pivoting, normal, shapes=((3, 3),)),
    Spec(
        "lu_pivots_to_permutation",
        lambda piv: scipy.linalg.lu_solve((_LU, piv), np.eye(3)),
        pivots,
        shapes=((3,),),
        diff=False,
    ),
]
