"""np.linalg on traced arrays.

Five primitives carry the work (`solve`, `triangular_solve`, `slogdet` in
prims/linalg.py; `cholesky`, `eigh`, `svd`, `qr`, `expm` in prims/decompositions.py);
inv, det, pinv, lstsq, matrix_power, multi_dot, the norms... are compositions.
As in NumPy, functions broadcast over leading axes, integer operands are computed
in float64, and float16 is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..builder import bind
from ..core import Aval
from ..prims import decompositions as dec
from ..prims import linalg as la
from ..prims import shape as sh
from .common import _fail, _lift, aval_of, broadcast_shapes, normalize_axes, result_dtype
from .ufuncs import astype

# NumPy's own result types, so results unpack and print as NumPy's do
_SLOGDET = type(np.linalg.slogdet(np.eye(1)))
_EIGH = type(np.linalg.eigh(np.eye(1)))
_SVD = type(np.linalg.svd(np.eye(1)))
_QR = type(np.linalg.qr(np.eye(1)))


def linalg_dtype(name: str, *xs: Any) -> np.dtype:
    """NumPy's linalg dtype: float32 or float64; integers and booleans compute in float64."""
    avals = [aval_of(x) for x in xs]
    dt = result_dtype(*avals)
    if dt.kind in "biu":
        return np.dtype(np.float64)
    if dt not in (np.float32, np.float64):
        _fail(TypeError, f"{name}: array type {dt} is unsupported in linalg ({', '.join(map(str, avals))})")
    return dt


def matrices(name: str, *xs: Any, square: bool = True) -> list:
    """The operands as float arrays of matrices [..., m, n] of NumPy's linalg dtype."""
    dt = linalg_dtype(name, *xs)
    out = []
    for x in xs:
        a = aval_of(x)
        if a.ndim < 2:
            _fail(
                np.linalg.LinAlgError,
                f"{name}: {a.ndim}-dimensional array given. Array must be at least two-dimensional ({a})",
            )
        if square and a.shape[-1] != a.shape[-2]:
            _fail(np.linalg.LinAlgError, f"{name}: last 2 dimensions of the array must be square ({a})")
        out.append(astype(_lift(x), dt))
    return out


def mT(x):
    return np.swapaxes(x, -1, -2)


def eye_like(x, n: int | None = None):
    """Identity matrices [..., n, n] with x's leading axes and dtype."""
    a = aval_of(x)
    n = a.shape[-1] if n is None else n
    eye = np.eye(n, dtype=a.dtype)
    return bind(sh.broadcast_p, eye, shape=a.shape[:-2] + (n, n)) if a.ndim > 2 else eye  # no stacked copy


def _common_batch(name: str, a, b):
    """a [..., n, n] and b [..., n, k] broadcast to equal leading axes."""
    aa, ab = aval_of(a), aval_of(b)
    batch = broadcast_shapes([Aval(aa.shape[:-2], aa.dtype), Aval(ab.shape[:-2], ab.dtype)], name)
    return np.broadcast_to(a, batch + aa.shape[-2:]), np.broadcast_to(b, batch + ab.shape[-2:])


def solve_with(prim, name: str, a, b, **params):
    """x with op(a) x = b for `prim` (solve, triangular_solve); b a vector [n] or a
    stack of matrices [..., n, k], as NumPy 2's solve."""
    dt = linalg_dtype(name, a, b)
    (a,) = matrices(name, astype(_lift(a), dt))
    b = astype(_lift(b), dt)
    aa, ab = aval_of(a), aval_of(b)
    n = aa.shape[-1]
    if ab.ndim == 0 or ab.shape[-1 if ab.ndim == 1 else -2] != n:
        _fail(
            ValueError, f"{name}: shapes {aa} and {ab} do not match (need [..., n, n] and [n] or [..., n, k])"
        )
    if ab.ndim == 1:
        b = np.broadcast_to(np.reshape(b, (n, 1)), aa.shape[:-2] + (n, 1))
        return bind(prim, a, b, **params)[..., 0]
    a, b = _common_batch(name, a, b)
    return bind(prim, a, b, **params)


def solve(a, b):
    return solve_with(la.solve_p, "np.linalg.solve", a, b)


def inv(a):
    (a,) = matrices("np.linalg.inv", a)
    return bind(la.solve_p, a, eye_like(a))


def slogdet(a):
    (a,) = matrices("np.linalg.slogdet", a)
    return _SLOGDET(*bind(la.slogdet_p, a))


def det(a):
    sign, logdet = slogdet(a)
    return sign * np.exp(logdet)  # 0 * exp(-inf) = 0 for a singular matrix


