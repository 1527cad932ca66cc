"""Device functions the generated CUDA kernels call (imported as `dl`), with
NumPy's answers where CUDA's own operations differ: integer division by 0 and
of MIN by -1, negative integer powers (an error, as NumPy raises), the signs
of float remainders and floor quotients, logaddexp at infinities.

Rounding and the functions NumPy has and Python's `math` lacks go to CUDA's
libdevice; under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1), where libdevice
is a stub, they are NumPy's own.
"""

from __future__ import annotations

import math
import types

import numpy as np
from numba import config, cuda

SIMULATOR = bool(config.ENABLE_CUDASIM)
ERR_POW = 1  # the error code of a negative integer power (see CudaWriter.errors)
LN2 = math.log(2.0)


def _device(fn):
    return cuda.jit(device=True, inline=True)(fn)


if SIMULATOR:
    # In the simulator kernels run as Python: `math` would raise where a GPU (and
    # NumPy) gives nan or inf (sqrt(-1), exp(1000)) and compute float32 in float64.
    # Generated modules import this namespace as `math` instead: NumPy's ufuncs.
    def _quiet(fn):
        def call(*args):
            with np.errstate(all="ignore"):
                return fn(*args)

        return call

    _NUMPY_MATH = {
        "asin": "arcsin",
        "acos": "arccos",
        "atan": "arctan",
        "asinh": "arcsinh",
        "acosh": "arccosh",
        "atanh": "arctanh",
        "atan2": "arctan2",
    }
    npmath = types.SimpleNamespace(
        **{
            name: _quiet(getattr(np, _NUMPY_MATH.get(name, name)))
            for name in (
                "exp",
                "expm1",
                "log",
                "log2",
                "log10",
                "log1p",
                "sqrt",
                "sin",
                "cos",
                "tan",
                "asin",
                "acos",
                "atan",
                "sinh",
                "cosh",
                "tanh",
                "asinh",
                "acosh",
                "atanh",
                "atan2",
                "hypot",
                "isnan",
                "isinf",
                "isfinite",
                "fmod",
                "copysign",
            )
        },
        pi=math.pi,
        e=math.e,
        inf=math.inf,
        nan=math.nan,
    )
    math = npmath  # noqa: F811  (the device functions below too)
    _unary = {
        "floor": np.floor,
        "ceil": np.ceil,
        "rint": np.rint,
        "exp2": np.exp2,
        "cbrt": np.cbrt,
    }
    for _name, _fn in _unary.items():
        globals()[f"{_name}_f32"] = _device(lambda x, _fn=_fn: np.float32(_fn(x)))
        globals()[f"{_name}_f64"] = _device(lambda x, _fn=_fn: np.float64(_fn(x)))
else:
    npmath = math  # (a module written for the simulator, compiled for a GPU: the real math)
    from numba.cuda import libdevice as _ld

    floor_f32, floor_f64 = _device(lambda x: _ld.floorf(x)), _device(lambda x: _ld.floor(x))
    ceil_f32, ceil_f64 = _device(lambda x: _ld.ceilf(x)), _device(lambda x: _ld.ceil(x))
    rint_f32, rint_f64 = _device(lambda x: _ld.rintf(x)), _device(lambda x: _ld.rint(x))
    exp2_f32, exp2_f64 = _device(lambda x: _ld.exp2f(x)), _device(lambda x: _ld.exp2(x))
    cbrt_f32, cbrt_f64 = _device(lambda x: _ld.cbrtf(x)), _device(lambda x: _ld.cbrt(x))


@_device
def ipow(x, y, err):
    """x ** y for integers by squaring, wrapping as NumPy's loop does; a negative
    exponent flags ERR_POW (NumPy raises) and gives 0."""
    if y < 0:
        err[0] = ERR_POW
        return x - x
    r = x - x + 1
    b = x
    while y > 0:
        if y & 1:
            r = r * b
        b = b * b
        y = y >> 1
    return r


@_device
def ifloordiv(x, y):
    """x // y for integers, as NumPy: 0 for y == 0, and MIN // -1 wraps to MIN."""
    if y == 0:
        return x - x
    if y == -1:
        return -x
    return x // y


@_device
def irem(x, y):
    """x % y for integers, as NumPy: 0 for y == 0 and y == -1."""
    if y == 0 or y == -1:
        return x - x
    return x % y


@_device
def ffloordiv(a, b):
    """NumPy's floor quotient of floats (npy_divmod), in float64."""
    a = np.float64(a)
    b = np.float64(b)
    mod = math.fmod(a, b)
    if b == 0:
        return a / b
    div = (a - mod) / b
    if mod != 0:
        if (b < 0) != (mod < 0):
            div -= 1.0
    if div != 0:
        q = floor_f64(div)
        if div - q > 0.5:
            q += 1.0
        return q
    return math.copysign(0.0, a / b)


@_device
def frem(a, b):
    """NumPy's float remainder (the divisor's sign), in float64."""
    a = np.float64(a)
    b = np.float64(b)
    mod = math.fmod(a, b)
    if b == 0:
        return mod
    if mod != 0:
        if (b < 0) != (mod < 0):
            mod += b
        return mod
    return math.copysign(0.0, b)


@_device
def logaddexp(x, y):
    """log(exp(x) + exp(y)) without overflow, in float64; x + log 2 when x == y
    (so inf + inf is inf, not nan)."""
    x = np.float64(x)
    y = np.float64(y)
    if x == y:
        return x + LN2
    d = x - y
    if d > 0:
        return x + math.log1p(math.exp(-d))
    if d <= 0:
        return y + math.log1p(math.exp(d))
    return d  # a nan
