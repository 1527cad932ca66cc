"""Vectorizable exp, exp2, expm1 and the logistic sigmoid, float32 and float64.

float64 (max errors measured on 55 million points per function: <= 0.62 ulp,
subnormal results included; asserted in tests/test_vmath_exp.py):

* Range reduction x = k ln2 + r, |r| <= ln2/2 (Cody-Waite): k is x/ln2 rounded to
  the nearest integer by adding 1.5 * 2**52, which also leaves k in the low bits
  of the sum (no float -> int conversion). ln2 = LN2_HI + LN2_LO with LN2_HI the
  float64 nearest ln2: x - k LN2_HI is exact in one fma (k != 0 means |x| > 0.34,
  and the difference fits in 53 bits); r = rh + rl keeps the rounding error of
  rh = (x - k LN2_HI) - k LN2_LO. exp2 splits x = k + u exactly, rh + rl = u ln2.
* e**r = 1 + r + r**2/2 + r**3 P(r), P of degree 9: C3..C12 below are a minimax
  fit of e**r - 1 on |r| <= 0.3468 for relative error (a discrete Remez in
  60-digit decimal arithmetic; with the coefficients rounded to float64 the
  error is < 2**-60.8 relative to e**r - 1). rh**2/2 is split exactly with an fma
  and e**r is returned as hi + tail, hi = 1 + rh + rh**2/2 rounded and tail the
  rest (< 0.008, to ~2**-58), so only the final rounding is a large one.
* 2**k is built from integer bits. x is clamped so k stays in range (NaN is
  mapped to a finite value there and selected back at the end), and 2**k is
  applied as two normal factors 2**(k>>1) 2**(k - (k>>1)), so overflow to inf
  happens in the last multiplication, exactly where it must. Results below
  2**-1022 are instead formed as 1 + 2**(k+1022) (hi + tail) - 1 (a select),
  which rounds once on the subnormal grid rather than twice.
* expm1: e**x - 1 = (2**k hi - 1) + 2**k tail with 2**k hi - 1 split exactly by a
  two-sum, so no cancellation is lost for any k; |x| < 2**-10 uses rh + (the
  rest of the series) directly (then r = x), +-0 returns x; for k > 60 the -1 is
  below 2**-60 relative and the exp result is used.
* sigmoid(x) = 1 / (1 + e**-x) for x >= 0 and e**x / (1 + e**x) for x < 0, with
  e = e**-|x| as an exact sum E + El, 1 + e as d + dl (two-sum) and the quotient
  q = N / d corrected once with the residual fma(-q, d, N) (one division).
  Below x = -50, sigmoid(x) = e**x (1 - e**x + ...) rounds like e**x: the exp
  result is used, which also gives the subnormal tail.

float32: evaluated in float64 (measured faster than a float32 evaluation of the
same accuracy, and about as fast as a plain float32 one good to ~1 ulp):
e**r - 1 = r + r**2 Q(r) with Q of degree 5 (D2..D7: the same Remez fit for
float64 coefficients, < 2**-32 relative), 2**k a single normal float64, the
result rounded once to float32 (subnormals and overflow included), so the
float32 results are correctly rounded but for rare near-ties (<= 0.504 ulp,
exhaustively checked).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .bits import bits_of_f64, f64_from_bits, fma, pow2_f64

__all__ = [
    "exp_f32",
    "exp_f64",
    "exp2_f32",
    "exp2_f64",
    "expm1_f32",
    "expm1_f64",
    "sigmoid_f32",
    "sigmoid_f64",
]

# ---- float64 constants ----
LOG2E = 1.4426950408889634
SHIFT = 6755399441055744.0  # 1.5 * 2**52: x + SHIFT rounds x to an integer k (|k| < 2**51)
SHIFT_BITS = 0x4338000000000000  # bits of SHIFT; bits(x + SHIFT) - SHIFT_BITS == k
LN2_HI = 0.6931471805599453  # the float64 nearest ln 2
LN2_LO = 2.3190468138462996e-17  # ln 2 - LN2_HI (to 2**-110)
# e**r = 1 + r + r**2 (C2 + C3 r + ... + C12 r**10) on |r| <= 0.3468, minimax for
# the relative error of e**r - 1 (< 2**-60.8 with these rounded coefficients;
# the fit's C2 rounds to 1/2 exactly, applied as rh * rh / 2)
C3 = 0.16666666666666677
C4 = 0.041666666666666685
C5 = 0.008333333333321835
C6 = 0.0013888888888896125
C7 = 0.00019841269885131473
C8 = 2.480158726445576e-05
C9 = 2.7557245319594176e-06
C10 = 2.7557347735173486e-07
C11 = 2.5108679428887864e-08
C12 = 2.088783025890524e-09
EXP_HI = 710.0  # e**710 overflows: larger x (and NaN, selected back later) clamp here
EXP_LO = -746.0  # e**-746 < 2**-1075 rounds to 0
EXP_SUBNORMAL = -708.3964185322641  # the least x with e**x >= 2**-1022
MIN_NORMAL = 2.0**-1022
EXP2_HI = 1030.0
EXP2_LO = -1080.0
EXPM1_LO = -40.0  # e**x - 1 rounds to -1 below -37.5
EXPM1_BIG_K = 60  # above, e**x - 1 rounds like e**x
SMALL = 2.0**-10  # expm1 sums its parts directly below
SIGMOID_EXP = -50.0  # below, sigmoid(x) = e**x (1 - e**x + ...) rounds like e**x
# float32 functions, evaluated in float64: e**r - 1 = r + r**2 (D2 + ... + D7 r**5),
# the same kind of fit: < 2**-32 relative to e**r - 1
D2 = 0.5000000044308566
D3 = 0.16666666369488337
D4 = 0.04166636024207543
D5 = 0.008333389491542383
D6 = 0.0013940684265768327
D7 = 0.0001984588351151094
EXP_HI_F = 89.0  # float32 e**x overflows above 88.73
EXP_LO_F = -104.0  # float32 e**x rounds to 0 below -103.98
EXP2_HI_F = 130.0
EXP2_LO_F = -152.0
EXPM1_LO_F = -20.0  # float32 e**x - 1 rounds to -1 below -17.4
SIGMOID_LO_F = -120.0  # float32 sigmoid(x) rounds to 0 below -104
ZERO_F = np.float32(0.0)


# ---------------------------------------------------------------- float64 core


@njit(forceinline=True, error_model="numpy", cache=True)
def _exp_r_f64(rh, rl):
    """e**(rh + rl) = hi + tail for |rh| <= 0.3468, |rl| < 2**-50: hi = 1 + rh + rh**2/2
    rounded, tail the rest (|tail| < 0.008, relative error < 2**-58)."""
    p = C12
    p = fma(p, rh, C11)
    p = fma(p, rh, C10)
    p = fma(p, rh, C9)
    p = fma(p, rh, C8)
    p = fma(p, rh, C7)
    p = fma(p, rh, C6)
    p = fma(p, rh, C5)
    p = fma(p, rh, C4)
    p = fma(p, rh, C3)
    hr = 0.5 * rh
    h2 = hr * rh
    e2 = fma(hr, rh, -h2)  # rh**2/2 == h2 + e2 exactly
    small = fma((h2 * rh) * p, 2.0, e2) + fma(rl, rh, rl)  # r**3 P3(r) + e2 + rl e**rh
    h1 = 1.0 + rh
    l1 = (1.0 - h1) + rh  # 1 + rh == h1 + l1 exactly
    hi = h1 + h2
    tail = ((h1 - hi) + h2) + (l1 + small)  # (h1 - hi) + h2: the exact error of hi
    return hi, tail, h2 + small  # the last: e**r - 1 - rh, for expm1 near 0


@njit(forceinline=True, error_model="numpy", cache=True)
def _reduce_f64(x):
    """k, rh, rl with x = k ln2 + rh + rl, |rh| <= 0.3468 (x finite, |x| < 2**40)."""
    t = fma(x, LOG2E, SHIFT)
    kf = t - SHIFT
    k = bits_of_f64(t) - SHIFT_BITS
    r0 = fma(-kf, LN2_HI, x)  # exact
    rh = fma(-kf, LN2_LO, r0)
    rl = fma(-kf, LN2_LO, r0 - rh)
    return k, rh, rl


@njit(forceinline=True, error_model="numpy", cache=True)
def _scales_f64(k):
    """2**k as two normal factors (|k| <= 2044)."""
    k1 = k >> 1
    s1 = pow2_f64(k1)
    s2 = pow2_f64(k - k1)
    return s1, s2


@njit(forceinline=True, error_model="numpy", cache=True)
def _scale_f64(k, hi, tail, subnormal):
    """2**k (hi + tail) rounded once, for -1076 <= k <= 1025; `subnormal`: the result
    is below 2**-1022 (then k <= -1022)."""
    s1, s2 = _scales_f64(k)
    y = ((hi + tail) * s1) * s2  # exact but for the rounding of hi + tail
    # below 2**-1022 that rounding and the one into the subnormals would be two:
    # 1 + 2**1022 y is instead rounded once on the grid of [1, 2), which is the
    # subnormal grid scaled by 2**1022
    ks = k if k < -1000 else -1000  # (for the lanes that do not use it: no overflow, no subnormals)
    sc = f64_from_bits((ks + 2045) << 52)  # 2**(k + 1022), normal
    a = hi * sc
    u = 1.0 + a
    t = u + (((1.0 - u) + a) + tail * sc)  # (1 - u) + a: the exact error of u
    ys = (t - 1.0) * MIN_NORMAL
    return ys if subnormal else y


@njit(forceinline=True, error_model="numpy", cache=True)
def exp_f64(x):
    xc = x if x < EXP_HI else EXP_HI  # NaN -> EXP_HI
    xc = xc if xc > EXP_LO else EXP_LO
    k, rh, rl = _reduce_f64(xc)
    hi, tail, _ = _exp_r_f64(rh, rl)
    y = _scale_f64(k, hi, tail, xc < EXP_SUBNORMAL)
    return y if x == x else x


@njit(forceinline=True, error_model="numpy", cache=True)
def exp2_f64(x):
    xc = x if x < EXP2_HI else EXP2_HI
    xc = xc if xc > EXP2_LO else EXP2_LO
    t = xc + SHIFT
    kf = t - SHIFT
    k = bits_of_f64(t) - SHIFT_BITS
    u = xc - kf  # exact, |u| <= 1/2
    rh = u * LN2_HI
    rl = fma(u, LN2_HI, -rh) + u * LN2_LO
    hi, tail, _ = _exp_r_f64(rh, rl)
    y = _scale_f64(k, hi, tail, xc < -1022.0)
    return y if x == x else x


@njit(forceinline=True, error_model="numpy", cache=True)
def expm1_f64(x):
    xc = x if x < EXP_HI else EXP_HI
    xc = xc if xc > EXPM1_LO else EXPM1_LO
    k, rh, rl = _reduce_f64(xc)
    hi, tail, m = _exp_r_f64(rh, rl)
    s1, s2 = _scales_f64(k)
    big = ((hi + tail) * s1) * s2
    s = s1 * s2
    a = s * hi  # exact
    b = a - 1.0  # two-sum: a - 1 == b + e exactly
    z = b - a
    e = (a - (b - z)) + (-1.0 - z)
    y = b + (e + s * tail)
    y = big if k > EXPM1_BIG_K else y
    # near 0 (k == 0, rl == 0): e**x - 1 = rh + m directly, without the rounding
    # error of 1 + rh (which is large next to a tiny result)
    y = rh + m if abs(x) < SMALL else y
    y = x if x == 0.0 else y  # -0.0
    return y if x == x else x


@njit(forceinline=True, error_model="numpy", cache=True)
def sigmoid_f64(x):
    z = -abs(x)
    zc = z if z > EXP_LO else EXP_LO  # NaN -> EXP_LO
    k, rh, rl = _reduce_f64(zc)
    hi, tail, _ = _exp_r_f64(rh, rl)
    s1, s2 = _scales_f64(k)
    eh = hi + tail
    el = (hi - eh) + tail  # hi + tail == eh + el exactly
    ez = _scale_f64(k, hi, tail, zc < EXP_SUBNORMAL)  # e**-|x|
    s = s1 * s2
    big_e = s * eh  # e**-|x| = big_e + small_e, exact for x > -708
    small_e = s * el
    d = 1.0 + big_e  # 1 + e**-|x| = d + dl exactly
    dl = ((1.0 - d) + big_e) + small_e
    rd = 1.0 / d
    neg = x < 0.0
    n = big_e if neg else 1.0
    nl = small_e if neg else 0.0
    q = n * rd
    rho = fma(-q, d, n)  # n - q d
    y = fma(fma(-q, dl, rho + nl), rd, q)  # q + (n + nl - q (d + dl)) / d
    y = ez if x < SIGMOID_EXP else y
    return y if x == x else x


# ---------------------------------------------------------------- float32


@njit(forceinline=True, error_model="numpy", cache=True)
def _reduce_d(xd):
    """k, r with xd = k ln2 + r, |r| <= 0.3468, to 2**-48 relative (|xd| < 200)."""
    t = fma(xd, LOG2E, SHIFT)
    kf = t - SHIFT
    return bits_of_f64(t) - SHIFT_BITS, fma(-kf, LN2_HI, xd)


@njit(forceinline=True, error_model="numpy", cache=True)
def _expm1_r_d(r):
    """e**r - 1 for |r| <= 0.3468, relative error < 2**-32."""
    p = D7
    p = fma(p, r, D6)
    p = fma(p, r, D5)
    p = fma(p, r, D4)
    p = fma(p, r, D3)
    p = fma(p, r, D2)
    return fma(r * r, p, r)


@njit(forceinline=True, error_model="numpy", cache=True)
def _clamp(v, lo, hi):
    """v limited to [lo, hi]; NaN becomes hi (callers select NaN back)."""
    v = v if v < hi else hi
    return v if v > lo else lo


@njit(forceinline=True, error_model="numpy", cache=True)
def exp_f32(x):
    xd = np.float64(x)
    xd = _clamp(xd, EXP_LO_F, EXP_HI_F)  # NaN -> EXP_HI_F, selected back below
    k, r = _reduce_d(xd)
    s = pow2_f64(k)
    y = np.float32(fma(s, _expm1_r_d(r), s))  # one rounding to float32, subnormals included
    return y if x == x else x


@njit(forceinline=True, error_model="numpy", cache=True)
def exp2_f32(x):
    xd = np.float64(x)
    xd = _clamp(xd, EXP2_LO_F, EXP2_HI_F)
    t = xd + SHIFT
    kf = t - SHIFT
    k = bits_of_f64(t) - SHIFT_BITS
    r = (xd - kf) * LN2_HI
    s = pow2_f64(k)
    y = np.float32(fma(s, _expm1_r_d(r), s))
    return y if x == x else x


@njit(forceinline=True, error_model="numpy", cache=True)
def expm1_f32(x):
    xd = np.float64(x)
    xd = _clamp(xd, EXPM1_LO_F, EXP_HI_F)
    k, r = _reduce_d(xd)
    s = pow2_f64(k)
    # 2**k (1 + e) - 1; s - 1 is exact for k <= 53, and for k == 0 this is e exactly
    y = np.float32(fma(s, _expm1_r_d(r), s - 1.0))
    y = x if x == ZERO_F else y  # -0.0
    return y if x == x else x


@njit(forceinline=True, error_model="numpy", cache=True)
def sigmoid_f32(x):
    xd = np.float64(x)
    z = -abs(xd)
    z = z if z > SIGMOID_LO_F else SIGMOID_LO_F  # NaN -> SIGMOID_LO_F
    k, r = _reduce_d(z)
    s = pow2_f64(k)
    e = fma(s, _expm1_r_d(r), s)  # e**-|x|
    y = (e if xd < 0.0 else 1.0) / (1.0 + e)
    return np.float32(y) if x == x else x
