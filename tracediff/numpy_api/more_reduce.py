"""Reductions beyond the core: `initial=` and `where=` on sum/prod/max/min/mean/var/std,
the NaN-aware reductions, average, trapezoid, ediff1d, polyval, nan_to_num, select,
piecewise, isclose/allclose, ptp, count_nonzero. Compositions of existing functions (np.where, sums, slices)."""

from __future__ import annotations

import builtins

import numpy as np

from ..prims.complex import make_complex
from ..tracer import Tracer, fresh_object
from . import reductions as core
from .common import _fail, _lift, aval_of, normalize_axes, result_dtype, strong, traced


def _fill(dt: np.dtype, name: str):
    """The identity of max/min in dtype `dt` (what masked-out elements become)."""
    if dt.kind == "f":
        return -np.inf if name == "max" else np.inf
    if dt.kind == "b":
        return name != "max"
    info = np.iinfo(dt)
    return info.min if name == "max" else info.max


def _masked(name: str, x, where):
    """x with the elements `where` is False replaced by the reduction's identity."""
    x = strong(_lift(x))
    dt = aval_of(x).dtype
    if name == "sum":
        ident = 0
    elif name == "prod":
        ident = 1
    else:
        ident = _fill(dt, name)
    w = _lift(where)
    if aval_of(w).dtype != np.dtype(bool):
        w = w.astype(bool)
    try:
        np.broadcast_shapes(aval_of(w).shape, aval_of(x).shape)
    except ValueError:
        _fail(ValueError, f"np.{name}: where= {aval_of(w)} does not broadcast to {aval_of(x)}")
    return np.where(w, x, np.asarray(ident, dt))


