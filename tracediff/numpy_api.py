"""The NumPy front end: NumPy functions and ufuncs on tracers, as primitives.

Broadcasting and dtype promotion (NEP 50) are resolved here, once, into
explicit `convert` and `broadcast` equations; primitives always see operands
of equal shape and dtype. Promotion asks NumPy itself (`ufunc.resolve_dtypes`,
`np.result_type`), so traced dtypes match what NumPy computes.
"""

from __future__ import annotations

import builtins
import functools
import math
import string
import sys
from typing import Any

import numpy as np

from .core import Aval
from .prims import elementwise as ew
from .prims import indexing as ix
from .prims import linalg as la
from .prims import reduce as rd
from .prims import shape as sh
from .tracing import Builder, Tracer, TracerError, at, bind, innermost_builder, user_src


def _fail(exc: type, msg: str):
    raise exc(msg + at(user_src()))


def traced(x: Any) -> bool:
    return isinstance(x, Tracer)


def _no_out(name: str, out) -> None:
    """`out=` writes into an existing array: not traced yet, so never ignored."""
    if out is not None and not (isinstance(out, tuple) and all(o is None for o in out)):
        _fail(
            TracerError,
            f"{name}(..., out=...) writes into an existing array, which tracediff does not trace; "
            "use the returned array instead",
        )


def _no_options(name: str, kw: dict, allowed: dict | None = None) -> None:
    """Keyword arguments tracediff does not implement raise instead of being ignored;
    `allowed` maps a keyword to the only value it may take (NumPy's default)."""
    allowed = allowed or {}
    for k, v in kw.items():
        if k == "out":
            _no_out(name, v)
        elif k not in allowed or not (v is allowed[k] or v == allowed[k]):
            _fail(NotImplementedError, f"{name}: the keyword argument {k}={v!r} is not supported")


def aval_of(x: Any) -> Aval:
    if isinstance(x, Tracer):
        return x.aval
    t = type(x)  # exact types: np.float64 subclasses float but is strong (NEP 50)
    if t is bool:
        return Aval((), np.dtype(bool))
    if t is int:
        return Aval((), np.dtype(np.int64), weak=True)
    if t is float:
        return Aval((), np.dtype(np.float64), weak=True)
    if t is complex:
        _fail(TypeError, "complex numbers are not supported")
    a = np.asarray(x)
    if a.dtype == object:
        _fail(TypeError, f"cannot use {type(x).__name__} as an array")
    return Aval(a.shape, a.dtype)


def _token(av: Aval):
    """What NumPy's promotion takes: a dtype, or a Python type for weak values."""
    if av.weak:
        return float if av.dtype.kind == "f" else int
    return av.dtype


def _fmt(avals) -> str:
    return ", ".join(str(a) for a in avals)


@functools.lru_cache(maxsize=4096)
def _resolve(ufunc: np.ufunc, tokens: tuple, out_dtype: np.dtype | None = None) -> tuple[np.dtype, ...]:
    """NumPy's loop for these operands; `out_dtype` is the `dtype=` of the call."""
    if out_dtype is None:
        return ufunc.resolve_dtypes(tokens + (None,) * ufunc.nout)
    sig = (None,) * ufunc.nin + (np.dtype(out_dtype),) * ufunc.nout
    return ufunc.resolve_dtypes(tokens + (None,) * ufunc.nout, signature=sig)


def result_dtype(*avals: Aval) -> np.dtype:
    toks = [(0.0 if a.dtype.kind == "f" else 0) if a.weak else a.dtype for a in avals]
    return np.result_type(*toks)


def broadcast_shapes(avals, name: str) -> tuple[int, ...]:
    try:
        return np.broadcast_shapes(*(a.shape for a in avals))
    except ValueError:
        _fail(ValueError, f"{name}: operands could not be broadcast together: {_fmt(avals)}")


def _emit(b: Builder, prim, *args, **params):
    return b.emit(prim, args, params)[0]


def prepare(b: Builder, x: Any, dtype: np.dtype, shape: tuple, weak: bool = False):
    """`x` as an operand of `dtype` and `shape` in builder `b`."""
    if isinstance(x, Tracer):
        if x.dtype != dtype:
            x = _emit(b, ew.convert_p, x, dtype=np.dtype(dtype))
    else:
        if type(x) is int and np.dtype(dtype).kind in "iu":  # NEP 50: a Python int must fit
            info = np.iinfo(dtype)
            if not info.min <= x <= info.max:
                _fail(OverflowError, f"Python integer {x} out of bounds for {np.dtype(dtype)}")
        x = b.const(x, np.dtype(dtype), weak)
    if tuple(x.aval.shape) != tuple(shape):
        x = _emit(b, sh.broadcast_p, x, shape=tuple(shape))
    return x


# --- elementwise --------------------------------------------------------------

UFUNCS = {
    np.negative: ew.neg_p,
    np.absolute: ew.abs_p,
    np.fabs: ew.abs_p,
    np.sign: ew.sign_p,
    np.floor: ew.floor_p,
    np.ceil: ew.ceil_p,
    np.rint: ew.round_p,
    np.exp: ew.exp_p,
    np.exp2: ew.exp2_p,
    np.expm1: ew.expm1_p,
    np.log: ew.log_p,
    np.log2: ew.log2_p,
    np.log10: ew.log10_p,
    np.log1p: ew.log1p_p,
    np.sqrt: ew.sqrt_p,
    np.cbrt: ew.cbrt_p,
    np.square: ew.square_p,
    np.reciprocal: ew.reciprocal_p,
    np.sin: ew.sin_p,
    np.cos: ew.cos_p,
    np.tan: ew.tan_p,
    np.arcsin: ew.arcsin_p,
    np.arccos: ew.arccos_p,
    np.arctan: ew.arctan_p,
    np.sinh: ew.sinh_p,
    np.cosh: ew.cosh_p,
    np.tanh: ew.tanh_p,
    np.arcsinh: ew.arcsinh_p,
    np.arccosh: ew.arccosh_p,
    np.arctanh: ew.arctanh_p,
    np.logical_not: ew.logical_not_p,
    np.invert: ew.invert_p,
    np.isnan: ew.isnan_p,
    np.isinf: ew.isinf_p,
    np.isfinite: ew.isfinite_p,
    np.add: ew.add_p,
    np.subtract: ew.sub_p,
    np.multiply: ew.mul_p,
    np.true_divide: ew.div_p,
    np.power: ew.pow_p,
    np.maximum: ew.max_p,
    np.minimum: ew.min_p,
    np.arctan2: ew.arctan2_p,
    np.hypot: ew.hypot_p,
    np.logaddexp: ew.logaddexp_p,
    np.remainder: ew.rem_p,
    np.floor_divide: ew.floor_divide_p,
    np.less: ew.lt_p,
    np.less_equal: ew.le_p,
    np.greater: ew.gt_p,
    np.greater_equal: ew.ge_p,
    np.equal: ew.eq_p,
    np.not_equal: ew.ne_p,
    np.logical_and: ew.logical_and_p,
    np.logical_or: ew.logical_or_p,
    np.logical_xor: ew.logical_xor_p,
    np.bitwise_and: ew.bitwise_and_p,
    np.bitwise_or: ew.bitwise_or_p,
    np.bitwise_xor: ew.bitwise_xor_p,
}


# ufuncs that are compositions of primitives
def _trunc(x):
    if aval_of(x).dtype.kind in "biu":
        return x
    return np.where(x < 0, np.ceil(x), np.floor(x))


