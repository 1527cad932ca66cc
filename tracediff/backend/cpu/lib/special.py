"""Special functions for compiled CPU code: SciPy's own scalar implementations.

Each function calls the C function behind `scipy.special.cython_special` (the
double-precision version), so compiled values are SciPy's to the last bit. The
call goes through a named external symbol (registered with LLVM when this module
is imported), not a ctypes pointer: Numba can then cache the code that calls it,
and the address is resolved again in every process. float32 operands are
computed in float64 and rounded by the caller (the scalar templates in
`tracediff/prims/special.py`).

`polygamma` for n >= 1 needs the Hurwitz zeta function, which cython_special
does not export: it is written here (Euler-Maclaurin summation), so its values
may differ from SciPy's in the last bits (see the accuracy table in the guide).
"""

from __future__ import annotations

import math

import llvmlite.binding as llvm
import numba
import numpy as np
import scipy.special.cython_special as _cs
from numba import types
from numba.extending import get_cython_function_address


def _capsule_name(name: str, nargs: int, ctype: str) -> str:
    """The exported name of cython_special's real `ctype` version of `name`
    (fused functions are exported as __pyx_fuse_<k><name>, one per type)."""
    want = f"{ctype} (" + ", ".join([ctype] * nargs) + ", int __pyx_skip_dispatch)"
    for cand in (name, *(f"__pyx_fuse_{k}{name}" for k in range(4))):
        cap = _cs.__pyx_capi__.get(cand)
        if cap is not None and want in repr(cap):
            return cand
    raise ImportError(f"scipy.special.cython_special exports no {want} version of {name}")


def _external(name: str, nargs: int, ctype: str = "double"):
    """A Numba-callable external function `ctype name(ctype..., int)`."""
    sym = f"tracediff_scipy_{name}_{ctype}"
    addr = get_cython_function_address("scipy.special.cython_special", _capsule_name(name, nargs, ctype))
    llvm.add_symbol(sym, addr)
    t = types.float64 if ctype == "double" else types.float32
    return types.ExternalFunction(sym, t(*([t] * nargs), types.intc))


_erf = _external("erf", 1)
_erfc = _external("erfc", 1)
_erfcx = _external("erfcx", 1)
_erfinv = _external("erfinv", 1)
_erfcinv = _external("erfcinv", 1)
_ndtr = _external("ndtr", 1)
_ndtri = _external("ndtri", 1)
_log_ndtr = _external("log_ndtr", 1)
_gammaln = _external("gammaln", 1)
_psi = _external("psi", 1)
_gamma = _external("gamma", 1)
_gammasgn = _external("gammasgn", 1)
_i0 = _external("i0", 1)
_i1 = _external("i1", 1)
_i0e = _external("i0e", 1)
_i1e = _external("i1e", 1)
_j0 = _external("j0", 1)
_j1 = _external("j1", 1)
_y0 = _external("y0", 1)
_y1 = _external("y1", 1)
_iv = _external("iv", 2)
_ive = _external("ive", 2)
_jv = _external("jv", 2)
_yv = _external("yv", 2)
_gammainc = _external("gammainc", 2)
_gammaincc = _external("gammaincc", 2)
_beta = _external("beta", 2)
_betaln = _external("betaln", 2)
_xlogy = _external("xlogy", 2)
_xlog1py = _external("xlog1py", 2)

_erfinv_f32 = _external("erfinv", 1, "float")
_betainc = _external("betainc", 3)
_betainc_f32 = _external("betainc", 3, "float")
_stdtr = _external("stdtr", 2)
_stdtr_f32 = _external("stdtr", 2, "float")

_jit = numba.njit(cache=True, nogil=True)


# float32: SciPy has its own single-precision erfinv, betainc and stdtr, and computes
# x log y in float32
@_jit
def erfinv_f32(x):
    return _erfinv_f32(x, 0)


@_jit
def betainc(a, b, x):
    return _betainc(a, b, x, 0)


@_jit
def betainc_f32(a, b, x):
    return _betainc_f32(a, b, x, 0)


@_jit
def stdtr(df, t):
    return _stdtr(df, t, 0)


@_jit
def stdtr_f32(df, t):
    return _stdtr_f32(df, t, 0)


@_jit
def xlogy_f32(x, y):
    if x == 0 and not math.isnan(y):
        return np.float32(0)
    return x * math.log(y)