def cholesky(a, /, *, upper=False):
    (a,) = matrices("np.linalg.cholesky", a)
    low = bind(dec.cholesky_p, a)
    return mT(low) if upper else low


def _uplo(name: str, a, UPLO):
    if UPLO not in ("L", "U", "l", "u"):
        _fail(ValueError, f"{name}: UPLO argument must be 'L' or 'U', got {UPLO!r}")
    (a,) = matrices(name, a)
    return mT(a) if UPLO in ("U", "u") else a  # the upper triangle read as a^T's lower one


def eigh(a, UPLO="L"):
    return _EIGH(*bind(dec.eigh_p, _uplo("np.linalg.eigh", a, UPLO)))


def eigvalsh(a, UPLO="L"):
    return bind(dec.eigh_p, _uplo("np.linalg.eigvalsh", a, UPLO))[0]


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    (a,) = matrices("np.linalg.svd", a, square=False)
    m, n = aval_of(a).shape[-2:]
    if hermitian:
        _fail(NotImplementedError, "np.linalg.svd: hermitian=True is not supported (use the default False)")
    if compute_uv and full_matrices and m != n:
        _fail(
            NotImplementedError,
            f"np.linalg.svd: full_matrices=True of a non-square matrix ({aval_of(a)}) is not supported; "
            "pass full_matrices=False",
        )
    u, s, vt = bind(dec.svd_p, a)
    return _SVD(u, s, vt) if compute_uv else s


def svdvals(x, /):
    return svd(x, compute_uv=False)


def qr(a, mode="reduced"):
    (a,) = matrices("np.linalg.qr", a, square=False)
    m, n = aval_of(a).shape[-2:]
    if mode not in ("reduced", "r", "complete") or (mode == "complete" and m > n):
        _fail(
            NotImplementedError,
            f"np.linalg.qr: mode={mode!r} is not supported for {aval_of(a)} (use 'reduced' or 'r')",
        )
    q, r = bind(dec.qr_p, a)
    return r if mode == "r" else _QR(q, r)


def _cutoff(s, rtol):
    """Singular values above rtol * the largest (rtol: a number or per matrix)."""
    rtol = np.expand_dims(np.asarray(rtol, aval_of(s).dtype), -1) if np.ndim(rtol) else rtol
    return s > rtol * np.max(s, axis=-1, keepdims=True)


def _pinv(a, rtol):
    u, s, vt = bind(dec.svd_p, a)
    keep = _cutoff(s, rtol)
    s_inv = np.where(keep, 1 / np.where(keep, s, 1), 0)  # no 1/0 even in the unused branch
    return np.matmul(mT(vt) * np.expand_dims(s_inv, -2), mT(u))


_NO_VALUE = object()


def pinv(a, rcond=None, hermitian=False, *, rtol=_NO_VALUE):
    (a,) = matrices("np.linalg.pinv", a, square=False)
    if hermitian:
        _fail(NotImplementedError, "np.linalg.pinv: hermitian=True is not supported")
    if rcond is None:  # NumPy 2: rcond, else rtol, else 1e-15 (rtol=None: max(m, n) * eps)
        if rtol is _NO_VALUE:
            rcond = 1e-15
        elif rtol is None:
            rcond = max(aval_of(a).shape[-2:]) * np.finfo(aval_of(a).dtype).eps
        else:
            rcond = rtol
    return _pinv(a, rcond)


def lstsq(a, b, rcond=None):
    """NumPy's lstsq as pinv(a, rcond) @ b: singular values at most rcond * the
    largest count as zero (rcond=None: max(m, n) * eps; negative: eps), as LAPACK's
    gelsd. The residuals are computed whenever m > n; NumPy returns an empty array
    for a rank-deficient a instead (a shape that depends on values)."""
    name = "np.linalg.lstsq"
    vector = aval_of(b).ndim == 1
    a, b = matrices(name, a, np.expand_dims(_lift(b), -1) if vector else b, square=False)
    (m, n), mb = aval_of(a).shape[-2:], aval_of(b).shape[-2]
    if aval_of(a).ndim != 2 or aval_of(b).ndim != 2 or mb != m:
        _fail(
            np.linalg.LinAlgError,
            f"{name}: incompatible dimensions {aval_of(a)} and {aval_of(b)} (need [m, n] and [m] or [m, k])",
        )
    eps = np.finfo(aval_of(a).dtype).eps
    rcond = max(m, n) * eps if rcond is None else (eps if rcond < 0 else rcond)
    u, s, vt = bind(dec.svd_p, a)
    keep = _cutoff(s, rcond)
    s_inv = np.where(keep, 1 / np.where(keep, s, 1), 0)
    x = np.matmul(mT(vt) * s_inv, np.matmul(mT(u), b))
    if m > n:
        resid = np.sum((b - np.matmul(a, x)) ** 2, axis=0)
    else:
        resid = np.zeros((0,), aval_of(a).dtype)
    rank = np.sum(keep)
    return (x[:, 0], resid, rank, s) if vector else (x, resid, rank, s)


