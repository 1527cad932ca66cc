"""Elementwise NumPy: ufuncs (primitives and compositions of them, in NumPy's loop dtype),
where, astype, clip, copy, stop_gradient and the *_like constructors.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

from ..builder import bind, innermost_builder
from ..prims import complex as cx
from ..prims import elementwise as ew
from ..prims import shape as sh
from ..tracer import TracerError, fresh_object
from .common import (
    _emit,
    _fail,
    _fmt,
    _lift,
    _no_options,
    _no_out,
    _resolve,
    _token,
    aval_of,
    broadcast_shapes,
    prepare,
    result_dtype,
    strong,
    traced,
    ufunc_name,
)

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
    result stays a weakly typed Python number (see `ufunc_api` for np.<ufunc>). The
    result is a new array, never an operand's tracer (+x, np.conjugate of a real x)."""
    return fresh_object(_ufunc_result(ufunc, args, kwargs), *args)


def _ufunc_result(ufunc: np.ufunc, args: tuple, kwargs: dict) -> Any:
    dtype = kwargs.pop("dtype", None)
    if kwargs:
        if kwargs.get("where", True) is not True:
            _fail(NotImplementedError, f"{ufunc_name(ufunc)}(..., where=...) is not supported; use np.where")
        _no_options(ufunc_name(ufunc), kwargs, _UFUNC_DEFAULTS)
    if len(args) != ufunc.nin:
        _fail(TypeError, f"{ufunc_name(ufunc)} takes {ufunc.nin} operand(s), got {len(args)}")
    comp = UFUNC_COMPOSITES.get(ufunc) or _scipy_composite(ufunc)
    prim = UFUNCS.get(ufunc) or _scipy_ufunc(ufunc)
    if comp is None and prim is None:
        avals = [aval_of(a) for a in args]
        try:  # operands NumPy has no loop for raise NumPy's TypeError first (float << 1)
            _resolve(ufunc, tuple(_token(a) for a in avals))
        except TypeError:
            _fail(TypeError, f"{ufunc_name(ufunc)}: no implementation for operands {_fmt(avals)}")
        _fail(NotImplementedError, f"tracediff does not support {ufunc_name(ufunc)}")
    b = innermost_builder(args)
    if b is None:
        return ufunc(*args, dtype=dtype) if dtype is not None else ufunc(*args)
    avals = [aval_of(a) for a in args]
    try:
        # Python numbers only (a traced loop counter and an int): as NumPy's default types
        toks = tuple(a.dtype if all(x.weak for x in avals) else _token(a) for a in avals)
        loop = _resolve(ufunc, toks, None if dtype is None else np.dtype(dtype))
    except TypeError:
        with_dt = "" if dtype is None else f" with dtype={np.dtype(dtype)}"
        _fail(TypeError, f"{ufunc_name(ufunc)}: no implementation for operands {_fmt(avals)}{with_dt}")
    shape = broadcast_shapes(avals, ufunc_name(ufunc))
    if ufunc is np.reciprocal and loop[0].kind in "iu":
        comp = _int_reciprocal
    if loop[0].kind == "c":
        comp = COMPLEX_COMPOSITES.get(ufunc, comp)
    if comp is not None:
        # a composite computes in NumPy's loop dtype, as the ufunc itself would; a
        # float16 loop (NumPy's for booleans) in float32, as NumPy's half loops do
        cdt = [np.dtype(np.float32) if dt == np.dtype(np.float16) else dt for dt in loop[: ufunc.nin]]
        ins = [astype(a, dt) if traced(a) else np.asarray(a, dt) for a, dt in zip(args, cdt)]
        return astype(comp(*ins), loop[-1])
    if ufunc in _COMPARE and loop[0].kind in "iu":
        known = _compare_out_of_range(ufunc, args, loop[0])
        if known is not None:  # NumPy compares such a Python int exactly: a constant
            return prepare(b, known, np.dtype(bool), shape)
    weak = all(a.weak for a in avals)
    ins = [prepare(b, a, dt, shape, weak, int_fits=True) for a, dt in zip(args, loop)]
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


# the comparison of an integer with a number above every integer of its dtype
_COMPARE = {
    np.less: True,
    np.less_equal: True,
    np.greater: False,
    np.greater_equal: False,
    np.equal: False,
    np.not_equal: True,
}
_FLIP = {
    np.less: np.greater,
    np.less_equal: np.greater_equal,
    np.greater: np.less,
    np.greater_equal: np.less_equal,
}


