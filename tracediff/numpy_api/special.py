"""scipy.special on traced arrays.

Ufuncs map by name onto primitives (`SCIPY_UFUNCS`) or compositions of NumPy
calls (`SCIPY_COMPOSITES`, run in the ufunc's loop dtype); the functions that
are not ufuncs (logsumexp, softmax, polygamma...) call np.asarray inside SciPy,
so they are registered as library forms (`register_form`). Importing this module
also registers the scipy.stats distributions (`stats.py`) and scipy.signal's
convolutions (`signal.py`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..builder import innermost_builder
from ..control.arrays import register_form
from ..core import Aval
from ..prims import special as sp
from . import scipy_signal, stats  # noqa: F401  (they register their forms)
from .common import _emit, _fail, aval_of, broadcast_shapes, normalize_axes, prepare, result_dtype, traced
from .ufuncs import SCIPY_COMPOSITES, SCIPY_UFUNCS, stop_gradient

FUNCTIONS: dict = {}
VIEW_FUNCS: set = set()

# the primitives of scipy.special's ufuncs, by the ufunc's __name__ (digamma is psi, jn is jv)
SCIPY_UFUNCS.update(
    {
        "erf": sp.erf_p,
        "erfc": sp.erfc_p,
        "erfcx": sp.erfcx_p,
        "erfinv": sp.erfinv_p,
        "erfcinv": sp.erfcinv_p,
        "ndtr": sp.ndtr_p,
        "ndtri": sp.ndtri_p,
        "log_ndtr": sp.log_ndtr_p,
        "gammaln": sp.gammaln_p,
        "psi": sp.digamma_p,
        "gamma": sp.gamma_p,
        "gammasgn": sp.gammasgn_p,
        "gammainc": sp.gammainc_p,
        "gammaincc": sp.gammaincc_p,
        "beta": sp.beta_p,
        "betaln": sp.betaln_p,
        "betainc": sp.betainc_p,
        "stdtr": sp.stdtr_p,
        "xlogy": sp.xlogy_p,
        "xlog1py": sp.xlog1py_p,
        "i0": sp.i0_p,
        "i1": sp.i1_p,
        "i0e": sp.i0e_p,
        "i1e": sp.i1e_p,
        "iv": sp.iv_p,
        "ive": sp.ive_p,
        "jv": sp.jv_p,
        "yv": sp.yv_p,
        "j0": sp.j0_p,
        "j1": sp.j1_p,
        "y0": sp.y0_p,
        "y1": sp.y1_p,
    }
)


def _logit(x):
    # SciPy's formula: log(x / (1 - x)), and near 1/2, where that loses digits,
    # log1p(s) - log1p(-s) with s = 2 (x - 1/2)
    s = 2.0 * (x - 0.5)
    return np.where((x < 0.3) | (x > 0.65), np.log(x / (1.0 - x)), np.log1p(s) - np.log1p(-s))


def _log_expit(x):
    # log(1 / (1 + e^-x)): x - log1p(e^x) for x < 0, -log1p(e^-x) otherwise, in one
    # expression whose exp never overflows (no inf * 0 in the derivative)
    return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


def _entr(x):
    # -x log x for x > 0, 0 at 0, -inf below; the log sees a safe operand off the
    # branch, so the derivative there is 0, not NaN
    pos = x > 0
    xs = np.where(pos, x, 1.0)
    return np.where(pos, -(xs * np.log(xs)), np.where(x == 0, 0.0, np.where(x < 0, -np.inf, x)))


def _entropy_pair(x, y, inside, at_zero):
    """A relative-entropy ufunc: `inside(x, y)` where x, y > 0, `at_zero(y)` where
    x == 0 <= y, inf elsewhere, NaN for a NaN operand (as SciPy)."""
    ok = (x > 0) & (y > 0)
    xs, ys = np.where(ok, x, 1.0), np.where(ok, y, 1.0)
    out = np.where(ok, inside(xs, ys), np.where((x == 0) & (y >= 0), at_zero(y), np.inf))
    return np.where(np.isnan(x) | np.isnan(y), np.nan, out)


SCIPY_COMPOSITES.update(
    {
        "logit": _logit,
        "log_expit": _log_expit,
        "entr": _entr,
        "rel_entr": lambda x, y: _entropy_pair(x, y, lambda a, b: a * np.log(a / b), lambda b: 0.0 * b),
        "kl_div": lambda x, y: _entropy_pair(x, y, lambda a, b: a * np.log(a / b) - a + b, lambda b: b),
    }
)

_WEAK_FLOAT = Aval((), np.dtype(np.float64), weak=True)


def _float_dtype(*args: Any) -> np.dtype:
    """The dtype SciPy's Python functions give: the operands as arrays (Python
    numbers as int64/float64), promoted with a float; float16 computes in float32."""
    dt = result_dtype(*(aval_of(a).strong() for a in args), _WEAK_FLOAT)
    return np.dtype(np.float32) if dt == np.dtype(np.float16) else dt


def _elementwise(name: str, prim, *args: Any):
    """`prim` on `args` broadcast together and converted to their float dtype."""
    b = innermost_builder(args)
    avals = [aval_of(a) for a in args]
    dt = _float_dtype(*args)
    shape = broadcast_shapes(avals, name)
    return _emit(b, prim, *(prepare(b, a, dt, shape) for a in args))


def polygamma(n: Any, x: Any) -> Any:
    """scipy.special.polygamma: the order n an integer (no derivative), x differentiable."""
    if not traced(n) and np.any(np.asarray(n) != np.floor(np.asarray(n))):
        _fail(ValueError, f"scipy.special.polygamma: the order n must be an integer, got {n!r}")
    return _elementwise("scipy.special.polygamma", sp.polygamma_p, n, x)


def multigammaln(a: Any, d: int) -> Any:
    """scipy.special.multigammaln. SciPy raises for a <= (d - 1)/2; a traced a gives NaN there."""
    if not isinstance(d, (int, np.integer)) or isinstance(d, bool) or d < 1:
        _fail(ValueError, f"scipy.special.multigammaln: d must be a positive integer, got {d!r}")
    import scipy.special

    res = np.float64((d * (d - 1) * 0.25) * math.log(math.pi))  # a NumPy scalar, as SciPy's
    terms = [scipy.special.gammaln(a - (j - 1.0) / 2) for j in range(1, d + 1)]
    out = res + np.sum(np.stack(terms), axis=0)
    return np.where(a <= 0.5 * (d - 1), np.nan, out)


def _promoted(a: Any, b: Any = None) -> tuple[Any, Any]:
    """a and b in their common float dtype (SciPy's xp_promote(force_floating=True))."""
    dt = _float_dtype(a) if b is None else _float_dtype(a, b)
    a = a.astype(dt) if traced(a) else np.asarray(a, dt)
    if b is not None:
        b = b.astype(dt) if traced(b) else np.asarray(b, dt)
        shape = np.broadcast_shapes(np.shape(a), np.shape(b))
        a, b = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
    return a, b


def logsumexp(
    a: Any, axis: Any = None, b: Any = None, keepdims: bool = False, return_sign: bool = False
) -> Any:
    """log(sum(b * exp(a))) shifted by the (gradient-free) maximum; with b < 0
    somewhere the sum may be negative: NaN, or with return_sign its sign and log|sum|."""
    a, b = _promoted(a, b)
    if np.ndim(a) == 0:  # SciPy makes a at least 1-d
        a = np.reshape(a, (1,))
        b = None if b is None else np.reshape(b, (1,))
    axes = normalize_axes(axis, np.ndim(a), "scipy.special.logsumexp")
    if b is not None:
        a = np.where(b == 0, -np.inf, a)  # a zero weight drops the term, even an infinite one
    amax = stop_gradient(np.max(a, axis=axes, keepdims=True))  # the shift does not change the value
    amax = np.where(np.isfinite(amax), amax, 0.0)
    e = np.exp(a - amax)
    s = np.sum(e if b is None else b * e, axis=axes, keepdims=True)
    sgn = np.sign(s)
    out = np.log(np.abs(s) if return_sign else s) + amax
    if not keepdims:
        out, sgn = np.squeeze(out, axis=axes), np.squeeze(sgn, axis=axes)
    return (out, sgn) if return_sign else out


def _shifted(x: Any, axis: Any, finite: bool) -> Any:
    x = x if traced(x) else np.asarray(x)
    axes = normalize_axes(axis, np.ndim(x), "scipy.special.softmax")
    m = stop_gradient(np.max(x, axis=axes, keepdims=True))
    if finite:
        m = np.where(np.isfinite(m), m, 0.0)
    return x - m, axes


def softmax(x: Any, axis: Any = None) -> Any:
    """exp(x - max) / sum(exp(x - max)) over `axis` (all axes for None)."""
    t, axes = _shifted(x, axis, finite=False)
    e = np.exp(t)
    return e / np.sum(e, axis=axes, keepdims=True)


def log_softmax(x: Any, axis: Any = None) -> Any:
    """x - max - log(sum(exp(x - max))) over `axis`, as SciPy (an infinite max taken as 0)."""
    t, axes = _shifted(x, axis, finite=True)
    return t - np.log(np.sum(np.exp(t), axis=axes, keepdims=True))


for _name, _form in (
    ("polygamma", polygamma),
    ("multigammaln", multigammaln),
    ("logsumexp", logsumexp),
    ("softmax", softmax),
    ("log_softmax", log_softmax),
):
    register_form(f"scipy.special.{_name}", _form)