def matrix_power(a, n):
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        _fail(TypeError, f"np.linalg.matrix_power: exponent must be an integer, got {type(n).__name__}")
    av = aval_of(a)
    if av.ndim < 2 or av.shape[-1] != av.shape[-2]:
        _fail(
            np.linalg.LinAlgError,
            f"np.linalg.matrix_power: last 2 dimensions of the array must be square ({av})",
        )
    a = _lift(a)
    if n == 0:
        return bind(sh.broadcast_p, np.eye(av.shape[-1], dtype=av.dtype), shape=av.shape)
    if n < 0:
        a, n = inv(a), -n
    result, power = None, a  # binary powering, as NumPy
    while n:
        if n & 1:
            result = power if result is None else np.matmul(result, power)
        n >>= 1
        if n:
            power = np.matmul(power, power)
    return result


def multi_dot(arrays, *, out=None):
    if out is not None:
        _fail(NotImplementedError, "np.linalg.multi_dot: out= is not supported")
    xs = [_lift(x) for x in arrays]
    if len(xs) < 2:
        _fail(ValueError, "np.linalg.multi_dot: expecting at least two arrays")
    first, last = aval_of(xs[0]).ndim == 1, aval_of(xs[-1]).ndim == 1
    if first:
        xs[0] = np.reshape(xs[0], (1, -1))
    if last:
        xs[-1] = np.reshape(xs[-1], (-1, 1))
    for x in xs:
        if aval_of(x).ndim != 2:
            _fail(
                ValueError,
                f"np.linalg.multi_dot: {aval_of(x).ndim}-dimensional array given, must be 2-dimensional",
            )
    r = _chain(
        xs, _chain_order([aval_of(x).shape[0] for x in xs] + [aval_of(xs[-1]).shape[1]]), 0, len(xs) - 1
    )
    if first:
        r = r[0]
    if last:
        r = r[..., 0]
    return r


def _chain_order(p: list[int]) -> list[list[int]]:
    """The cheapest parenthesization of a matrix chain with dimensions p (as NumPy's
    _multi_dot_matrix_chain_order: the classic dynamic program)."""
    n = len(p) - 1
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = None
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + p[i] * p[k + 1] * p[j + 1]
                if cost[i][j] is None or c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k
    return split


def _chain(xs, split, i, j):
    if i == j:
        return xs[i]
    k = split[i][j]
    return np.matmul(_chain(xs, split, i, k), _chain(xs, split, k + 1, j))


# --- norms ---------------------------------------------------------------------------------


def _vector_norm(x, ord, axis, keepdims):
    ax = np.abs(x)
    if ord is None or ord == 2:
        return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))
    if isinstance(ord, str):
        _fail(ValueError, f"np.linalg.norm: invalid norm order {ord!r} for vectors")
    if ord == np.inf:
        return np.max(ax, axis=axis, keepdims=keepdims)
    if ord == -np.inf:
        return np.min(ax, axis=axis, keepdims=keepdims)
    if ord == 0:  # the number of nonzero entries
        return np.sum(astype(x != 0, aval_of(x).dtype), axis=axis, keepdims=keepdims)
    if ord == 1:
        return np.sum(ax, axis=axis, keepdims=keepdims)
    p = aval_of(x).dtype.type(ord)
    return np.sum(ax**p, axis=axis, keepdims=keepdims) ** (1 / p)


def _svd_norm(x, row, col, reduce):
    s = bind(dec.svd_p, astype(np.moveaxis(x, (row, col), (-2, -1)), linalg_dtype("np.linalg.norm", x)))[1]
    return reduce(s, axis=-1)


def _matrix_norm(x, ord, row, col):
    ax = np.abs(x)
    if ord is None or ord in ("fro", "f"):
        return np.sqrt(np.sum(x * x, axis=(row, col)))
    if ord == "nuc":
        return _svd_norm(x, row, col, np.sum)
    if ord in (2, -2):
        return _svd_norm(x, row, col, np.max if ord == 2 else np.min)
    if ord in (1, -1):  # the largest (smallest) column sum
        red = np.max if ord == 1 else np.min
        return red(np.sum(ax, axis=row), axis=col - (col > row))
    if ord in (np.inf, -np.inf):  # the largest (smallest) row sum
        red = np.max if ord == np.inf else np.min
        return red(np.sum(ax, axis=col), axis=row - (row > col))
    _fail(ValueError, f"np.linalg.norm: invalid norm order {ord!r} for matrices")


