"""scipy.stats distributions on traced arrays: logpdf/pdf/cdf/logcdf (logpmf/pmf
for the discrete ones) as compositions of NumPy and scipy.special calls,
registered as library forms under their dotted paths ("scipy.stats.norm.logpdf").

SciPy's semantics: positional shape parameters, then loc (and scale); the
standardized z = (x - loc) / scale in float64; -inf (logpdf) or 0 (pdf, cdf)
outside the support, NaN for invalid parameters (scale <= 0, a <= 0...) or a NaN
x. Values outside the support are replaced by a safe point before any log, so
the derivative there is 0, not NaN. Every argument but an integer count is
differentiable. Frozen distributions (norm(0, 1).logpdf) are not supported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..control.arrays import register_form
from .common import _fail, strong, traced


class _LazySpecial:
    """scipy.special, imported on first use (importing it with tracediff costs every user)."""

    def __getattr__(self, name: str) -> Any:
        import scipy.special

        return getattr(scipy.special, name)


sc = _LazySpecial()
LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
F64 = np.dtype(np.float64)


def _as_f64(x: Any) -> Any:
    """x as SciPy makes it: an array, promoted to at least float64."""
    dt = np.promote_types(np.result_type(x) if not traced(x) else x.dtype, F64)
    return x.astype(dt) if traced(x) else np.asarray(x, dt)


def _array(x: Any) -> Any:
    """x as SciPy's np.asarray makes it: a Python number becomes a strong float64/int64."""
    return strong(x) if traced(x) else np.asarray(x)


def _where_safe(cond: Any, x: Any, safe: float) -> Any:
    """x where cond, else a point where every formula is finite (no NaN derivative)."""
    return np.where(cond, x, safe)


def _args(name: str, names: tuple[str, ...], args: tuple, kw: dict, defaults: dict) -> list:
    """SciPy's argument order: the shape parameters, then loc (and scale), positional or by name."""
    if len(args) > len(names):
        _fail(TypeError, f"{name}() takes at most {len(names)} parameters after x, got {len(args)}")
    vals = dict(zip(names, args))
    for k, v in kw.items():
        if k not in names or k in vals:
            _fail(TypeError, f"{name}() got an unexpected or repeated argument {k!r}")
        vals[k] = v
    missing = [n for n in names if n not in vals and n not in defaults]
    if missing:
        _fail(TypeError, f"{name}() missing the shape parameter(s) {', '.join(missing)}")
    return [vals.get(n, defaults.get(n)) for n in names]


class _Continuous:
    """One continuous distribution: `logpdf(z, *params)` of the standardized z,
    its support [lo, hi], which parameters are valid, and the cdf/logcdf of z."""

    def __init__(
        self,
        name: str,
        params: tuple[str, ...],
        logpdf: Callable,
        *,
        lo: float = -math.inf,
        hi: float = math.inf,
        valid: Callable | None = None,
        cdf: Callable | None = None,
        logcdf: Callable | None = None,
        safe: float = 0.5,
    ):
        self.name, self.params, self.lo, self.hi, self.safe = name, params, lo, hi, safe
        self._logpdf, self._valid, self._cdf = logpdf, valid, cdf
        self._logcdf = logcdf or (cdf and (lambda z, *p: np.log(cdf(z, *p))))
        path = f"scipy.stats.{name}"
        register_form(f"{path}.logpdf", self.logpdf)
        register_form(f"{path}.pdf", lambda x, *a, **k: np.exp(self.logpdf(x, *a, **k)))
        if cdf is not None:
            register_form(f"{path}.cdf", self.cdf)
            register_form(f"{path}.logcdf", self.logcdf)

    def _prepare(self, x, args, kw):
        *ps, loc, scale = _args(
            f"scipy.stats.{self.name}", (*self.params, "loc", "scale"), args, kw, {"loc": 0, "scale": 1}
        )
        loc, scale = _array(loc), _array(scale)
        z = _as_f64((x - loc) / scale)  # in the operands' dtype, then float64 (as SciPy)
        ok = scale > 0
        if self._valid is not None:
            ok = ok & self._valid(*ps)
        inside = (z >= self.lo) & (z <= self.hi)
        return z, ps, scale, ok, inside

    def _finish(self, z, ok, out):
        return np.where(ok & ~np.isnan(z), out, np.nan)

    def logpdf(self, x: Any, *args: Any, **kw: Any) -> Any:
        z, ps, scale, ok, inside = self._prepare(x, args, kw)
        val = self._logpdf(_where_safe(inside, z, self.safe), *ps) - np.log(_where_safe(ok, scale, 1.0))
        return self._finish(z, ok, np.where(inside, val, -np.inf))

    def _cdf_like(self, fn, below, above, x, args, kw):
        z, ps, _, ok, inside = self._prepare(x, args, kw)
        val = fn(_where_safe(inside, z, self.safe), *ps)
        return self._finish(z, ok, np.where(z < self.lo, below, np.where(z >= self.hi, above, val)))

    def cdf(self, x: Any, *args: Any, **kw: Any) -> Any:
        return self._cdf_like(self._cdf, 0.0, 1.0, x, args, kw)

    def logcdf(self, x: Any, *args: Any, **kw: Any) -> Any:
        return self._cdf_like(self._logcdf, -np.inf, 0.0, x, args, kw)


