"""What every family of the front end shares: avals of values, NumPy's promotion, operands
prepared as a dtype and a shape, axes, errors naming the user's line.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..builder import Builder, bind
from ..core import Aval
from ..prims import elementwise as ew
from ..prims import shape as sh
from ..provenance import at, user_src
from ..tracer import Tracer, TracerError


def _fail(exc: type, msg: str):
    raise exc(msg + at(user_src()))


def ufunc_name(ufunc) -> str:
    """How the user wrote a ufunc: `np.exp`, or `scipy.special.gammaln` for SciPy's."""
    import sys

    special = sys.modules.get("scipy.special")
    if special is not None and getattr(special, ufunc.__name__, None) is ufunc:
        return f"scipy.special.{ufunc.__name__}"
    return f"np.{ufunc.__name__}"


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
        return Aval((), np.dtype(np.complex128), weak=True)
    a = np.asarray(x)
    if a.dtype == object:
        _fail(TypeError, f"cannot use {type(x).__name__} as an array")
    return Aval(a.shape, a.dtype)


def _token(av: Aval):
    """What NumPy's promotion takes: a dtype, or a Python type for weak values."""
    if av.weak:
        return {"f": float, "c": complex}.get(av.dtype.kind, int)
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
    toks = [{"f": 0.0, "c": 0j}.get(a.dtype.kind, 0) if a.weak else a.dtype for a in avals]
    return np.result_type(*toks)


def broadcast_shapes(avals, name: str) -> tuple[int, ...]:
    try:
        return np.broadcast_shapes(*(a.shape for a in avals))
    except ValueError:
        _fail(ValueError, f"{name}: operands could not be broadcast together: {_fmt(avals)}")


def _emit(b: Builder, prim, *args, **params):
    return b.emit(prim, args, params)[0]


def prepare(b: Builder, x: Any, dtype: np.dtype, shape: tuple, weak: bool = False, int_fits: bool = False):
    """`x` as an operand of `dtype` and `shape` in builder `b`. `int_fits`: a Python
    int must fit the dtype (NEP 50, as ufuncs check; np.where wraps it instead)."""
    if isinstance(x, Tracer):
        if x.dtype != dtype:
            x = _emit(b, ew.convert_p, x, dtype=np.dtype(dtype))
    else:
        if int_fits and type(x) is int and np.dtype(dtype).kind in "iu":
            info = np.iinfo(dtype)
            if not info.min <= x <= info.max:
                _fail(OverflowError, f"Python integer {x} out of bounds for {np.dtype(dtype)}")
        x = b.const(x, np.dtype(dtype), weak)
    if tuple(x.aval.shape) != tuple(shape):
        x = _emit(b, sh.broadcast_p, x, shape=tuple(shape))
    return x


def strong(x: Any) -> Any:
    """A traced Python number as the NumPy value NumPy's functions make of it."""
    if traced(x) and x.aval.weak:
        return bind(ew.convert_p, x, dtype=x.dtype)
    return x


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


def _lift(x):
    """A constant as a tracer-compatible value (shape ops on constants stay NumPy)."""
    return x if traced(x) else np.asarray(x)