@_jit
def xlog1py_f32(x, y):
    if x == 0 and not math.isnan(y):
        return np.float32(0)
    return x * np.float32(math.log1p(np.float64(y)))  # (SciPy's log1p is double precision)


@_jit
def erf(x):
    return _erf(x, 0)


@_jit
def erfc(x):
    return _erfc(x, 0)


@_jit
def erfcx(x):
    return _erfcx(x, 0)


@_jit
def erfinv(x):
    return _erfinv(x, 0)


@_jit
def erfcinv(x):
    return _erfcinv(x, 0)


@_jit
def ndtr(x):
    return _ndtr(x, 0)


@_jit
def ndtri(x):
    return _ndtri(x, 0)


@_jit
def log_ndtr(x):
    return _log_ndtr(x, 0)


@_jit
def gammaln(x):
    return _gammaln(x, 0)


@_jit
def digamma(x):
    return _psi(x, 0)


@_jit
def gamma(x):
    return _gamma(x, 0)


@_jit
def gammasgn(x):
    return _gammasgn(x, 0)


@_jit
def i0(x):
    return _i0(x, 0)


@_jit
def i1(x):
    return _i1(x, 0)


@_jit
def i0e(x):
    return _i0e(x, 0)


@_jit
def i1e(x):
    return _i1e(x, 0)


@_jit
def j0(x):
    return _j0(x, 0)


@_jit
def j1(x):
    return _j1(x, 0)


@_jit
def y0(x):
    return _y0(x, 0)


@_jit
def y1(x):
    return _y1(x, 0)


@_jit
def iv(v, x):
    return _iv(v, x, 0)


@_jit
def ive(v, x):
    return _ive(v, x, 0)


@_jit
def jv(v, x):
    return _jv(v, x, 0)


@_jit
def yv(v, x):
    return _yv(v, x, 0)


@_jit
def gammainc(a, x):
    return _gammainc(a, x, 0)


@_jit
def gammaincc(a, x):
    return _gammaincc(a, x, 0)


@_jit
def beta(a, b):
    return _beta(a, b, 0)


@_jit
def betaln(a, b):
    return _betaln(a, b, 0)


@_jit
def xlogy(x, y):
    return _xlogy(x, y, 0)


@_jit
def xlog1py(x, y):
    return _xlog1py(x, y, 0)


# B_2k / (2k)!, k = 1..10: the Euler-Maclaurin correction terms (Abramowitz & Stegun 23.1)
_EM = (
    1.0 / 12.0,
    -1.0 / 720.0,
    1.0 / 30240.0,
    -1.0 / 1209600.0,
    1.0 / 47900160.0,
    -691.0 / 1307674368000.0,
    1.0 / 74724249600.0,
    -3617.0 / 10670622842880000.0,
    43867.0 / 5109094217170944000.0,
    -174611.0 / 802857662698291200000.0,
)


@_jit
def hurwitz_zeta(s, q):
    """zeta(s, q) = sum_k (q + k)^-s for s > 1: the first terms summed directly
    until q + n >= 16, the tail by Euler-Maclaurin (DLMF 25.11.5 with 2.10.1)."""
    if s == 1.0:
        return math.inf
    if s < 1.0 or math.isnan(s) or math.isnan(q):
        return math.nan
    if q <= 0.0 and q == math.floor(q):
        return math.inf
    if q <= 0.0 and s != math.floor(s):
        return math.nan  # (q + k)^-s is not real
    total = 0.0
    a = q
    while a < 16.0:
        total += a**-s
        a += 1.0
    # tail: integral + half the first term + the Bernoulli corrections
    total += a ** (1.0 - s) / (s - 1.0) + 0.5 * a**-s
    fac = s * a ** (-s - 1.0)  # s (s+1) ... (s+2k-2) a^(-s-2k+1), k = 1
    inv_a2 = 1.0 / (a * a)
    for k in range(len(_EM)):
        term = _EM[k] * fac
        total += term
        if abs(term) < 1e-17 * abs(total):
            break
        fac *= (s + 2 * k + 1) * (s + 2 * k + 2) * inv_a2
    return total


@_jit
def polygamma(n, x):
    """psi^(n)(x) = (-1)^(n+1) n! zeta(n + 1, x) for n >= 1, as scipy.special.polygamma."""
    if n == 0.0:
        return _psi(x, 0)
    sign = 1.0 if (n + 1.0) % 2.0 == 0.0 else -1.0
    return sign * _gamma(n + 1.0, 0) * hurwitz_zeta(n + 1.0, x)