def _laplace_logcdf(z):
    return np.where(z < 0, np.log(0.5) + np.minimum(z, 0.0), np.log1p(-0.5 * np.exp(-np.maximum(z, 0.0))))


def _t_logpdf(z, df):
    # log poch(df/2, 1/2) = gammaln((df + 1)/2) - gammaln(df/2)
    return (
        sc.gammaln(0.5 * df + 0.5)
        - sc.gammaln(0.5 * df)
        - 0.5 * (np.log(df) + np.log(np.pi))
        - (df + 1) / 2 * np.log1p(z * z / df)
    )


_Continuous(
    "norm",
    (),
    lambda z: -(z**2) / 2.0 - LOG_SQRT_2PI,
    cdf=lambda z: sc.ndtr(z),
    logcdf=lambda z: sc.log_ndtr(z),
)
_Continuous("t", ("df",), _t_logpdf, valid=lambda df: df > 0, cdf=lambda z, df: sc.stdtr(df, z))
_Continuous(
    "gamma",
    ("a",),
    lambda z, a: sc.xlogy(a - 1.0, z) - z - sc.gammaln(a),
    lo=0.0,
    valid=lambda a: a > 0,
    cdf=lambda z, a: sc.gammainc(a, z),
    safe=1.0,
)
_Continuous(
    "chi2",
    ("df",),
    lambda z, df: sc.xlogy(df / 2.0 - 1, z) - z / 2.0 - sc.gammaln(df / 2.0) - (np.log(2) * df) / 2.0,
    lo=0.0,
    valid=lambda df: df > 0,
    cdf=lambda z, df: sc.gammainc(df / 2.0, z / 2.0),
    safe=1.0,
)
_Continuous(
    "beta",
    ("a", "b"),
    lambda z, a, b: sc.xlog1py(b - 1.0, -z) + sc.xlogy(a - 1.0, z) - sc.betaln(a, b),
    lo=0.0,
    hi=1.0,
    valid=lambda a, b: (a > 0) & (b > 0),
    cdf=lambda z, a, b: sc.betainc(a, b, z),
)
_Continuous(
    "expon",
    (),
    lambda z: -z,
    lo=0.0,
    cdf=lambda z: -np.expm1(-z),
    logcdf=lambda z: np.where(z < math.log(2.0), np.log(-np.expm1(-z)), np.log1p(-np.exp(-z))),
    safe=1.0,
)
_Continuous(
    "laplace",
    (),
    lambda z: -np.abs(z) - math.log(2.0),
    cdf=lambda z: np.where(z > 0, 1.0 - 0.5 * np.exp(-np.maximum(z, 0.0)), 0.5 * np.exp(np.minimum(z, 0.0))),
    logcdf=_laplace_logcdf,
)
_Continuous(
    "logistic",
    (),
    lambda z: -np.abs(z) - 2.0 * np.log1p(np.exp(-np.abs(z))),
    cdf=lambda z: sc.expit(z),
    logcdf=lambda z: sc.log_expit(z),
)
_Continuous("uniform", (), lambda z: 0.0 * z, lo=0.0, hi=1.0, cdf=lambda z: z)


class _Discrete:
    """One discrete distribution: `logpmf(k, *params)` on the support [lo, hi(params)]
    of integers, valid parameters, and the cdf at integer k."""

    def __init__(self, name, params, logpmf, *, hi=None, valid=None, cdf=None):
        self.name, self.params, self._logpmf, self._hi, self._valid, self._cdf = (
            name,
            params,
            logpmf,
            hi,
            valid,
            cdf,
        )
        path = f"scipy.stats.{name}"
        register_form(f"{path}.logpmf", self.logpmf)
        register_form(f"{path}.pmf", lambda k, *a, **kw: np.exp(self.logpmf(k, *a, **kw)))
        if cdf is not None:
            register_form(f"{path}.cdf", self.cdf)
            register_form(f"{path}.logcdf", lambda k, *a, **kw: np.log(self.cdf(k, *a, **kw)))

    def _prepare(self, k, args, kw):
        *ps, loc = _args(f"scipy.stats.{self.name}", (*self.params, "loc"), args, kw, {"loc": 0})
        k = _as_f64(k - _array(loc))
        ok = self._valid(*ps)
        hi = np.inf if self._hi is None else self._hi(*ps)
        return k, ps, ok, hi

    def logpmf(self, k: Any, *args: Any, **kw: Any) -> Any:
        k, ps, ok, hi = self._prepare(k, args, kw)
        inside = (k >= 0) & (k <= hi) & (k == np.floor(k))
        val = self._logpmf(np.where(inside, k, 0.0), *ps)
        return np.where(ok & ~np.isnan(k), np.where(inside, val, -np.inf), np.nan)

    def cdf(self, k: Any, *args: Any, **kw: Any) -> Any:
        k, ps, ok, hi = self._prepare(k, args, kw)
        k = np.floor(k)
        inside = (k >= 0) & (k < hi)
        val = self._cdf(np.where(inside, k, 0.0), *ps)
        out = np.where(k < 0, 0.0, np.where(k >= hi, 1.0, val))
        return np.where(ok & ~np.isnan(k), out, np.nan)