def norm(x, ord=None, axis=None, keepdims=False):
    x = _lift(x)
    a = aval_of(x)
    if a.dtype.kind != "f":  # NumPy computes the norm of integers in float64
        x = astype(x, np.float64)
    nd = a.ndim
    if axis is None:
        if ord is None or (ord == 2 and nd == 1) or (ord in ("f", "fro") and nd == 2):
            return np.sqrt(np.sum(x * x, axis=None, keepdims=keepdims))
        if nd not in (1, 2):
            _fail(ValueError, f"np.linalg.norm: improper number of dimensions to norm ({a} with ord={ord!r})")
        axis = tuple(range(nd))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if len(axes) == 1:
        return _vector_norm(x, ord, normalize_axes(axes, nd, "np.linalg.norm"), keepdims)
    if len(axes) != 2:
        _fail(ValueError, f"np.linalg.norm: improper number of dimensions to norm (axis={axis!r})")
    for ax_ in axes:
        normalize_axes(ax_, nd, "np.linalg.norm")
    row, col = (int(ax_) % nd for ax_ in axes)
    if row == col:
        _fail(ValueError, f"np.linalg.norm: duplicate axes given (axis={axis!r})")
    r = _matrix_norm(x, ord, row, col)
    if keepdims:
        r = np.expand_dims(r, (row, col))
    return r


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    x = _lift(x)
    if axis is None:
        r = norm(np.reshape(x, (-1,)), ord=ord)
        return np.reshape(r, (1,) * aval_of(x).ndim) if keepdims else r
    if isinstance(axis, tuple) and len(axis) > 1:  # several axes: one vector each
        nd = aval_of(x).ndim
        axes = normalize_axes(axis, nd, "np.linalg.vector_norm")
        rest = [i for i in range(nd) if i not in axes]
        y = np.transpose(x, rest + list(axes))
        y = np.reshape(y, tuple(aval_of(y).shape[: len(rest)]) + (-1,))
        r = norm(y, ord=ord, axis=-1)
        return np.expand_dims(r, axes) if keepdims else r
    return norm(x, ord=ord, axis=axis, keepdims=keepdims)


def matrix_norm(x, /, *, keepdims=False, ord="fro"):
    return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


def cond(x, p=None):
    (x,) = matrices("np.linalg.cond", x, square=p not in (None, 2, -2))
    if p in (None, 2, -2):
        s = bind(dec.svd_p, x)[1]
        return np.max(s, axis=-1) / np.min(s, axis=-1) if p != -2 else np.min(s, axis=-1) / np.max(s, axis=-1)
    return norm(x, p, axis=(-2, -1)) * norm(inv(x), p, axis=(-2, -1))


def matrix_rank(A, tol=None, hermitian=False, *, rtol=None):
    a = aval_of(A)
    if a.ndim < 2:
        return np.sum(np.not_equal(A, 0)) * 1  # as NumPy: nonzero or not
    if hermitian:
        _fail(NotImplementedError, "np.linalg.matrix_rank: hermitian=True is not supported")
    (x,) = matrices("np.linalg.matrix_rank", A, square=False)
    s = bind(dec.svd_p, x)[1]
    if tol is None:
        rtol = max(a.shape[-2:]) * np.finfo(aval_of(x).dtype).eps if rtol is None else rtol
        tol = np.max(s, axis=-1) * rtol
    return np.sum(s > np.expand_dims(tol, -1), axis=-1)


def _complex_unsupported(name: str):
    def fn(*args, **kwargs):
        _fail(
            NotImplementedError,
            f"np.linalg.{name}: general eigenvalues are complex, and tracediff does not support complex "
            "numbers yet; for a symmetric matrix use np.linalg.eigh / eigvalsh",
        )

    return fn


FUNCTIONS: dict = {
    np.linalg.solve: solve,
    np.linalg.inv: inv,
    np.linalg.det: det,
    np.linalg.slogdet: slogdet,
    np.linalg.cholesky: cholesky,
    np.linalg.eigh: eigh,
    np.linalg.eigvalsh: eigvalsh,
    np.linalg.svd: svd,
    np.linalg.svdvals: svdvals,
    np.linalg.qr: qr,
    np.linalg.pinv: pinv,
    np.linalg.lstsq: lstsq,
    np.linalg.matrix_power: matrix_power,
    np.linalg.multi_dot: multi_dot,
    np.linalg.norm: norm,
    np.linalg.vector_norm: vector_norm,
    np.linalg.matrix_norm: matrix_norm,
    np.linalg.cond: cond,
    np.linalg.matrix_rank: matrix_rank,
    np.linalg.eig: _complex_unsupported("eig"),
    np.linalg.eigvals: _complex_unsupported("eigvals"),
}