def _with_keywords(name: str, base):
    red = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum}[name]

    def reduce(a, axis, dtype, out, keepdims, initial, where):
        kw = {} if name in ("max", "min") else {"dtype": dtype}
        plain = where is None or where is True
        if initial is None and plain:
            return base(a, axis=axis, out=out, keepdims=keepdims, **kw)
        if not traced(a) and not traced(initial) and not traced(where):
            return getattr(np, name)(a, axis=axis, keepdims=keepdims, initial=initial, where=where, **kw)
        x = a if plain else _masked(name, a, where)
        if name in ("max", "min") and initial is None:
            _fail(
                ValueError,
                f"np.{name}: reduction operation {red.__name__!r} does not have an identity, so to use a "
                "where mask one has to specify 'initial'",
            )
        if name in ("max", "min"):
            axes = normalize_axes(axis, aval_of(x).ndim, f"np.{name}")
            if any(aval_of(x).shape[i] == 0 for i in axes):  # empty: initial alone
                shape = tuple(1 if i in axes else d for i, d in enumerate(aval_of(x).shape))
                r = np.broadcast_to(initial, shape).astype(aval_of(x).dtype)
                return (
                    r if keepdims else np.reshape(r, tuple(d for i, d in enumerate(shape) if i not in axes))
                )
        r = base(x, axis=axis, out=out, keepdims=keepdims, **kw)
        if initial is not None:  # in the result's dtype first, as NumPy
            dt = aval_of(r).dtype
            r = red(r, initial.astype(dt) if traced(initial) else np.asarray(initial).astype(dt))
        return r

    if name in ("max", "min"):

        def fn(a, axis=None, out=None, keepdims=False, initial=None, where=None):
            return reduce(a, axis, None, out, keepdims, initial, where)

    else:

        def fn(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
            return reduce(a, axis, dtype, out, keepdims, initial, where)

    fn.__name__ = name
    return fn


sum = _with_keywords("sum", core.sum)  # noqa: A001
prod = _with_keywords("prod", core.prod)
max = _with_keywords("max", core.max)  # noqa: A001
min = _with_keywords("min", core.min)  # noqa: A001


def _count(where, x, axis, keepdims):
    w = np.broadcast_to(_lift(where), aval_of(x).shape)
    return core.sum(w.astype(np.int64), axis=axis, keepdims=keepdims)


def mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    if where is None or where is True:
        return core.mean(a, axis, dtype, out, keepdims)
    x = core._float_for_mean(strong(_lift(a)), dtype)
    s = sum(x, axis=axis, keepdims=keepdims, where=where)
    return s / _count(where, x, axis, keepdims).astype(aval_of(s).dtype)


def var(
    a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None
):
    if where is None or where is True:
        return core.var(a, axis, dtype, out, ddof, keepdims, mean=mean, correction=correction)
    if mean is not None or correction is not None:
        _fail(NotImplementedError, "np.var: mean= or correction= with where= is not supported")
    x = core._float_for_mean(strong(_lift(a)), dtype)
    m = globals()["mean"](x, axis=axis, keepdims=True, where=where)
    d = np.where(where, x - m, 0.0)
    n = _count(where, x, axis, keepdims).astype(aval_of(d).dtype)
    return core.sum(d * d, axis=axis, keepdims=keepdims) / np.maximum(n - ddof, 0)


def std(
    a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None
):
    if where is None or where is True:
        return core.std(a, axis, dtype, out, ddof, keepdims, mean=mean, correction=correction)
    return np.sqrt(var(a, axis, dtype, out, ddof, keepdims, where=where, mean=mean, correction=correction))


# --- NaN-aware reductions: NaN elements left out ---------------------------------------


def _notnan(x):
    x = strong(_lift(x))
    return x, ~np.isnan(x) if aval_of(x).dtype.kind == "f" else np.ones(aval_of(x).shape, bool)


def nansum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    x, ok = _notnan(a)
    return sum(x, axis, dtype, out, keepdims, initial, ok if where is None else ok & where)


def nanprod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    x, ok = _notnan(a)
    return prod(x, axis, dtype, out, keepdims, initial, ok if where is None else ok & where)


def _nanext(name: str):
    def fn(a, axis=None, out=None, keepdims=False, initial=None, where=None):
        x, ok = _notnan(a)
        if aval_of(x).dtype.kind != "f":
            return _EXT[name](x, axis, out, keepdims, initial, where)
        w = ok if where is None else ok & where
        r = _EXT[name](
            x, axis, out, keepdims, initial if initial is not None else _fill(aval_of(x).dtype, name), w
        )
        if initial is None:  # an all-NaN slice gives NaN (NumPy warns)
            r = np.where(core.max(w, axis=axis, keepdims=keepdims), r, np.nan)
        return r

    fn.__name__ = f"nan{name}"
    return fn


_EXT = {"max": max, "min": min}
nanmax = _nanext("max")
nanmin = _nanext("min")


def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    x, ok = _notnan(a)
    return mean(x, axis, dtype, out, keepdims, where=ok if where is None else ok & where)


def nanvar(
    a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None
):
    x, ok = _notnan(a)
    return var(
        x,
        axis,
        dtype,
        out,
        ddof,
        keepdims,
        where=ok if where is None else ok & where,
        mean=mean,
        correction=correction,
    )


def nanstd(
    a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None
):
    return np.sqrt(nanvar(a, axis, dtype, out, ddof, keepdims, where=where, mean=mean, correction=correction))


def average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    a = strong(_lift(a))
    if weights is None:
        avg = core.mean(a, axis=axis, keepdims=keepdims)
        scl = np.asarray(aval_of(a).size / builtins.max(aval_of(avg).size, 1), aval_of(avg).dtype)
        return (avg, np.broadcast_to(scl, aval_of(avg).shape)) if returned else avg
    w = strong(_lift(weights))
    sa, sw = aval_of(a), aval_of(w)
    dt = result_dtype(sa, sw)
    if sa.dtype.kind in "biu":
        dt = np.result_type(dt, np.float64)
    if sa.shape != sw.shape:
        if axis is None:
            _fail(
                TypeError,
                f"np.average: axis must be specified when shapes of a and weights differ ({sa}, {sw})",
            )
        given = [normalize_axes(i, sa.ndim, "np.average")[0] for i in np.atleast_1d(axis)]  # user's order
        if sw.shape != tuple(sa.shape[i] for i in given):
            _fail(ValueError, f"np.average: shape of weights {sw} must be that of a {sa} along axis {axis}")
        # the weights' axes put in a's order, then ones elsewhere (as NumPy)
        w = np.transpose(w, tuple(int(i) for i in np.argsort(given)))
        w = np.reshape(w, tuple(d if i in given else 1 for i, d in enumerate(sa.shape)))
    a, w = a.astype(dt), w.astype(dt)
    scl = core.sum(np.broadcast_to(w, aval_of(a).shape), axis=axis, keepdims=keepdims)
    avg = core.sum(a * w, axis=axis, keepdims=keepdims) / scl
    return (avg, np.broadcast_to(scl, aval_of(avg).shape)) if returned else avg


def trapezoid(y, x=None, dx=1.0, axis=-1):
    y = strong(_lift(y))
    nd = aval_of(y).ndim
    ax = normalize_axes(axis, nd, "np.trapezoid")[0]
    lo = (slice(None),) * ax + (slice(None, -1),)
    hi = (slice(None),) * ax + (slice(1, None),)
    if x is None:
        d = dx
    else:
        x = strong(_lift(x))
        d = np.diff(x, axis=-1 if aval_of(x).ndim == 1 else ax)
        if aval_of(x).ndim == 1:
            shape = [1] * nd
            shape[ax] = aval_of(d).shape[0]
            d = np.reshape(d, tuple(shape))
    return core.sum(d * (y[hi] + y[lo]) / 2.0, axis=ax)


def ediff1d(ary, to_end=None, to_begin=None):
    x = np.ravel(strong(_lift(ary)))
    parts = [np.diff(x)]
    dt = aval_of(x).dtype
    if to_begin is not None:
        parts.insert(0, np.ravel(_lift(to_begin)).astype(dt))
    if to_end is not None:
        parts.append(np.ravel(_lift(to_end)).astype(dt))
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def polyval(p, x):
    """Horner's rule over the static number of coefficients."""
    p, x = strong(_lift(p)), strong(_lift(x))
    if aval_of(p).ndim != 1:
        _fail(ValueError, f"np.polyval: coefficients must be 1-D, got {aval_of(p)}")
    y = np.zeros_like(x, dtype=result_dtype(aval_of(p), aval_of(x)))
    for i in range(aval_of(p).shape[0]):
        y = y * x + p[i]
    return y


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    if not copy and isinstance(x, Tracer):  # NumPy replaces in place and returns x itself
        if aval_of(x).dtype.kind in "fc":
            x[...] = nan_to_num(x, True, nan, posinf, neginf)
        return x
    x = fresh_object(strong(_lift(x)), x)
    dt = aval_of(x).dtype
    if dt.kind == "c" and traced(x):  # the real and imaginary parts, each as a float
        re, im = (nan_to_num(part, True, nan, posinf, neginf) for part in (np.real(x), np.imag(x)))
        return make_complex(re, im)
    if dt.kind != "f":
        return x
    big = np.finfo(dt).max
    posinf = big if posinf is None else posinf
    neginf = -big if neginf is None else neginf
    y = np.where(np.isnan(x), np.asarray(nan, dt) if not traced(nan) else nan.astype(dt), x)
    y = np.where(x == np.inf, np.asarray(posinf, dt) if not traced(posinf) else posinf.astype(dt), y)
    return np.where(x == -np.inf, np.asarray(neginf, dt) if not traced(neginf) else neginf.astype(dt), y)


def select(condlist, choicelist, default=0):
    if len(condlist) != len(choicelist):
        _fail(ValueError, "np.select: list of cases must be same length as list of conditions")
    if not condlist:
        _fail(ValueError, "np.select: select with an empty condition list is not possible")
    # as NumPy's: Python numbers (traced ones too) stay weak in the result type (NEP 50)
    choices = [_weak_or_array(c) for c in choicelist]
    default = _weak_or_array(default)
    dt = result_dtype(*(aval_of(c) for c in choices), aval_of(default))
    out = default.astype(dt) if traced(default) else np.asarray(default, dt)
    for c, v in reversed(list(zip(condlist, choices))):  # the first true condition wins
        c = _lift(c)
        if aval_of(c).dtype != np.dtype(bool):
            _fail(
                TypeError,
                f"np.select: invalid entry in condlist: should be boolean ndarray, got {aval_of(c)}",
            )
        out = np.where(c, v.astype(dt) if traced(v) else np.asarray(v, dt), out)
    return out


def _weak_or_array(c):
    if type(c) in (int, float, complex) or (traced(c) and c.aval.weak):
        return c
    return strong(_lift(c))


def piecewise(x, condlist, funclist, *args, **kw):
    """Every function is evaluated on all of x and selected with np.where (NumPy calls
    each on its elements only): a NaN or inf a branch makes where it is not selected
    does not show in values, but turns the gradient into NaN there, as in JAX."""
    x = _lift(x)
    if isinstance(condlist, (list, tuple)) or (
        aval_of(condlist).ndim == aval_of(x).ndim + 1 and aval_of(x).ndim
    ):
        conds = [_lift(c) for c in condlist]
    else:
        conds = [_lift(condlist)]
    n = len(conds)
    if len(funclist) not in (n, n + 1):
        _fail(
            ValueError, f"np.piecewise: with {n} condition(s), either {n} or {n + 1} functions are expected"
        )
    if len(funclist) == n + 1:
        none = (
            ~np.any(np.stack([np.broadcast_to(c, aval_of(x).shape) for c in conds]), axis=0)
            if n
            else np.ones(aval_of(x).shape, bool)
        )
        conds = conds + [none]
    out = np.zeros_like(x)
    dt = aval_of(x).dtype
    for c, f in zip(conds, funclist):  # later conditions override earlier ones, as in NumPy
        v = f(x, *args, **kw) if callable(f) else f
        v = v.astype(dt) if traced(v) else np.asarray(v, dt)
        out = np.where(c, v, out)
    return out


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """NumPy's test: |a - b| <= atol + rtol |b| where b is finite, or a == b (infinities
    of one sign); NaN equals NaN only with equal_nan."""
    x, y = (
        c if type(c) in (int, float, complex) or (traced(c) and c.aval.weak) else strong(_lift(c))
        for c in (a, b)
    )
    ay = aval_of(y)
    if ay.dtype.kind in "biu":  # as NumPy: the tolerance is computed in floating point
        dt = result_dtype(ay, aval_of(1.0))
        y = y.astype(dt) if traced(y) else np.asarray(y, dt)
    close = (np.abs(x - y) <= atol + rtol * np.abs(y)) & np.isfinite(y) | (x == y)
    if equal_nan:
        close = close | (np.isnan(x) & np.isnan(y))
    return close


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return np.all(isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def ptp(a, axis=None, out=None, keepdims=False):
    if out is not None:
        _fail(NotImplementedError, "np.ptp(..., out=...) is not supported")
    return np.subtract(np.max(a, axis=axis, keepdims=keepdims), np.min(a, axis=axis, keepdims=keepdims))


def count_nonzero(a, axis=None, *, keepdims=False):
    return np.sum(_lift(a) != 0, axis=axis, keepdims=keepdims, dtype=np.intp)


FUNCTIONS = {
    np.isclose: isclose,
    np.allclose: allclose,
    np.ptp: ptp,
    np.count_nonzero: count_nonzero,
    np.sum: sum,
    np.prod: prod,
    np.max: max,
    np.amax: max,
    np.min: min,
    np.amin: min,
    np.mean: mean,
    np.var: var,
    np.std: std,
    np.nansum: nansum,
    np.nanprod: nanprod,
    np.nanmax: nanmax,
    np.nanmin: nanmin,
    np.nanmean: nanmean,
    np.nanvar: nanvar,
    np.nanstd: nanstd,
    np.average: average,
    np.trapezoid: trapezoid,
    **({np.trapz: trapezoid} if hasattr(np, "trapz") else {}),  # (NumPy < 2.4)
    np.ediff1d: ediff1d,
    np.polyval: polyval,
    np.nan_to_num: nan_to_num,
    np.select: select,
    np.piecewise: piecewise,
}