def _binom_logpmf(k, n, p):
    comb = sc.gammaln(n + 1) - (sc.gammaln(k + 1) + sc.gammaln(n - k + 1))
    return comb + sc.xlogy(k, p) + sc.xlog1py(n - k, -p)


_Discrete(
    "poisson",
    ("mu",),
    lambda k, mu: sc.xlogy(k, mu) - sc.gammaln(k + 1) - mu,
    valid=lambda mu: mu >= 0,
    cdf=lambda k, mu: sc.gammaincc(k + 1.0, mu),
)
_Discrete(
    "binom",
    ("n", "p"),
    _binom_logpmf,
    hi=lambda n, p: n,
    valid=lambda n, p: (n >= 0) & (n == np.floor(n)) & (p >= 0) & (p <= 1),
    cdf=lambda k, n, p: sc.betainc(n - k, k + 1.0, 1.0 - p),  # P(X <= k) (DLMF 8.17.5)
)
_Discrete(
    "bernoulli",
    ("p",),
    lambda k, p: _binom_logpmf(k, 1.0, p),
    hi=lambda p: 1.0,
    valid=lambda p: (p >= 0) & (p <= 1),
    cdf=lambda k, p: 1.0 - p + 0.0 * k,
)


def dirichlet_logpdf(x: Any, alpha: Any) -> Any:
    """scipy.stats.dirichlet.logpdf: x has the K components (or the first K - 1) on
    its first axis. SciPy's checks that x lies on the simplex are not made on traced x."""
    if np.ndim(alpha) != 1:
        _fail(
            ValueError, f"scipy.stats.dirichlet: alpha must be one-dimensional, got shape {np.shape(alpha)}"
        )
    K = np.shape(alpha)[0]
    n = np.shape(x)[0] if np.ndim(x) else 0
    if n == K - 1:
        x = np.concatenate([x, (1.0 - np.sum(x, 0))[np.newaxis]])
    elif n != K:
        _fail(
            ValueError, f"scipy.stats.dirichlet: x of shape {np.shape(x)} does not match alpha of length {K}"
        )
    lnB = np.sum(sc.gammaln(alpha)) - sc.gammaln(np.sum(alpha))
    xt = np.moveaxis(x, 0, -1)
    out = -lnB + np.sum(np.moveaxis(sc.xlogy(alpha - 1, xt), -1, 0), 0)
    return out


register_form("scipy.stats.dirichlet.logpdf", dirichlet_logpdf)
register_form("scipy.stats.dirichlet.pdf", lambda x, alpha: np.exp(dirichlet_logpdf(x, alpha)))


def mvn_logpdf(x: Any, mean: Any = None, cov: Any = 1, allow_singular: bool = False) -> Any:
    """scipy.stats.multivariate_normal.logpdf with a positive definite cov (a
    matrix, a vector of variances or a number): through a Cholesky factor."""
    if allow_singular:
        _fail(NotImplementedError, "scipy.stats.multivariate_normal: allow_singular=True is not supported")
    cov = _as_f64(cov)
    d = (
        np.shape(mean)[-1]
        if mean is not None and np.ndim(mean)
        else (np.shape(cov)[0] if np.ndim(cov) else 1)
    )
    if np.ndim(cov) < 2:  # a number or the diagonal
        cov = np.eye(d) * cov
    if np.shape(cov) != (d, d):
        _fail(ValueError, f"scipy.stats.multivariate_normal: cov of shape {np.shape(cov)} for dimension {d}")
    mean = np.zeros(d) if mean is None else mean
    x = _as_f64(x)
    if np.ndim(x) == 0:
        x = np.reshape(x, (1,))
    elif np.ndim(x) == 1 and d == 1:
        x = np.reshape(x, (-1, 1))
    dev = x - mean  # [..., d]
    L = np.linalg.cholesky(cov)
    flat = np.reshape(dev, (-1, d))
    y = np.linalg.solve(L, np.swapaxes(flat, 0, 1))  # L^-1 (x - mean)^T: [d, n]
    maha = np.reshape(np.sum(y * y, axis=0), np.shape(dev)[:-1])
    log_det = 2.0 * np.sum(np.log(np.diagonal(L)))
    out = -0.5 * (d * math.log(2.0 * math.pi) + log_det + maha)
    return np.squeeze(out) if np.ndim(out) else out


register_form("scipy.stats.multivariate_normal.logpdf", mvn_logpdf)
register_form("scipy.stats.multivariate_normal.pdf", lambda *a, **k: np.exp(mvn_logpdf(*a, **k)))