# ufuncs that are compositions of primitives; each runs on operands already
# converted to the ufunc's own loop dtype (ufunc_call), so results match NumPy's dtypes
UFUNC_COMPOSITES = {
    # fmax/fmin ignore a NaN operand (maximum/minimum propagate it)
    np.fmax: lambda x, y: np.where(np.isnan(y), x, np.where(np.isnan(x), y, np.maximum(x, y))),
    np.fmin: lambda x, y: np.where(np.isnan(y), x, np.where(np.isnan(x), y, np.minimum(x, y))),
    np.positive: lambda x: x,
    np.conjugate: lambda x: x,
    np.trunc: _trunc,
    np.deg2rad: lambda x: x * (math.pi / 180.0),
    np.radians: lambda x: x * (math.pi / 180.0),
    np.rad2deg: lambda x: x * (180.0 / math.pi),
    np.degrees: lambda x: x * (180.0 / math.pi),
    np.logaddexp2: lambda x, y: np.logaddexp(x * math.log(2.0), y * math.log(2.0)) * (1.0 / math.log(2.0)),
    np.float_power: lambda x, y: np.power(astype(x, np.float64), astype(y, np.float64)),
    np.copysign: lambda x, y: np.where(np.signbit(x) != np.signbit(y), -x, x),
    np.signbit: lambda x: (x < 0) | ((x == 0) & (1.0 / x < 0)),
    # the ufunc behind ndarray.clip with both bounds
    np._core.umath.clip: lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
}


_UFUNC_DEFAULTS = {"where": True, "casting": "same_kind", "order": "K", "subok": True, "signature": None}


def ufunc_call(ufunc: np.ufunc, *args: Any, **kwargs: Any) -> Any:
    """`ufunc(*args)` as a Python operator computes it: on Python numbers only, the
    result stays a weakly typed Python number (see `ufunc_api` for np.<ufunc>)."""
    dtype = kwargs.pop("dtype", None)
    if kwargs:
        if kwargs.get("where", True) is not True:
            _fail(NotImplementedError, f"np.{ufunc.__name__}(..., where=...) is not supported; use np.where")
        _no_options(f"np.{ufunc.__name__}", kwargs, _UFUNC_DEFAULTS)
    if len(args) != ufunc.nin:
        _fail(TypeError, f"np.{ufunc.__name__} takes {ufunc.nin} operand(s), got {len(args)}")
    comp = UFUNC_COMPOSITES.get(ufunc)
    prim = UFUNCS.get(ufunc) or _scipy_ufunc(ufunc)
    if comp is None and prim is None:
        _fail(NotImplementedError, f"tracediff does not support np.{ufunc.__name__}")
    b = innermost_builder(args)
    if b is None:
        return ufunc(*args, dtype=dtype) if dtype is not None else ufunc(*args)
    avals = [aval_of(a) for a in args]
    try:
        loop = _resolve(ufunc, tuple(_token(a) for a in avals), None if dtype is None else np.dtype(dtype))
    except TypeError:
        with_dt = "" if dtype is None else f" with dtype={np.dtype(dtype)}"
        _fail(TypeError, f"np.{ufunc.__name__}: no implementation for operands {_fmt(avals)}{with_dt}")
    if any(dt.kind == "c" for dt in loop):
        _fail(TypeError, f"np.{ufunc.__name__}: complex numbers are not supported yet ({_fmt(avals)})")
    shape = broadcast_shapes(avals, f"np.{ufunc.__name__}")
    if ufunc is np.reciprocal and loop[0].kind in "iu":
        comp = _int_reciprocal
    if comp is not None:
        # a composite computes in NumPy's loop dtype, as the ufunc itself would
        ins = [astype(a, dt) if traced(a) else np.asarray(a, dt) for a, dt in zip(args, loop)]
        return astype(comp(*ins), loop[-1])
    weak = all(a.weak for a in avals)
    ins = [prepare(b, a, dt, shape, weak) for a, dt in zip(args, loop)]
    if ufunc is np.invert and loop[0] == np.dtype(bool):
        prim = ew.logical_not_p
    if ufunc is np.power and not traced(args[1]):
        unary = _power_of_constant(np.asarray(args[1]), loop[-1], avals)
        if unary is not None:
            prim, ins = unary, ins[:1]
    out = _emit(b, prim, *ins)
    if out.dtype != loop[-1]:  # e.g. a bool loop whose output NumPy casts
        out = _emit(b, ew.convert_p, out, dtype=loop[-1])
    return out


def ufunc_api(ufunc: np.ufunc, *args: Any, **kwargs: Any) -> Any:
    """`np.<ufunc>(*args)`: NumPy gives NumPy scalars, never Python numbers, so the
    result is strongly typed even when every operand is a Python number."""
    out = ufunc_call(ufunc, *args, **kwargs)
    return strong(out)


def strong(x: Any) -> Any:
    """A traced Python number as the NumPy value NumPy's functions make of it."""
    if traced(x) and x.aval.weak:
        return bind(ew.convert_p, x, dtype=x.dtype)
    return x


def _int_reciprocal(x):
    # NumPy divides 1 by x in C integers: 1, -1 and what 1/0 gives on this machine
    with np.errstate(all="ignore"):
        at_zero = np.reciprocal(np.zeros((), aval_of(x).dtype))
    return np.where(x == 0, at_zero, np.where((x == 1) | (x == -1), x, np.zeros((), aval_of(x).dtype)))


def _power_of_constant(e: np.ndarray, dt: np.dtype, avals):
    """x ** e for a constant e as NumPy's power loop computes it: a unary
    primitive where NumPy uses one, else None."""
    if dt.kind in "iu" and np.any(e < 0):
        _fail(ValueError, f"np.power: integers to negative integer powers are not allowed ({_fmt(avals)})")
    if dt.kind == "f" and e.size == 1:
        # a scalar exponent of 0.5 is sqrt (sqrt(-0.0) is -0.0, pow(-0.0, 0.5) is +0.0)
        # and of -1 a reciprocal
        return {0.5: ew.sqrt_p, -1.0: ew.reciprocal_p}.get(e.item())
    return None


def _scipy_ufunc(ufunc):
    """The primitive of a scipy.special ufunc (looked up only once the user has
    imported scipy.special: importing it here would slow `import tracediff`)."""
    special = sys.modules.get("scipy.special")
    if special is not None and ufunc is getattr(special, "expit", None):
        return ew.logistic_p
    return None


def handle_ufunc(ufunc, method, inputs, kwargs):
    if ufunc is np.matmul and method == "__call__":
        return matmul(*inputs, **kwargs)
    if method == "__call__":
        return ufunc_api(ufunc, *inputs, **kwargs)
    name = f"np.{ufunc.__name__}.{method}"
    if method in ("reduce", "accumulate") and aval_of(inputs[0]).ndim == 0:
        if method == "accumulate":
            _fail(TypeError, f"{name}: cannot accumulate on a scalar")
        if kwargs.get("axis", 0) in (0, -1, None, (), (0,)):  # NumPy reduces a scalar to itself
            x = strong(_lift(inputs[0]))
            if ufunc in (np.add, np.multiply):  # in the accumulator dtype (bool, small ints: int64)
                x = astype(x, _acc_dtype("sum", aval_of(x).dtype))
            return x
    if method == "reduce":
        red = {np.add: sum, np.multiply: prod, np.maximum: max, np.minimum: min}.get(ufunc)
        if red is not None:
            kwargs = {"axis": 0, **kwargs}
            if red in (max, min) and kwargs.pop("dtype", None) is not None:
                _fail(NotImplementedError, f"{name}: dtype= is not supported")
            return red(*inputs, **kwargs)
    if method == "accumulate" and ufunc is np.add:
        return cumsum(*inputs, **{"axis": 0, **kwargs})
    if method == "outer" and (ufunc in UFUNCS or ufunc in UFUNC_COMPOSITES):
        x, y = (strong(_lift(v)) for v in inputs)  # NumPy makes arrays of the operands
        ax, ay = aval_of(x), aval_of(y)
        return ufunc_api(ufunc, reshape(x, ax.shape + (1,) * ay.ndim), y, **kwargs)
    _fail(NotImplementedError, f"tracediff does not support np.{ufunc.__name__}.{method}")