def _compare_out_of_range(ufunc: np.ufunc, args, dtype: np.dtype) -> bool | None:
    """`x <op> v` for integer x of `dtype` and a Python int v outside its range
    (NumPy 2 compares exactly, where arithmetic would raise OverflowError), or None."""
    if len(args) != 2 or not any(type(a) is int for a in args):
        return None
    if type(args[0]) is int:  # v <op> x is x <flipped op> v
        ufunc, args = _FLIP.get(ufunc, ufunc), args[::-1]
    v, info = args[1], np.iinfo(dtype)
    if type(v) is not int or info.min <= v <= info.max:
        return None
    above = _COMPARE[ufunc]  # x <op> v for v above the range
    return above if v > info.max or ufunc in (np.equal, np.not_equal) else not above


def ufunc_api(ufunc: np.ufunc, *args: Any, **kwargs: Any) -> Any:
    """`np.<ufunc>(*args)`: NumPy gives NumPy scalars, never Python numbers, so the
    result is strongly typed even when every operand is a Python number."""
    out = ufunc_call(ufunc, *args, **kwargs)
    return strong(out)


def _int_reciprocal(x):
    # NumPy divides 1 by x in C integers: 1, -1 and what 1/0 gives on this machine
    with np.errstate(all="ignore"):
        at_zero = np.reciprocal(np.zeros((), aval_of(x).dtype))
    return np.where(x == 0, at_zero, np.where((x == 1) | (x == -1), x, np.zeros((), aval_of(x).dtype)))


def _power_of_constant(e: np.ndarray, dt: np.dtype, avals):
    """x ** e for a constant e as NumPy's power loop computes it: a unary
    primitive where NumPy uses one, else None."""
    if dt.kind in "iu" and np.any(e < 0) and int(np.prod(np.broadcast_shapes(*(a.shape for a in avals)))):
        _fail(ValueError, f"np.power: integers to negative integer powers are not allowed ({_fmt(avals)})")
    if dt.kind == "f" and e.size == 1:
        # a scalar exponent of 0.5 is sqrt (sqrt(-0.0) is -0.0, pow(-0.0, 0.5) is +0.0)
        # and of -1 a reciprocal
        return {0.5: ew.sqrt_p, -1.0: ew.reciprocal_p}.get(e.item())
    return None


# scipy.special's ufuncs by name: their primitive, or a composite of NumPy calls
# (a family module adds to these; keyed by name, as importing scipy.special here
# would slow `import tracediff`)
SCIPY_UFUNCS: dict = {"expit": ew.logistic_p}
SCIPY_COMPOSITES: dict = {}


def _is_scipy(ufunc) -> bool:
    special = sys.modules.get("scipy.special")
    return special is not None and getattr(special, ufunc.__name__, None) is ufunc


def _scipy_ufunc(ufunc):
    """The primitive of a scipy.special ufunc, or None."""
    return SCIPY_UFUNCS.get(ufunc.__name__) if _is_scipy(ufunc) else None


def _scipy_composite(ufunc):
    return SCIPY_COMPOSITES.get(ufunc.__name__) if _is_scipy(ufunc) else None


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
    c = prepare(b, cond, np.dtype(bool), shape)
    # the result is an array even of two Python numbers: strong (NEP 50), float64 for floats
    return strong(_emit(b, ew.select_p, c, prepare(b, x, dt, shape), prepare(b, y, dt, shape)))


def astype(x, dtype):
    dtype = np.dtype(dtype)
    if not traced(x):
        return np.asarray(x).astype(dtype)
    if x.dtype == dtype and not x.aval.weak:
        return x
    if x.dtype.kind == "c" and dtype.kind != "c":  # NumPy keeps the real part
        x = bind(cx.real_p, x)
        if x.dtype == dtype:
            return x
    return bind(ew.convert_p, x, dtype=dtype)


def real(x):
    x = _lift(x)
    return bind(cx.real_p, x) if traced(x) and x.dtype.kind == "c" else x


def imag(x):
    x = _lift(x)
    if traced(x) and x.dtype.kind == "c":
        return bind(cx.imag_p, x)
    return zeros_like(x)


def angle(z, deg=False):
    z = strong(_lift(z))
    a = np.arctan2(imag(z), real(z)) if aval_of(z).dtype.kind == "c" else np.arctan2(np.zeros_like(z), z)
    return a * (180.0 / math.pi) if deg else a


# ufuncs on complex operands that are not holomorphic elementwise primitives
def _complex_abs(z):
    """|z| = hypot(Re z, Im z); at z = 0 its derivative is 0 (as JAX's), the
    hypot sees 1 there instead of 0/0."""
    re, im = real(z), imag(z)
    zero = (re == 0) & (im == 0)
    return np.where(zero, 0.0, np.hypot(np.where(zero, 1.0, re), im))


COMPLEX_COMPOSITES = {
    np.absolute: _complex_abs,
    np.conjugate: lambda z: bind(cx.conj_p, z),
    np.sign: lambda z: np.where(z == 0, z, z / astype(_complex_abs(np.where(z == 0, 1.0, z)), z.dtype)),
}


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
