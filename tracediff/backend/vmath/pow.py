"""Vectorizable x**y, float32 and float64.

float32: |x|^y = e^{y log|x|} evaluated in float64 with the float64
exp and log of this package. Their relative errors are about 2^-52, and
|y log|x|| <= 104 wherever the float32 result is neither 0 nor inf, so the
float64 value is within 2^-45 of the exact power: the float32 result is the
correctly rounded one except for rare double roundings (<= 0.5 ulp + tiny).

The C99 special cases are selects: x**0 == 1 and 1**y == 1 (NaN too),
(-1)**(+-inf) == 1, a negative finite x with a finite non-integer y is NaN,
a negative x (-0 and -inf included) with an odd integer y keeps its sign.
float64 uses the same selects; its |x|^y is e^{y log|x|} with log|x| and the
product carried in double-double (see the comment before _log_dd): max error
0.65 ulp measured on ~50M points (7M of them in tests/test_vmath_pow.py), equal
bit for bit to libm's pow on a grid of special values.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .bits import bits_of_f32, bits_of_f64, f64_from_bits, fma
from .exp import (
    EXP_HI,
    EXP_LO,
    LN2_HI,
    LN2_LO,
    LOG2E,
    SHIFT,
    SHIFT_BITS,
    _exp_r_f64,
    _scales_f64,
    exp_f64,
)
from .log import log_f64

__all__ = ["pow_f32", "pow_f64"]


@njit(forceinline=True, error_model="numpy", cache=True)
def pow_f32(x, y):
    xd = np.float64(x)
    yd = np.float64(y)
    r = exp_f64(yd * log_f64(abs(xd)))
    is_int = np.floor(yd) == yd  # +-inf counts as an even integer, as C99 wants
    is_odd = is_int & (np.floor(yd * 0.5) * 2.0 != yd)
    if (bits_of_f32(x) < 0) & is_odd:  # sign bit of x: -0 and -inf too
        r = -r
    if (xd < 0.0) & (xd > -np.inf) & (abs(yd) < np.inf) & ~is_int:
        r = np.nan
    if (yd == 0.0) | (xd == 1.0) | ((xd == -1.0) & (abs(yd) == np.inf)):
        r = 1.0
    return np.float32(r)


# ---------------------------------------------------------------- float64
# log|x| = LH + LL (double-double, relative error ~2^-67), fdlibm e_pow.c's
# reduction made branch-free and carried with fma instead of bit-splitting:
# |x| = 2^k m, m in [sqrt(3)/2, sqrt(3)) from the integer bits (subnormals
# pre-scaled by 2^54); b = 1.5 if m > sqrt(3/2) else 1 (a select), so that
# s = (m - b) / (m + b) has |s| <= 0.1011 (m - b is exact, m + b an exact
# two-term sum, s = sh + sl with the residual of one fma).
# log m = log b + 2 atanh s = log b + 2s + (2/3) s^3 + s^5 R(s^2), where
# 2s is exact, (2/3) s^3 is formed as an exact-ish double-double product
# (relative error ~2^-100; it is at most 2^-8.2 of log m) and s^5 R(s^2) is
# at most 2^-15.6 of log m, so its plain float64 evaluation and the fit error
# of R (R0..R5: a Remez fit of R(z) = sum 2 z^j / (2j + 5) on z in [0, 0.01030]
# for relative error, done in 50-digit decimal arithmetic; 2^-52.3 before and
# 2^-52 after rounding the coefficients to float64) stay below 2^-67 of log m.
# k ln2 + log b: k LN2_HI + LOG15_HI is exact (both multiples of 2^-32), the
# low parts k LN2_LO + LOG15_LO go into the low sum.
#
# z = y (LH + LL) = ZH + ZL exactly but for the rounding of y LL (fma for the
# low part of y LH). |z| < 746 wherever the result is neither 0 nor inf, so
# the relative error of z costs at most 746 * 2^-67 ~ 2^-57.5 relative in the
# result (< 0.05 ulp).
#
# e^(ZH + ZL): exp.py's reduction ZH = k ln2 + r0 (r0 exact) with ZL and
# -k LN2_LO folded into one two-sum, r = rh + rl, |rl| <= 2^-54, then exp.py's
# polynomial and its scaling (overflow in the last product, subnormal results
# rounded once, the subnormal case told by the result). Measured: <= 0.65 ulp
# (0.5 of it the final rounding), thresholds included.
LN2_HI_L = 6.93147180369123816490e-01  # 0x3FE62E42FEE00000 (fdlibm): multiple of 2^-32
LN2_LO_L = 1.90821492927058770002e-10  # ln 2 - LN2_HI_L
LOG15_HI = 0.4054651081096381  # log(1.5) rounded to a multiple of 2^-32 (0x1.9f323ecc00000p-2)
LOG15_LO = -1.4737129240254587e-12  # log(1.5) - LOG15_HI
TWO3_HI = 0.6666666666666666  # 2/3 = TWO3_HI + TWO3_LO to ~2^-107
TWO3_LO = 3.700743415417188e-17
SQRT3_HALF_BITS = 0x3FEBB67AE8584CAA  # bits of sqrt(3)/2
SQRT_1_5 = 1.224744871391589
TWO54 = 18014398509481984.0
MIN_NORMAL_D = 2.2250738585072014e-308
# R(z) = R0 + R1 z + ... + R5 z^5 ~ (2 atanh(s) - 2s - (2/3) s^3) / s^5, z = s^2
R0 = 0.3999999999999999
R1 = 0.28571428571477897
R2 = 0.2222222216640328
R3 = 0.18181841269014082
R4 = 0.1538030436412276
R5 = 0.13703263277130504


@njit(forceinline=True, error_model="numpy", cache=True)
def _log_dd(ax):
    """log(ax) = hi + lo, |lo| <= ulp(hi)/2, for ax > 0 finite (subnormals included)."""
    small = ax < MIN_NORMAL_D
    xs = ax * TWO54 if small else ax
    ix = bits_of_f64(xs)
    ki = (ix - SQRT3_HALF_BITS) >> 52
    m = f64_from_bits(ix - (ki << 52))  # in [sqrt(3)/2, sqrt(3))
    k = np.float64(ki) - (54.0 if small else 0.0)
    big = m > SQRT_1_5
    b = 1.5 if big else 1.0
    u = m - b  # exact
    dh = b + m  # m + b == dh + dl exactly (|b| >= |m| or the same binade)
    dl = m - (dh - b)
    inv = 1.0 / dh
    sh = u * inv
    sl = (fma(-sh, dh, u) - sh * dl) * inv  # s = sh + sl to ~2^-104
    p2h = sh * sh
    p2l = fma(sh, sh, -p2h)
    p3h = p2h * sh
    p3l = fma(p2h, sh, -p3h) + (p2l * sh + 3.0 * p2h * sl)  # s^3 = p3h + p3l
    th = p3h * TWO3_HI
    tl = fma(p3h, TWO3_HI, -th) + (p3l * TWO3_HI + p3h * TWO3_LO)  # (2/3) s^3
    r = R5
    r = fma(r, p2h, R4)
    r = fma(r, p2h, R3)
    r = fma(r, p2h, R2)
    r = fma(r, p2h, R1)
    r = fma(r, p2h, R0)
    tl = fma(p3h * p2h, r, tl)
    a = 2.0 * sh
    c = a + th  # |a| >= |th|: Fast2Sum
    e1 = th - (c - a)
    h0 = k * LN2_HI_L + (LOG15_HI if big else 0.0)  # exact
    hi = h0 + c  # |h0| >= 0.28 > |c| unless h0 == 0: Fast2Sum
    e2 = c - (hi - h0)
    lo = e2 + (e1 + (2.0 * sl + (tl + fma(k, LN2_LO_L, LOG15_LO if big else 0.0))))
    h = hi + lo
    return h, (hi - h) + lo


@njit(forceinline=True, error_model="numpy", cache=True)
def _scale_dd(k, hi, tail):
    """2^k (hi + tail) rounded once, for -1076 <= k <= 1025: exp.py's _scale_f64, but
    it tells the subnormal results by the normally scaled value itself (with ZL the
    result can lie up to ~250 ulp either side of e^ZH, so the test on the argument
    that exp_f64 makes would be off near 2^-1022)."""
    s1, s2 = _scales_f64(k)
    # rounded twice below 2^-1022, then off by up to 1 ulp: y <= 2^-1022 catches them all
    # (e^z > 2^-1022 + 1/2 ulp gives y > 2^-1022; the other path is right below that)
    y = ((hi + tail) * s1) * s2
    ks = k if k < -1000 else -1000
    sc = f64_from_bits((ks + 2045) << 52)  # 2^(k + 1022), normal
    a = hi * sc
    u = 1.0 + a  # 1 + 2^1022 e^z rounded once on the grid of [1, 2): the subnormal grid
    t = u + (((1.0 - u) + a) + tail * sc)
    ys = (t - 1.0) * MIN_NORMAL_D
    return ys if y <= MIN_NORMAL_D else y


@njit(forceinline=True, error_model="numpy", cache=True)
def pow_f64(x, y):
    ax = abs(x)
    lh, ll = _log_dd(ax)
    if not (ax < np.inf):  # inf and NaN
        lh = ax
    if ax == 0.0:
        lh = -np.inf
    zh = y * lh
    zl = fma(y, lh, -zh) + y * ll
    inr = (zh < EXP_HI) & (zh > EXP_LO)  # False for NaN (and inf)
    zc = zh if zh < EXP_HI else EXP_HI  # NaN -> EXP_HI, selected back below
    zc = zc if zc > EXP_LO else EXP_LO
    zl = zl if inr else 0.0
    t = fma(zc, LOG2E, SHIFT)
    kf = t - SHIFT
    k = bits_of_f64(t) - SHIFT_BITS
    r0 = fma(-kf, LN2_HI, zc)  # exact (as in exp.py)
    cl = fma(-kf, LN2_LO, zl)
    rh = r0 + cl  # two-sum: r0 + cl == rh + rl
    bb = rh - r0
    rl = (r0 - (rh - bb)) + (cl - bb)
    hi, tail, _ = _exp_r_f64(rh, rl)
    r = _scale_dd(k, hi, tail)
    if zh != zh:
        r = np.nan
    is_int = np.floor(y) == y  # +-inf counts as an even integer, as C99 wants
    is_odd = is_int & (np.floor(y * 0.5) * 2.0 != y)
    if (bits_of_f64(x) < 0) & is_odd:  # sign bit of x: -0 and -inf too
        r = -r
    if (x < 0.0) & (x > -np.inf) & (abs(y) < np.inf) & ~is_int:
        r = np.nan
    if (y == 0.0) | (x == 1.0) | ((x == -1.0) & (abs(y) == np.inf)):
        r = 1.0
    return r