def where(cond, x=None, y=None):
    if x is None or y is None:
        _fail(
            TracerError,
            "np.where(cond) with one argument gives a data-dependent shape; "
            "use the three-argument np.where(cond, x, y)",
        )
    b = innermost_builder((cond, x, y))
    if b is None:
        return np.where(cond, x, y)
    ac, axx, ay = aval_of(cond), aval_of(x), aval_of(y)
    shape = broadcast_shapes([ac, axx, ay], "np.where")
    if ac.dtype != np.dtype(bool):
        cond = ufunc_call(np.not_equal, cond, 0)
    dt = result_dtype(axx, ay)
    weak = axx.weak and ay.weak
    c = prepare(b, cond, np.dtype(bool), shape)
    return _emit(b, ew.select_p, c, prepare(b, x, dt, shape, weak), prepare(b, y, dt, shape, weak))


def astype(x, dtype):
    dtype = np.dtype(dtype)
    if not traced(x):
        return np.asarray(x).astype(dtype)
    if x.dtype == dtype and not x.aval.weak:
        return x
    return bind(ew.convert_p, x, dtype=dtype)


def clip(x, a_min=None, a_max=None, out=None, *, min=None, max=None, **kw):
    _no_out("np.clip", out)
    _no_options("np.clip", kw)
    x = strong(_lift(x))  # NumPy makes an array of x (not of the bounds)
    a_min = a_min if min is None else min
    a_max = a_max if max is None else max
    if a_min is None and a_max is None:  # NumPy applies np.positive: no bool loop
        return ufunc_api(np.positive, x)
    if a_min is not None:
        x = np.maximum(x, a_min)
    if a_max is not None:
        x = np.minimum(x, a_max)
    return x


def copy(x):
    """A new array (values are immutable while tracing; the simplifier drops it
    unless it keeps a result from sharing memory with an input)."""
    if not traced(x):
        return np.array(x, copy=True)
    return bind(ew.copy_p, x)


def stop_gradient(x):
    """Identity whose derivative is zero."""
    if not traced(x):
        return x
    return bind(ew.stop_gradient_p, x)


def _fill_like(x, value, dtype=None, shape=None):
    a = aval_of(x)
    dt = np.dtype(dtype) if dtype is not None else a.dtype
    shp = a.shape if shape is None else tuple(np.atleast_1d(shape).tolist())
    b = innermost_builder((x,))
    lit = np.asarray(value).astype(dt)
    if b is None:
        return np.full(shp, lit)
    return _emit(b, sh.broadcast_p, b.const(lit), shape=shp)  # a traced value, 0-d too


def zeros_like(x, dtype=None, order="K", subok=True, shape=None):
    return _fill_like(x, 0, dtype, shape)


def ones_like(x, dtype=None, order="K", subok=True, shape=None):
    return _fill_like(x, 1, dtype, shape)


def full_like(x, fill_value, dtype=None, order="K", subok=True, shape=None):
    if traced(fill_value):
        shp = aval_of(x).shape if shape is None else tuple(np.atleast_1d(shape).tolist())
        return np.broadcast_to(astype(fill_value, dtype or aval_of(x).dtype), shp)
    return _fill_like(x, fill_value, dtype, shape)


# --- reductions ---------------------------------------------------------------


def normalize_axes(axis, ndim: int, name: str) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            _fail(
                np.exceptions.AxisError, f"{name}: axis {a} is out of bounds for an array of dimension {ndim}"
            )
        out.append(int(a) % ndim if ndim else 0)
    if len(set(out)) != len(out):
        _fail(ValueError, f"{name}: repeated axis in {axis}")
    return tuple(sorted(out))


def _keep(x, axes, keepdims, in_shape):
    if not keepdims:
        return x
    return reshape(x, tuple(1 if i in axes else d for i, d in enumerate(in_shape)))


@functools.lru_cache(maxsize=256)
def _acc_dtype(name: str, dtype: np.dtype) -> np.dtype:
    return getattr(np, name)(np.zeros(1, dtype)).dtype


def _reduce(name, prim, x, axis, keepdims, dtype=None, where=None, initial=None, out=None):
    _no_out(f"np.{name}", out)
    if where is not None and where is not True:
        _fail(NotImplementedError, f"np.{name}(..., where=...) is not supported; use np.where")
    if initial is not None:
        _fail(NotImplementedError, f"np.{name}(..., initial=...) is not supported")
    if not traced(x):
        return (
            getattr(np, name)(x, axis=axis, keepdims=keepdims, dtype=dtype)
            if dtype
            else getattr(np, name)(x, axis=axis, keepdims=keepdims)
        )
    axes = normalize_axes(axis, x.ndim, f"np.{name}")
    if dtype is not None:
        x = astype(x, dtype)
    elif name in ("sum", "prod"):
        x = astype(x, _acc_dtype(name, x.dtype))
    if prim in (rd.reduce_max_p, rd.reduce_min_p) and any(x.shape[a] == 0 for a in axes):
        _fail(ValueError, f"np.{name}: zero-size array {x.aval} has no identity")
    out = bind(prim, x, axes=axes) if axes else x
    return _keep(out, axes, keepdims, x.shape)


