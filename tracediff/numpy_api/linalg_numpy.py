"""np.linalg on traced arrays.

The primitives of prims/linalg.py (`solve`, `triangular_solve`, `slogdet`) and
prims/decompositions.py (`cholesky`, `eigh`, `svd`, `qr`, `lu`, `expm`) carry the
work; inv, det, pinv, lstsq, matrix_power, multi_dot, the norms... are compositions.
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
from ..prims.linalg import mT
from .common import _fail, _lift, aval_of, broadcast_shapes, result_dtype
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
    if dt.kind == "c":
        _fail(TypeError, f"{name}: complex matrices are not supported yet ({', '.join(map(str, avals))})")
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
    if upper:  # NumPy factors the upper triangle: a^T's lower one, U = L(a^T)^T
        return mT(bind(dec.cholesky_p, mT(a)))
    return bind(dec.cholesky_p, a)


def _uplo(name: str, a, UPLO):
    if UPLO not in ("L", "U", "l", "u"):
        _fail(ValueError, f"{name}: UPLO argument must be 'L' or 'U', got {UPLO!r}")
    (a,) = matrices(name, a)
    return mT(a) if UPLO in ("U", "u") else a  # the upper triangle read as a^T's lower one


def eigh(a, UPLO="L"):
    return _EIGH(*bind(dec.eigh_p, _uplo("np.linalg.eigh", a, UPLO)))


def eigvalsh(a, UPLO="L"):
    return bind(dec.eigh_p, _uplo("np.linalg.eigvalsh", a, UPLO))[0]


def svd_parts(a, hermitian: bool = False):
    """(u, s, vt) of float matrices a; `hermitian`: from eigh, as NumPy (|w| in
    decreasing order, the eigenvalues' signs moved into vt)."""
    if not hermitian:
        return bind(dec.svd_p, a)
    w, v = bind(dec.eigh_p, a)
    order = np.flip(np.argsort(np.abs(w), axis=-1), axis=-1)
    w = np.take_along_axis(w, order, axis=-1)
    u = np.take_along_axis(v, np.expand_dims(order, -2), axis=-1)
    return u, np.abs(w), mT(u * np.expand_dims(np.sign(w), -2))


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    (a,) = matrices("np.linalg.svd", a, square=bool(hermitian))
    m, n = aval_of(a).shape[-2:]
    if compute_uv and full_matrices and m != n:
        _fail(
            NotImplementedError,
            f"np.linalg.svd: full_matrices=True of a non-square matrix ({aval_of(a)}) is not supported; "
            "pass full_matrices=False",
        )
    u, s, vt = svd_parts(a, hermitian)
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
    if aval_of(s).shape[-1] == 0:  # no singular values (an empty matrix)
        return s > 0
    rtol = np.expand_dims(np.asarray(rtol, aval_of(s).dtype), -1) if np.ndim(rtol) else rtol
    return s > rtol * np.max(s, axis=-1, keepdims=True)


def _pinv(a, rtol, hermitian=False):
    u, s, vt = svd_parts(a, hermitian)
    keep = _cutoff(s, rtol)
    s_inv = np.where(keep, 1 / np.where(keep, s, 1), 0)  # no 1/0 even in the unused branch
    return np.matmul(mT(vt) * np.expand_dims(s_inv, -2), mT(u))


_NO_VALUE = object()


def pinv(a, rcond=None, hermitian=False, *, rtol=_NO_VALUE):
    (a,) = matrices("np.linalg.pinv", a, square=bool(hermitian))
    if rcond is None:  # NumPy 2: rcond, else rtol, else 1e-15 (rtol=None: max(m, n) * eps)
        if rtol is _NO_VALUE:
            rcond = 1e-15
        elif rtol is None:
            rcond = max(aval_of(a).shape[-2:]) * np.finfo(aval_of(a).dtype).eps
        else:
            rcond = rtol
    return _pinv(a, rcond, hermitian)


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


# --- the array API's names in np.linalg, and tensor solves -------------------------------


def matrix_transpose(x, /):
    if aval_of(x).ndim < 2:
        _fail(
            ValueError,
            f"np.linalg.matrix_transpose: the input must be at least 2-dimensional, got {aval_of(x)}",
        )
    return mT(_lift(x))


def outer(x1, x2, /):
    if aval_of(x1).ndim != 1 or aval_of(x2).ndim != 1:
        _fail(ValueError, f"np.linalg.outer: inputs must be vectors, got {aval_of(x1)} and {aval_of(x2)}")
    return np.outer(x1, x2)


def tensorsolve(a, b, axes=None):
    """x with tensordot(a, x, x.ndim) = b, as one solve of the flattened system (as NumPy)."""
    a, b = _lift(a), _lift(b)
    an, bn = aval_of(a).ndim, aval_of(b).ndim
    if axes is not None:
        order = [k for k in range(an) if k not in [int(ax) % an for ax in axes]]
        a = np.transpose(a, order + [int(ax) % an for ax in axes])
    shape = aval_of(a).shape[bn:]
    size = int(np.prod(shape, dtype=np.int64))
    if int(np.prod(aval_of(a).shape, dtype=np.int64)) != size * size:
        _fail(
            np.linalg.LinAlgError,
            f"np.linalg.tensorsolve: input arrays must satisfy prod(a.shape[b.ndim:]) ** 2 == a.size ({aval_of(a)}, {aval_of(b)})",
        )
    return np.reshape(solve(np.reshape(a, (size, size)), np.reshape(b, (-1,))), shape)


def tensorinv(a, ind=2):
    if ind <= 0:
        _fail(ValueError, f"np.linalg.tensorinv: invalid ind argument {ind}")
    a = _lift(a)
    shape = aval_of(a).shape
    size = int(np.prod(shape[ind:], dtype=np.int64))
    return np.reshape(inv(np.reshape(a, (size, -1))), shape[ind:] + shape[:ind])


def _complex_unsupported(name: str):
    def fn(*args, **kwargs):
        _fail(
            NotImplementedError,
            f"np.linalg.{name} is not supported (general eigenvalues are complex); "
            "for a symmetric matrix use np.linalg.eigh / eigvalsh",
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
    np.linalg.tensorsolve: tensorsolve,
    np.linalg.tensorinv: tensorinv,
    np.linalg.matrix_transpose: matrix_transpose,
    np.linalg.outer: outer,
    np.linalg.matmul: lambda x1, x2, /: np.matmul(x1, x2),
    np.linalg.tensordot: lambda x1, x2, /, *, axes=2: np.tensordot(x1, x2, axes=axes),
    np.linalg.trace: lambda x, /, *, offset=0, dtype=None: np.trace(x, offset, -2, -1, dtype),
    np.linalg.diagonal: lambda x, /, *, offset=0: np.diagonal(x, offset, -2, -1),
    np.linalg.vecdot: lambda x1, x2, /, *, axis=-1: np.sum(np.multiply(x1, x2), axis=axis),
    np.linalg.cross: lambda x1, x2, /, *, axis=-1: np.cross(x1, x2, axis=axis),
    np.linalg.eig: _complex_unsupported("eig"),
    np.linalg.eigvals: _complex_unsupported("eigvals"),
}