def sum(x, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    return _reduce("sum", rd.reduce_sum_p, x, axis, keepdims, dtype, where, initial, out)


def prod(x, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    return _reduce("prod", rd.reduce_prod_p, x, axis, keepdims, dtype, where, initial, out)


def max(x, axis=None, out=None, keepdims=False, initial=None, where=None):
    return _reduce("max", rd.reduce_max_p, x, axis, keepdims, None, where, initial, out)


def min(x, axis=None, out=None, keepdims=False, initial=None, where=None):
    return _reduce("min", rd.reduce_min_p, x, axis, keepdims, None, where, initial, out)


def _count(x, axis):
    axes = normalize_axes(axis, aval_of(x).ndim, "mean")
    return int(np.prod([aval_of(x).shape[a] for a in axes], dtype=np.int64))


def _float_for_mean(x, dtype):
    if dtype is not None:
        return astype(x, dtype)
    if aval_of(x).dtype.kind in "biu":
        return astype(x, np.float64)
    return x


def mean(x, axis=None, dtype=None, out=None, keepdims=False, where=None):
    _no_out("np.mean", out)
    if not traced(x):
        return np.mean(x, axis=axis, dtype=dtype, keepdims=keepdims)
    x = _float_for_mean(x, dtype)
    m = sum(x, axis=axis, keepdims=keepdims, where=where) / _count(x, axis)
    # an integer dtype= sums in it and casts the quotient back, as NumPy does
    return astype(m, dtype) if dtype is not None and np.dtype(dtype).kind in "biu" else m


def var(
    x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None
):
    _no_out("np.var", out)
    if where is not None and where is not True:
        _fail(NotImplementedError, "np.var(..., where=...) is not supported; use np.where")
    if correction is not None:
        if ddof != 0:
            _fail(ValueError, "np.var: ddof and correction can't be provided simultaneously")
        ddof = correction
    if not traced(x) and not traced(mean):
        return np.var(x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims, mean=mean)
    x = _float_for_mean(_lift(x), dtype)
    n = _count(x, axis)
    if mean is None:
        mean = globals()["mean"](x, axis=axis, keepdims=True)
    else:  # NumPy's precomputed mean: the shape of a keepdims=True mean
        want = tuple(
            1 if i in normalize_axes(axis, aval_of(x).ndim, "np.var") else d
            for i, d in enumerate(aval_of(x).shape)
        )
        if aval_of(mean).shape != want:
            _fail(
                ValueError,
                f"np.var: mean= must have the shape {want} of a keepdims=True mean, got {aval_of(mean)}",
            )
    d = x - mean
    return sum(d * d, axis=axis, keepdims=keepdims) / float(builtins.max(n - ddof, 0))  # as NumPy: inf/nan


def std(
    x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None, correction=None
):
    _no_out("np.std", out)
    if not traced(x) and not traced(mean):
        return np.std(
            x, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims, mean=mean, correction=correction
        )
    return np.sqrt(var(x, axis, dtype, None, ddof, keepdims, where=where, mean=mean, correction=correction))


def _arg(name, prim, x, axis, keepdims, out):
    _no_out(f"np.{name}", out)
    if not traced(x):
        return getattr(np, name)(x, axis=axis, keepdims=keepdims)
    in_shape = x.shape
    n = x.size if axis is None else in_shape[normalize_axes(axis, x.ndim, f"np.{name}")[0]]
    if n == 0:
        _fail(ValueError, f"np.{name}: attempt to get {name} of an empty sequence ({x.aval}, axis={axis})")
    if axis is None:
        out = bind(prim, ravel(x), axis=0)
        return reshape(out, (1,) * len(in_shape)) if keepdims else out
    (ax,) = normalize_axes(axis, x.ndim, f"np.{name}")
    out = bind(prim, x, axis=ax)
    return _keep(out, (ax,), keepdims, in_shape)


def argmax(x, axis=None, out=None, *, keepdims=False):
    return _arg("argmax", rd.argmax_p, x, axis, keepdims, out)


def argmin(x, axis=None, out=None, *, keepdims=False):
    return _arg("argmin", rd.argmin_p, x, axis, keepdims, out)


def cumsum(x, axis=None, dtype=None, out=None):
    _no_out("np.cumsum", out)
    if not traced(x):
        return np.cumsum(x, axis=axis, dtype=dtype)
    if axis is None:
        x, axis = ravel(x), 0
    (ax,) = normalize_axes(axis, x.ndim, "np.cumsum")
    x = astype(x, dtype if dtype is not None else _acc_dtype("sum", x.dtype))
    return bind(rd.cumsum_p, x, axis=ax)


def norm(x, ord=None, axis=None, keepdims=False):
    if ord not in (None, 2, "fro") or (ord == 2 and axis is None and aval_of(x).ndim > 1):
        _fail(
            NotImplementedError,
            f"np.linalg.norm: ord={ord!r} is not supported (only the 2-norm/Frobenius norm)",
        )
    if aval_of(x).dtype.kind != "f":  # NumPy computes the norm of integers in float64
        x = astype(_lift(x), np.float64)
    return np.sqrt(sum(x * x, axis=axis, keepdims=keepdims))


# --- shapes -------------------------------------------------------------------


def _lift(x):
    """A constant as a tracer-compatible value (shape ops on constants stay NumPy)."""
    return x if traced(x) else np.asarray(x)


def reshape(x, shape, order="C", newshape=None, copy=None):
    if newshape is not None:
        shape = newshape
    if order != "C":
        _fail(NotImplementedError, f"reshape: order={order!r} is not supported")
    if not traced(x):
        return np.reshape(x, shape)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    if shape.count(-1) > 1:
        _fail(ValueError, f"reshape: can only specify one unknown dimension, got {shape}")
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
        if known == 0 or x.size % known:
            _fail(ValueError, f"reshape: cannot reshape {x.aval} into shape {shape}")
        shape = tuple(x.size // known if s == -1 else s for s in shape)
    if shape == x.shape:
        return x
    return bind(sh.reshape_p, x, shape=shape)


def ravel(x, order="C"):
    return reshape(x, (-1,), order=order)


def transpose(x, axes=None):
    if not traced(x):
        return np.transpose(x, axes)
    if axes is None:
        perm = tuple(reversed(range(x.ndim)))
    else:
        perm = tuple(int(a) % x.ndim if x.ndim else 0 for a in axes)
        if sorted(perm) != list(range(x.ndim)):
            _fail(ValueError, f"transpose: axes {tuple(axes)} don't match {x.aval}")
    if perm == tuple(range(x.ndim)):
        return x
    return bind(sh.transpose_p, x, perm=perm)


def swapaxes(x, a, b):
    nd = aval_of(x).ndim
    (a,) = normalize_axes(a, nd, "np.swapaxes")
    (b,) = normalize_axes(b, nd, "np.swapaxes")
    perm = list(range(nd))
    perm[a], perm[b] = perm[b], perm[a]
    return transpose(x, perm)


def moveaxis(x, source, destination):
    nd = aval_of(x).ndim
    src = [normalize_axes(s, nd, "np.moveaxis")[0] for s in np.atleast_1d(source)]
    dst = [normalize_axes(d, nd, "np.moveaxis")[0] for d in np.atleast_1d(destination)]
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, order)


def expand_dims(x, axis):
    a = aval_of(x)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    nd = a.ndim + len(axes)
    axes = normalize_axes(axes, nd, "np.expand_dims")
    it = iter(a.shape)
    return reshape(x, tuple(1 if i in axes else next(it) for i in range(nd)))


def squeeze(x, axis=None):
    a = aval_of(x)
    if axis is None:
        axes = tuple(i for i, d in enumerate(a.shape) if d == 1)
    else:
        axes = normalize_axes(axis, a.ndim, "np.squeeze")
        if any(a.shape[i] != 1 for i in axes):
            _fail(
                ValueError,
                f"np.squeeze: cannot select an axis to squeeze out which has size not equal to one ({a})",
            )
    return reshape(x, tuple(d for i, d in enumerate(a.shape) if i not in axes))


def broadcast_to(x, shape, subok=False):
    if not traced(x):
        return np.broadcast_to(x, shape)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if shape == x.shape:
        return x
    try:
        np.broadcast_shapes(x.shape, shape)
        if len(shape) < x.ndim or np.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        _fail(ValueError, f"np.broadcast_to: cannot broadcast {x.aval} to shape {shape}")
    return bind(sh.broadcast_p, x, shape=shape)


def atleast_1d(x):
    return reshape(x, (1,)) if aval_of(x).ndim == 0 else x


def atleast_2d(x):
    a = aval_of(x)
    return reshape(x, (1,) * (2 - a.ndim) + a.shape) if a.ndim < 2 else x


def concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    _no_out("np.concatenate", out)
    _no_options("np.concatenate", {"casting": casting}, {"casting": "same_kind"})
    arrays = list(arrays)
    b = innermost_builder(arrays)
    if b is None:
        return np.concatenate(arrays, axis=axis, dtype=dtype)
    if axis is None:
        arrays, axis = [ravel(_lift(a)) for a in arrays], 0
    avals = [aval_of(a) for a in arrays]
    if any(a.ndim == 0 for a in avals):
        _fail(ValueError, "np.concatenate: zero-dimensional arrays cannot be concatenated")
    if len({a.ndim for a in avals}) != 1:
        _fail(ValueError, f"np.concatenate: operands have different numbers of dimensions: {_fmt(avals)}")
    (ax,) = normalize_axes(axis, avals[0].ndim, "np.concatenate")
    dt = np.dtype(dtype) if dtype is not None else result_dtype(*avals)
    ins = [prepare(b, a, dt, av.shape) for a, av in zip(arrays, avals)]
    if len(ins) == 1:
        return ins[0] if isinstance(ins[0], Tracer) else _emit(b, sh.reshape_p, ins[0], shape=avals[0].shape)
    return _emit(b, sh.concatenate_p, *ins, axis=ax)


def stack(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    _no_out("np.stack", out)
    _no_options("np.stack", {"casting": casting}, {"casting": "same_kind"})
    arrays = list(arrays)
    shapes = {aval_of(a).shape for a in arrays}
    if len(shapes) != 1:
        _fail(
            ValueError,
            f"np.stack: all input arrays must have the same shape, got {_fmt(map(aval_of, arrays))}",
        )
    nd = aval_of(arrays[0]).ndim + 1
    (ax,) = normalize_axes(axis, nd, "np.stack")
    return concatenate([expand_dims(_lift(a), ax) for a in arrays], axis=ax, dtype=dtype)


def hstack(arrays, dtype=None, casting="same_kind"):
    _no_options("np.hstack", {"casting": casting}, {"casting": "same_kind"})
    arrays = [atleast_1d(_lift(a)) for a in arrays]
    return concatenate(arrays, axis=0 if aval_of(arrays[0]).ndim == 1 else 1, dtype=dtype)


def vstack(arrays, dtype=None, casting="same_kind"):
    _no_options("np.vstack", {"casting": casting}, {"casting": "same_kind"})
    return concatenate([atleast_2d(_lift(a)) for a in arrays], axis=0, dtype=dtype)


def _full_slice(n):
    return (0, n, 1)


def flip(x, axis=None):
    if not traced(x):
        return np.flip(x, axis)
    axes = normalize_axes(axis, x.ndim, "np.flip")
    if not axes:  # a 0-d value: nothing to flip
        return x
    spec = tuple((n - 1, None, -1) if i in axes else _full_slice(n) for i, n in enumerate(x.shape))
    return bind(sh.slice_p, x, spec=spec)


def tile(x, reps):
    a = aval_of(x)
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    nd = builtins.max(a.ndim, len(reps))
    shape = (1,) * (nd - a.ndim) + a.shape
    reps = (1,) * (nd - len(reps)) + reps
    inter = tuple(v for d in shape for v in (1, d))
    big = tuple(v for r, d in zip(reps, shape) for v in (r, d))
    y = broadcast_to(reshape(x, inter), big)
    return reshape(y, tuple(r * d for r, d in zip(reps, shape)))


def repeat(x, repeats, axis=None):
    if axis is None:
        x, axis = ravel(_lift(x)), 0
    a = aval_of(x)
    (ax,) = normalize_axes(axis, a.ndim, "np.repeat")
    if traced(repeats):
        _fail(TracerError, "np.repeat: traced repeats give a data-dependent shape")
    reps = np.asarray(repeats)
    if reps.size == 0:
        reps = reps.astype(np.int64)
    if reps.ndim == 0:
        r = int(reps)
        y = expand_dims(x, ax + 1)
        y = broadcast_to(y, a.shape[: ax + 1] + (r,) + a.shape[ax + 1 :])
        return reshape(y, a.shape[:ax] + (a.shape[ax] * r,) + a.shape[ax + 1 :])
    return take(x, np.repeat(np.arange(a.shape[ax]), reps), axis=ax)


def diff(x, n=1, axis=-1):
    for _ in range(n):
        nd = aval_of(x).ndim
        (ax,) = normalize_axes(axis, nd, "np.diff")
        hi = tuple(slice(1, None) if i == ax else slice(None) for i in range(nd))
        lo = tuple(slice(None, -1) if i == ax else slice(None) for i in range(nd))
        # booleans differ by not_equal, as in NumPy
        x = np.not_equal(x[hi], x[lo]) if aval_of(x).dtype == np.dtype(bool) else x[hi] - x[lo]
    return x


def split(x, indices_or_sections, axis=0):
    a = aval_of(x)
    (ax,) = normalize_axes(axis, a.ndim, "np.split")
    n = a.shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if n % k:
            _fail(ValueError, f"np.split: array split does not result in an equal division ({a}, {k})")
        bounds = [i * (n // k) for i in range(k + 1)]
    else:
        bounds = [0] + list(indices_or_sections) + [n]
    pre = (slice(None),) * ax
    return [x[pre + (slice(lo, hi),)] for lo, hi in zip(bounds[:-1], bounds[1:])]


# --- contractions ---------------------------------------------------------------


def matmul(x, y, out=None, *, dtype=None, **kw):
    _no_out("np.matmul", out)
    _no_options("np.matmul", kw, _UFUNC_DEFAULTS)
    if dtype is not None:
        x, y = astype(_lift(x), dtype), astype(_lift(y), dtype)
    b = innermost_builder((x, y))
    if b is None:
        return np.matmul(x, y)
    ax, ay = aval_of(x), aval_of(y)
    if ax.ndim == 0 or ay.ndim == 0:
        _fail(ValueError, f"matmul: operands must not be scalars, got {ax} @ {ay}")
    try:
        dt = _resolve(np.matmul, (_token(ax), _token(ay)))[-1]
    except TypeError:
        _fail(TypeError, f"matmul: unsupported dtypes {ax} @ {ay}")
    xs = ax.shape if ax.ndim > 1 else (1,) + ax.shape
    ys = ay.shape if ay.ndim > 1 else ay.shape + (1,)
    if xs[-1] != ys[-2]:
        _fail(
            ValueError,
            f"matmul: shapes {ax} and {ay} do not match: contracted dimensions {xs[-1]} != {ys[-2]}",
        )
    batch = broadcast_shapes([Aval(xs[:-2], dt), Aval(ys[:-2], dt)], "matmul (batch dimensions)")
    x = prepare(b, x, dt, ax.shape)
    y = prepare(b, y, dt, ay.shape)
    if ax.ndim == 1:
        x = _emit(b, sh.reshape_p, x, shape=xs)
    if ay.ndim == 1:
        y = _emit(b, sh.reshape_p, y, shape=ys)
    if xs[:-2] != batch:
        x = _emit(b, sh.broadcast_p, x, shape=batch + xs[-2:])
    if ys[:-2] != batch:
        y = _emit(b, sh.broadcast_p, y, shape=batch + ys[-2:])
    out = _emit(b, la.matmul_p, x, y)
    final = batch + (xs[-2],) * (ax.ndim > 1) + (ys[-1],) * (ay.ndim > 1)
    return reshape(out, final) if final != out.shape else out


def dot(x, y, out=None):
    _no_out("np.dot", out)
    ax, ay = aval_of(x), aval_of(y)
    if ax.ndim == 0 or ay.ndim == 0:
        return np.multiply(x, y)
    if ay.ndim <= 2:
        return matmul(x, y)
    return tensordot(x, y, axes=([ax.ndim - 1], [ay.ndim - 2]))


def vdot(x, y):
    return dot(ravel(_lift(x)), ravel(_lift(y)))


def inner(x, y):
    ax, ay = aval_of(x), aval_of(y)
    if ax.ndim == 0 or ay.ndim == 0:
        return np.multiply(x, y)
    return tensordot(x, y, axes=([ax.ndim - 1], [ay.ndim - 1]))


def outer(x, y, out=None):
    _no_out("np.outer", out)
    x, y = ravel(_lift(x)), ravel(_lift(y))
    return np.multiply(reshape(x, (-1, 1)), reshape(y, (1, -1)))


def tensordot(x, y, axes=2):
    ax, ay = aval_of(x), aval_of(y)
    if isinstance(axes, (int, np.integer)):
        xa = list(range(ax.ndim - axes, ax.ndim))
        ya = list(range(axes))
    else:
        xa, ya = ([a] if isinstance(a, (int, np.integer)) else list(a) for a in axes)
    xa = [normalize_axes(a, ax.ndim, "np.tensordot")[0] for a in xa]
    ya = [normalize_axes(a, ay.ndim, "np.tensordot")[0] for a in ya]
    if len(xa) != len(ya) or any(ax.shape[i] != ay.shape[j] for i, j in zip(xa, ya)):
        _fail(ValueError, f"np.tensordot: shape mismatch for sum: {ax}, {ay}, axes {axes}")
    xf = [i for i in range(ax.ndim) if i not in xa]
    yf = [j for j in range(ay.ndim) if j not in ya]
    letters = iter(string.ascii_letters)
    xl = {i: next(letters) for i in range(ax.ndim)}
    yl = {j: next(letters) for j in yf}
    for i, j in zip(xa, ya):
        yl[j] = xl[i]
    sx = "".join(xl[i] for i in range(ax.ndim))
    sy = "".join(yl[j] for j in range(ay.ndim))
    so = "".join(xl[i] for i in xf) + "".join(yl[j] for j in yf)
    return _einsum(f"{sx},{sy}->{so}", x, y)


def trace(x, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    _no_out("np.trace", out)
    return sum(diagonal(x, offset, axis1, axis2), axis=-1, dtype=dtype)


def diagonal(x, offset=0, axis1=0, axis2=1):
    a = aval_of(x)
    a1, a2 = (normalize_axes(v, a.ndim, "np.diagonal")[0] for v in (axis1, axis2))
    y = moveaxis(_lift(x), (a1, a2), (-2, -1))
    n, m = aval_of(y).shape[-2:]
    rows = np.arange(builtins.max(0, -offset), n)
    rows = rows[rows + offset < m]
    flat = rows * m + rows + offset
    y = reshape(y, aval_of(y).shape[:-2] + (n * m,))
    return take(y, flat, axis=-1)


def _einsum_parse(subscripts, nops):
    s = subscripts.replace(" ", "")
    if "." in s:
        _fail(NotImplementedError, "np.einsum: '...' is not supported; name the axes")
    if "->" in s:
        ins, out = s.split("->")
    else:
        ins = s
        counts = {}
        for c in ins.replace(",", ""):
            counts[c] = counts.get(c, 0) + 1
        out = "".join(sorted(c for c, k in counts.items() if k == 1))
    ins = ins.split(",")
    if len(ins) != nops:
        _fail(ValueError, f"np.einsum: {subscripts!r} names {len(ins)} operands, got {nops}")
    return ins, out


def _einsum_prepare(x, sub, keep):
    """Take diagonals of repeated letters and sum letters not in `keep`."""
    a = aval_of(x)
    if len(sub) != a.ndim:
        _fail(ValueError, f"np.einsum: subscripts {sub!r} do not match operand {a}")
    while len(set(sub)) < len(sub):
        c = next(c for c in sub if sub.count(c) > 1)
        i = sub.index(c)
        j = sub.index(c, i + 1)
        x = diagonal(x, 0, i, j)
        sub = "".join(s for k, s in enumerate(sub) if k not in (i, j)) + c
    drop = [i for i, c in enumerate(sub) if c not in keep]
    if drop:  # einsum sums in the operands' dtype; booleans by `or`
        dt = aval_of(x).dtype
        x = max(x, axis=tuple(drop)) if dt == np.dtype(bool) else sum(x, axis=tuple(drop), dtype=dt)
        sub = "".join(c for i, c in enumerate(sub) if i not in drop)
    return x, sub


def einsum(subscripts, *operands, optimize=None, **kw):
    _no_options("np.einsum", kw, {"casting": "safe", "order": "K", "dtype": None})
    z = _einsum(subscripts, *operands)
    # NumPy's einsum adds each product into a zeroed output: -0.0 products come out +0.0
    return z + 0.0 if aval_of(z).dtype.kind == "f" else z


def _einsum(subscripts, *operands):
    """einsum in the operands' common dtype, as products and sums (tensordot's too)."""
    ins, out = _einsum_parse(subscripts, len(operands))
    dt = result_dtype(*(aval_of(o) for o in operands))
    ops = [astype(_lift(o), dt) for o in operands]
    while len(ops) > 2:  # left to right, keeping what later operands or the output need
        rest = "".join(ins[2:]) + out
        keep = "".join(c for c in dict.fromkeys(ins[0] + ins[1]) if c in rest)
        ops = [_einsum(f"{ins[0]},{ins[1]}->{keep}", ops[0], ops[1])] + ops[2:]
        ins = [keep] + ins[2:]
    if len(ops) == 1:
        x, sub = _einsum_prepare(ops[0], ins[0], out)
        if sorted(sub) != sorted(out):
            _fail(ValueError, f"np.einsum: output {out!r} names letters not in the input")
        return transpose(x, [sub.index(c) for c in out])
    x, sx = _einsum_prepare(ops[0], ins[0], ins[1] + out)
    y, sy = _einsum_prepare(ops[1], ins[1], sx + out)
    batch = [c for c in sx if c in sy and c in out]
    contract = [c for c in sx if c in sy and c not in out]
    lf = [c for c in sx if c not in sy]
    rf = [c for c in sy if c not in sx]
    dims = {c: aval_of(x).shape[i] for i, c in enumerate(sx)}
    for i, c in enumerate(sy):
        if dims.setdefault(c, aval_of(y).shape[i]) != aval_of(y).shape[i]:
            _fail(ValueError, f"np.einsum: size of axis {c!r} differs between operands in {subscripts!r}")
    size = lambda cs: int(np.prod([dims[c] for c in cs], dtype=np.int64))  # noqa: E731
    if not contract:
        # no contraction: a broadcast product, not a matmul of 1x1 blocks
        x = reshape(
            transpose(x, [sx.index(c) for c in batch + lf]),
            tuple(dims[c] for c in batch + lf) + (1,) * len(rf),
        )
        y = reshape(
            transpose(y, [sy.index(c) for c in batch + rf]),
            tuple(dims[c] for c in batch) + (1,) * len(lf) + tuple(dims[c] for c in rf),
        )
        z = np.multiply(x, y)
    else:
        x = reshape(
            transpose(x, [sx.index(c) for c in batch + lf + contract]),
            (size(batch), size(lf), size(contract)),
        )
        y = reshape(
            transpose(y, [sy.index(c) for c in batch + contract + rf]),
            (size(batch), size(contract), size(rf)),
        )
        z = reshape(matmul(x, y), tuple(dims[c] for c in batch + lf + rf))
    zs = "".join(batch + lf + rf)
    if sorted(zs) != sorted(out):
        _fail(ValueError, f"np.einsum: output {out!r} does not match the inputs of {subscripts!r}")
    return transpose(z, [zs.index(c) for c in out])


# --- indexing -------------------------------------------------------------------


def _is_int_scalar(i):
    return isinstance(i, (int, np.integer)) and not isinstance(i, bool)


def _index_array(i):
    """An advanced index entry as an int array (NumPy constant or tracer), or None."""
    if traced(i):
        if i.dtype == np.dtype(bool):
            _fail(
                TracerError,
                f"boolean mask indexing with a traced mask {i.aval} gives a data-dependent "
                "shape; use np.where(mask, x, 0) or a mask built from constants",
            )
        if i.dtype.kind not in "iu":
            _fail(IndexError, f"arrays used as indices must be of integer type, got {i.aval}")
        return i
    if isinstance(i, (list, np.ndarray)) or (isinstance(i, tuple) and False):
        arr = np.asarray(i)
        if arr.dtype.kind not in "iub" and arr.size:
            _fail(IndexError, f"arrays used as indices must be of integer or boolean type, got {arr.dtype}")
        return arr if arr.size else arr.astype(np.int64)
    return None


def _scalar_bool(i) -> bool:
    return isinstance(i, (bool, np.bool_)) or (
        type(i) is np.ndarray and i.ndim == 0 and i.dtype == np.dtype(bool)
    )


def _bool_scalar_index(x, idx):
    """x[..., True, ...]: NumPy's advanced index of one new axis, of length 1
    (True) or 0 (False); alone among slices, None and `...` it is a new axis."""
    k = [j for j, i in enumerate(idx) if _scalar_bool(i)]
    if len(k) > 1 or any(
        not (i is None or i is Ellipsis or isinstance(i, slice)) for i in idx[: k[0]] + idx[k[0] + 1 :]
    ):
        _fail(
            NotImplementedError,
            "a boolean scalar index (x[True]) is supported only alone among slices, None and '...'",
        )
    (k,) = k
    keep = bool(idx[k])
    idx = idx[:k] + (None,) + idx[k + 1 :]
    y = getitem(x, idx)
    if keep:
        return y
    # the new axis's position: one axis per slice or None before it, plus what `...` stands for
    n_real = builtins.sum(1 for i in idx if isinstance(i, slice))
    pos = builtins.sum(1 if i is None or isinstance(i, slice) else aval_of(x).ndim - n_real for i in idx[:k])
    return getitem(y, (slice(None),) * pos + (slice(0, 0),))


def _is_mask(e) -> bool:
    return isinstance(e, np.ndarray) and e.dtype == np.dtype(bool)


def _slice_spec(e: slice, n: int) -> tuple:
    """(start, stop, step) of `e` on an axis of length n, normalized (stop None where a
    negative step runs through index 0; an empty slice as 0:0)."""
    start, stop, step = e.indices(n)
    if len(range(start, stop, step)) == 0:
        return (0, 0, 1)
    return (start, stop if stop >= 0 else None, step)


def getitem(x, idx):
    idx = idx if isinstance(idx, tuple) else (idx,)
    if any(_scalar_bool(i) for i in idx):
        return _bool_scalar_index(x, idx)
    raw = []
    for i in idx:
        if i is None or i is Ellipsis or isinstance(i, slice) or _is_int_scalar(i):
            raw.append(i)
            continue
        arr = _index_array(i)
        if arr is None:
            _fail(
                IndexError,
                f"only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and integer or "
                f"boolean arrays are valid indices, got {type(i).__name__} {i!r}",
            )
        raw.append(arr)
    if builtins.sum(1 for i in raw if i is Ellipsis) > 1:
        _fail(IndexError, "an index can only have a single ellipsis ('...')")

    def consumed(e) -> int:  # how many axes of x an entry indexes
        return 0 if e is None or e is Ellipsis else (e.ndim if _is_mask(e) else 1)

    n_real = builtins.sum(consumed(e) for e in raw)
    if n_real > x.ndim:
        _fail(IndexError, f"too many indices for array {x.aval}: {n_real} indices")
    # boolean masks expand into one integer array per masked axis, checked against those axes
    entries, pos = [], 0
    for e in raw:
        if e is Ellipsis:
            entries += [slice(None)] * (x.ndim - n_real)
            pos += x.ndim - n_real
        elif _is_mask(e):
            for k, d in enumerate(e.shape):
                if x.shape[pos + k] != d:
                    _fail(
                        IndexError,
                        f"boolean index did not match indexed array along axis {pos + k}; size of axis "
                        f"is {x.shape[pos + k]} but size of corresponding boolean axis is {d}",
                    )
            entries.extend(np.nonzero(e))
            pos += e.ndim
        else:
            entries.append(e)
            pos += consumed(e)
    entries += [slice(None)] * (x.ndim - pos)
    advanced = any(isinstance(e, (np.ndarray, Tracer)) for e in entries)
    # 1. new axes
    if any(e is None for e in entries):
        it = iter(x.shape)
        x = reshape(x, tuple(1 if e is None else next(it) for e in entries))
        entries = [slice(None) if e is None else e for e in entries]
    # 2. basic slicing; integers too when there is no advanced index
    spec, drop, adv = [], [], []
    for ax, (e, n) in enumerate(zip(entries, x.shape)):
        if isinstance(e, slice):
            spec.append(_slice_spec(e, n))
        elif _is_int_scalar(e):
            if not -n <= e < n:
                _fail(IndexError, f"index {e} is out of bounds for axis {ax} with size {n} (array {x.aval})")
            if advanced:
                adv.append((ax, np.asarray(int(e) % n)))
                spec.append(_full_slice(n))
            else:
                spec.append((int(e) % n, int(e) % n + 1, 1))
                drop.append(ax)
        else:
            adv.append((ax, e))
            spec.append(_full_slice(n))
    if any(s != _full_slice(n) for s, n in zip(spec, x.shape)):
        x = bind(sh.slice_p, x, spec=tuple(spec))
    if drop:
        x = reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in drop))
    if not adv:
        return x
    return _advanced(x, adv)


def _normalize_index(i, n, ax):
    if traced(i):
        return np.where(i < 0, i + n, i)
    i = np.asarray(i, dtype=np.int64)
    if i.size and (i.min() < -n or i.max() >= n):
        bad = i[(i < -n) | (i >= n)].flat[0]
        _fail(IndexError, f"index {bad} is out of bounds for axis {ax} with size {n}")
    return np.where(i < 0, i + n, i)


def _advanced(x, adv):
    """Gather for integer-array indices `adv` = [(axis, index array)] of x."""
    axes = [a for a, _ in adv]
    rest = [a for a in range(x.ndim) if a not in axes]
    idx = [_normalize_index(i, x.shape[a], a) for a, i in adv]
    try:
        bshape = np.broadcast_shapes(*(aval_of(i).shape for i in idx))
    except ValueError:
        _fail(
            IndexError,
            "shape mismatch: indexing arrays could not be broadcast together with shapes "
            + " ".join(str(aval_of(i).shape) for i in idx),
        )
    # flat index into the advanced axes (row-major), then over the rest
    flat = 0
    for (a, _), i in zip(adv, idx):
        flat = flat * x.shape[a] + i
    rest_shape = tuple(x.shape[a] for a in rest)
    r = int(np.prod(rest_shape, dtype=np.int64))
    y = transpose(x, axes + rest)
    flat = np.broadcast_to(flat, bshape) if not traced(flat) else broadcast_to(flat, bshape)
    # one flat index per element of the result: the index dims, then the other axes
    flat = np.reshape(flat, bshape + (1,) * len(rest)) * r + np.arange(r).reshape(rest_shape)
    if not traced(flat):
        flat = np.array(flat, dtype=np.int64)  # contiguous, and 0-d stays 0-d
    out = ix.gather(y, flat)
    # NumPy puts the broadcast index dims where the indices were if adjacent
    adjacent = axes == list(range(axes[0], axes[0] + len(axes)))
    if adjacent and axes[0] > 0:
        nb = len(bshape)
        k = axes[0]
        perm = list(range(nb, nb + k)) + list(range(nb)) + list(range(nb + k, nb + len(rest)))
        out = transpose(out, perm)
    return out


def take(x, indices, axis=None, out=None, mode="raise"):
    _no_out("np.take", out)
    if not traced(x) and not traced(indices):
        return np.take(x, indices, axis=axis, mode=mode)
    if mode not in ("raise", "wrap", "clip"):
        _fail(ValueError, f"np.take: mode must be 'raise', 'wrap' or 'clip', got {mode!r}")
    x = _lift(x)
    if axis is None:
        x, axis = ravel(x), 0
    a = aval_of(x)
    (ax,) = normalize_axes(axis, a.ndim, "np.take")
    ind = _lift(indices)
    ai = aval_of(ind)
    if ai.dtype.kind not in "biu":
        _fail(TypeError, f"np.take: indices must be integers, got {ai}")
    n = a.shape[ax]
    out_shape = a.shape[:ax] + ai.shape + a.shape[ax + 1 :]
    if int(np.prod(a.shape[:ax], dtype=np.int64)) == 0:  # NumPy takes nothing, checks nothing
        return _fill_like(x, 0, shape=out_shape)
    if n == 0 and ai.size:
        _fail(IndexError, f"np.take: cannot do a non-empty take from an empty axis ({a}, axis {ax})")
    if mode != "raise" and n:  # bring every index into range first, as NumPy does
        ind = np.mod(ind, n) if mode == "wrap" else np.clip(ind, 0, n - 1)
    if not traced(ind) and ind.ndim == 0:
        return getitem(x, (slice(None),) * ax + (int(ind),))
    return getitem(x, (slice(None),) * ax + (ind,))


def take_along_axis(x, indices, axis):
    a, ai = aval_of(x), aval_of(indices)
    if axis is None:
        return take(ravel(_lift(x)), ravel(_lift(indices)))
    (ax,) = normalize_axes(axis, a.ndim, "np.take_along_axis")
    if ai.ndim != a.ndim:
        _fail(
            ValueError,
            f"np.take_along_axis: indices {ai} and array {a} must have the same number of dimensions",
        )
    idx = []
    for d in range(a.ndim):
        if d == ax:
            idx.append(indices)
        else:
            shape = [1] * a.ndim
            shape[d] = a.shape[d]
            idx.append(np.arange(a.shape[d]).reshape(shape))
    return getitem(_lift(x), tuple(idx))


def shape(x):
    return aval_of(x).shape


def ndim(x):
    return aval_of(x).ndim


def size(x, axis=None):
    a = aval_of(x)
    return a.size if axis is None else a.shape[axis]


def round_(x, decimals=0, out=None):
    _no_out("np.round", out)
    dt = aval_of(x).dtype
    if dt == np.dtype(bool):  # NumPy rounds booleans in float16, and only to integers
        if decimals != 0:
            _fail(TypeError, "np.round: a boolean array can only be rounded to decimals=0 (as in NumPy)")
        x = astype(_lift(x), np.float16)
    elif dt.kind in "iu":
        if decimals >= 0:
            return x
        # NumPy divides in float64, rounds half to even, multiplies back and casts
        f = 10.0 ** (-decimals)
        return astype(np.rint(astype(_lift(x), np.float64) / f) * f, dt)
    if decimals == 0:
        return np.rint(x)
    if decimals > 0:
        s = 10.0**decimals
        return np.rint(x * s) / s
    s = 10.0 ** (-decimals)
    return np.rint(x / s) * s


FUNCTIONS = {
    np.sum: sum,
    np.prod: prod,
    np.max: max,
    np.amax: max,
    np.min: min,
    np.amin: min,
    np.mean: mean,
    np.var: var,
    np.std: std,
    np.argmax: argmax,
    np.argmin: argmin,
    np.cumsum: cumsum,
    np.linalg.norm: norm,
    np.reshape: reshape,
    np.ravel: ravel,
    np.transpose: transpose,
    np.swapaxes: swapaxes,
    np.moveaxis: moveaxis,
    np.expand_dims: expand_dims,
    np.squeeze: squeeze,
    np.broadcast_to: broadcast_to,
    np.atleast_1d: atleast_1d,
    np.atleast_2d: atleast_2d,
    np.concatenate: concatenate,
    np.stack: stack,
    np.hstack: hstack,
    np.vstack: vstack,
    np.flip: flip,
    np.fliplr: lambda x: flip(x, 1),
    np.flipud: lambda x: flip(x, 0),
    np.tile: tile,
    np.repeat: repeat,
    np.diff: diff,
    np.split: split,
    np.matmul: matmul,
    np.dot: dot,
    np.vdot: vdot,
    np.inner: inner,
    np.outer: outer,
    np.tensordot: tensordot,
    np.einsum: einsum,
    np.trace: trace,
    np.diagonal: diagonal,
    np.take: take,
    np.take_along_axis: take_along_axis,
    np.where: where,
    np.clip: clip,
    np.zeros_like: zeros_like,
    np.ones_like: ones_like,
    np.full_like: full_like,
    np.copyto: lambda dst, src, casting="same_kind", where=True: _fail(
        TracerError,
        "np.copyto writes a traced value into a NumPy array (np.full_like(numpy_array, traced) does "
        "this); use np.full_like(traced_array, value) or np.broadcast_to(value, shape) instead",
    ),
    np.empty_like: zeros_like,
    np.shape: shape,
    np.ndim: ndim,
    np.size: size,
    np.round: round_,
    np.fix: lambda x, out=None: (_no_out("np.fix", out), _trunc(strong(x)))[1],
    np.around: round_,
    np.copy: lambda x, order="K", subok=False: copy(x),
    np.real: lambda x: x,
    np.result_type: lambda *xs: result_dtype(
        *(aval_of(x) if not isinstance(x, (np.dtype, type)) else Aval((), np.dtype(x)) for x in xs)
    ),
}


# functions that keep Python numbers weakly typed (NEP 50); every other NumPy
# function makes arrays of its operands, so a traced Python float becomes float64
_WEAK_AWARE = {np.where, np.clip}


def _strong_args(v):
    if isinstance(v, (list, tuple)):
        return type(v)(_strong_args(x) for x in v)
    return strong(v)


def handle_function(func, args, kwargs):
    if func not in _WEAK_AWARE:
        args = _strong_args(args)
        kwargs = {k: strong(v) for k, v in kwargs.items()}
    impl = FUNCTIONS.get(func)
    if impl is None:
        name = getattr(func, "__module__", "numpy").replace("numpy._core.", "numpy.")
        _fail(NotImplementedError, f"tracediff does not support {name}.{func.__name__} on traced arrays")
    return impl(*args, **kwargs)
