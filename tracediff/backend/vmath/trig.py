"""Vectorizable sin and cos, accurate over the whole float range.

Range reduction (the hard part) is Payne-Hanek for every |x| > pi/4, done in
integer arithmetic that vectorizes: with x = m * 2^e (m the integer
significand), x * 2/pi mod 4 only depends on the bits of 2/pi from bit e-1
on (earlier bits give multiples of 4). m * W mod 2^L, W the L-bit window of
2/pi from that bit, computed exactly from 32x32->64-bit limb products, is
x * 2/pi mod 4 in fixed point. Rounding it to the nearest integer gives the
quadrant q (mod 4) and the fraction f in [-1/2, 1/2]; r = f * pi/2.
The window: float64 gathers it from a table of one 192-bit window per
exponent (TWO_OVER_PI_F64, 25 KB); float32 (|x| < 2^128 needs bits up to 200)
picks 3 of 5 constant 64-bit words by a select and funnel-shifts them, which
measured faster than gathers.

Why Payne-Hanek for all lanes: in a vectorized loop both sides of a select are
computed for every lane, so a Cody-Waite fast path plus a select to
Payne-Hanek for large lanes costs Cody-Waite + Payne-Hanek; dropping the
fast path is strictly cheaper and has one code path to get right. Only
|x| <= pi/4 takes r = x, q = 0 (exact, and needed for tiny/subnormal x).

Precision. The worst cases of x mod pi/2 are |f| ~ 2^-29 for float32 and
|f| ~ 2^-61.5 for float64 (x = 6381956970095103 * 2^797). The window
truncation error is below m * 2^(2-L): L = 96 for float32 (error < 2^-70,
relative <= 2^-41) and L = 192 for float64 (error < 2^-137, relative
<= 2^-75); the float64 fraction is converted to a double-double exactly
(error ~2^-106 relative) and multiplied by pi/2 as a double-double.

Kernels on |r| <= pi/4:
- float32 (evaluated in float64): sin r = r + r^3 (a0 + a1 r^2 + a2 r^4),
  relative error < 2^-27.9; cos r = 1 - r^2/2 + r^4 (b0 + b1 r^2 + b2 r^4),
  error < 2^-32.9. Minimax-style fits (iteratively reweighted least squares on
  20001 points of [0, pi/4], in np.longdouble); about 0.6 ulp in all.
- float64: the fdlibm kernels __kernel_sin(x, y, 1) / __kernel_cos(x, y)
  (FreeBSD msun k_sin.c / k_cos.c constants, polynomial error < 2^-58), with
  the reduced argument as a double-double r = rh + rl.

The 2/pi bits come from a Machin-formula pi computed with Python integers at
import time (tests check it against a second formula and the fdlibm table).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .bits import bits_of_f32, bits_of_f64, fma

__all__ = ["sin_f32", "cos_f32", "sin_f64", "cos_f64"]


# ---------------------------------------------------------------- 2/pi bits

NBITS = 1280  # bits of 2/pi after the binary point; float64 windows need 1162


def _arctan_inv(n: int, one: int) -> int:
    """atan(1/n) * one, in fixed point (error a few units)."""
    total = term = one // n
    n2, k, sign = n * n, 3, -1
    while term:
        term //= n2
        total += sign * (term // k)
        k, sign = k + 2, -sign
    return total


def pi_fixed(bits: int, formula: str = "machin") -> int:
    """floor(pi * 2^bits), up to an error of 1 in the last place."""
    guard = 64
    one = 1 << (bits + guard)
    if formula == "machin":  # pi = 16 atan(1/5) - 4 atan(1/239)
        pi = 16 * _arctan_inv(5, one) - 4 * _arctan_inv(239, one)
    else:  # Gauss: pi = 48 atan(1/18) + 32 atan(1/57) - 20 atan(1/239)
        pi = 48 * _arctan_inv(18, one) + 32 * _arctan_inv(57, one) - 20 * _arctan_inv(239, one)
    return pi >> guard


def two_over_pi_bits(nbits: int = NBITS, formula: str = "machin") -> int:
    """floor(2/pi * 2^nbits): bit i after the binary point is bit nbits - i."""
    p = nbits + 64
    return (1 << (nbits + 1 + p)) // pi_fixed(p, formula)


_G = two_over_pi_bits()


def _window(start: int, length: int) -> int:
    """The bits start .. start+length-1 of 2/pi (bit i has weight 2^-i; bits at
    i <= 0 are zero) as a length-bit integer."""
    return (_G >> (NBITS - (start + length - 1))) & ((1 << length) - 1)


_M32 = (1 << 32) - 1
_M64 = (1 << 64) - 1

# float32: the bits of 2/pi from bit -31 (32 leading zeros) to bit 288, as five
# 64-bit words: the window from bit eb - 151 starts at bit eb - 120 of them.
# Selecting among 3 constant words and shifting is cheaper than gathers.
_STREAM = _window(-31, 320)
F32_W0, F32_W1, F32_W2, F32_W3, F32_W4 = (np.uint64((_STREAM >> (256 - 64 * k)) & _M64) for k in range(5))

# float64: row eb - 1022 (biased exponent 1022..2047, i.e. |x| >= 0.5) holds the
# 192-bit window from bit eb - 1076 (x = m * 2^(eb-1075)), as 3 x 64 bits.
EB0_F64 = 1022
TWO_OVER_PI_F64 = np.array(
    [
        [((w := _window(eb - 1076, 192)) >> 128) & _M64, (w >> 64) & _M64, w & _M64]
        for eb in range(EB0_F64, 2048)
    ],
    dtype=np.uint64,
)

# ---------------------------------------------------------------- constants

U1 = np.uint64(1)
U6 = np.uint64(6)
U32 = np.uint64(32)
U63 = np.uint64(63)
M6 = np.uint64(63)
U62 = np.uint64(62)
M32 = np.uint64(_M32)
HALF_Q = np.uint64(1 << 61)  # 1/2 in the 2^-62 fixed point of x*2/pi mod 4
MANT64 = np.int64((1 << 52) - 1)
IMPLICIT64 = np.int64(1 << 52)
MANT32 = np.int32((1 << 23) - 1)
IMPLICIT32 = np.int32(1 << 23)

P62 = 2.0**-62
P94 = 2.0**-94
P126 = 2.0**-126
P158 = 2.0**-158
PIO2_HI = 1.5707963267948966  # pi/2 = PIO2_HI + PIO2_LO to ~2^-107
PIO2_LO = 6.123233995736766e-17
PIO4 = 0.7853981633974483  # pi/4 rounded down; r = x up to here
PIO4_F32 = np.float32(0.7853982)
MAX32 = np.float32(3.4028234663852886e38)
MAX64 = 1.7976931348623157e308

# float32 kernels (see module docstring)
A0, A1, A2 = -0.166666546732169, 0.008332164565220776, -0.00019515773166954814
B0, B1, B2 = 0.04166664575533984, -0.0013887319691692239, 2.443353991726537e-05

# fdlibm __kernel_sin / __kernel_cos
S1 = -1.66666666666666324348e-01  # 0xBFC55555, 0x55555549
S2 = 8.33333333332248946124e-03  # 0x3F811111, 0x1110F8A6
S3 = -1.98412698298579493134e-04  # 0xBF2A01A0, 0x19C161D5
S4 = 2.75573137070700676789e-06  # 0x3EC71DE3, 0x57B1FE7D
S5 = -2.50507602534068634195e-08  # 0xBE5AE5E6, 0x8A2B9CEB
S6 = 1.58969099521155010221e-10  # 0x3DE5D93A, 0x5ACFD57C
C1 = 4.16666666666666019037e-02  # 0x3FA55555, 0x5555554C
C2 = -1.38888888888741095749e-03  # 0xBF56C16C, 0x16C15177
C3 = 2.48015872894767294178e-05  # 0x3EFA01A0, 0x19CB1590
C4 = -2.75573143513906633035e-07  # 0xBE927E4F, 0x809C52AD
C5 = 2.08757232129817482790e-09  # 0x3E21EE9E, 0xBDB4B1C4
C6 = -1.13596475577881948265e-11  # 0xBDA8FAE9, 0xBE8838D4


# ---------------------------------------------------------------- float32


@njit(forceinline=True, error_model="numpy", cache=True)
def _reduce_f32(x):
    """(q, r): |x| = q * pi/2 + r (q mod 4, |r| <= pi/4, r in float64)."""
    ax = abs(x)
    b = bits_of_f32(ax)
    m = np.uint64((b & MANT32) | IMPLICIT32)
    # x = m 2^(eb-150): the 96-bit window of 2/pi from bit eb - 151, i.e. from
    # bit p = eb - 120 of the F32_W words (p in 6..135 for |x| > pi/4)
    p = np.int64(b >> 23) - 120
    p = np.uint64(p if p > 0 else 0)
    j = p >> U6
    sh = p & M6
    u0 = F32_W0 if j == 0 else (F32_W1 if j == 1 else F32_W2)
    u1 = F32_W1 if j == 0 else (F32_W2 if j == 1 else F32_W3)
    u2 = F32_W2 if j == 0 else (F32_W3 if j == 1 else F32_W4)
    t0 = (u0 << sh) | ((u1 >> U1) >> (U63 - sh))  # (u0 u1) << sh, top 64 bits
    w2 = ((u1 << sh) | ((u2 >> U1) >> (U63 - sh))) >> U32
    # m * (w0 w1 w2) mod 2^96 in 32-bit columns c2 c1 c0 (c0 = low half of p2)
    p2 = m * w2
    p1 = m * (t0 & M32)
    c1 = (p2 >> U32) + (p1 & M32)
    c2 = (p1 >> U32) + (c1 >> U32) + m * (t0 >> U32)  # only its low 32 bits matter
    top = (c2 << U32) | (c1 & M32)  # x*2/pi mod 4, in units of 2^-62
    q = (top + HALF_Q) >> U62
    a = np.int64(top - (q << U62))  # the fraction, in [-2^61, 2^61)
    f = np.float64(a) * P62 + np.float64(p2 & M32) * P94
    r = f * PIO2_HI
    small = ax <= PIO4_F32
    return (np.int64(0) if small else np.int64(q)), (np.float64(ax) if small else r)


@njit(forceinline=True, error_model="numpy", cache=True)
def _sincos_f32(x, shift):
    """sin(x) for shift 0, cos(x) for shift 1 (float64 result)."""
    q, r = _reduce_f32(x)
    z = r * r
    s = fma(fma(fma(A2, z, A1), z, A0), z * r, r)
    c = fma(fma(fma(fma(B2, z, B1), z, B0), z, -0.5), z, 1.0)
    q = q + shift
    v = c if q & 1 else s
    # sign: quadrants 2, 3 negate; sin is odd (cos even: shift 1 drops the sign)
    neg = ((q >> 1) & 1) ^ ((bits_of_f32(x) >> 31) & 1 & (1 - shift))
    return -v if neg else v


@njit(forceinline=True, error_model="numpy", cache=True)
def sin_f32(x):
    v = _sincos_f32(x, 0)
    return np.float32(v) if abs(x) <= MAX32 else x - x


@njit(forceinline=True, error_model="numpy", cache=True)
def cos_f32(x):
    v = _sincos_f32(x, 1)
    return np.float32(v) if abs(x) <= MAX32 else x - x


# ---------------------------------------------------------------- float64


@njit(forceinline=True, error_model="numpy", cache=True)
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(forceinline=True, error_model="numpy", cache=True)
def _reduce_f64(x):
    """(q, rh, rl): |x| = q * pi/2 + rh + rl (q mod 4, |rh + rl| <= pi/4)."""
    ax = abs(x)
    b = bits_of_f64(ax)
    eb = b >> 52
    m = np.uint64((b & MANT64) | IMPLICIT64)
    row = eb - EB0_F64
    row = row if row > 0 else 0
    t0 = TWO_OVER_PI_F64[row, 0]
    t1 = TWO_OVER_PI_F64[row, 1]
    t2 = TWO_OVER_PI_F64[row, 2]
    # (mh ml) * (w0 w1 ... w5) mod 2^192 in 32-bit columns c1 .. c5 (column 0
    # is the low half of ml * w5 alone: it carries nothing)
    mh = m >> U32
    ml = m & M32
    w1 = t0 & M32
    w2 = t1 >> U32
    w3 = t1 & M32
    w4 = t2 >> U32
    w5 = t2 & M32
    a5 = ml * w5
    a4 = ml * w4
    a3 = ml * w3
    a2 = ml * w2
    a1 = ml * w1
    b5 = mh * w5
    b4 = mh * w4
    b3 = mh * w3
    b2 = mh * w2
    c1 = (a5 >> U32) + (a4 & M32) + (b5 & M32)
    c2 = (a4 >> U32) + (b5 >> U32) + (a3 & M32) + (b4 & M32) + (c1 >> U32)
    c3 = (a3 >> U32) + (b4 >> U32) + (a2 & M32) + (b3 & M32) + (c2 >> U32)
    c4 = (a2 >> U32) + (b3 >> U32) + (a1 & M32) + (b2 & M32) + (c3 >> U32)
    # column 5: only its low 32 bits matter (ml * w0 and mh * w1 enter there)
    c5 = (a1 >> U32) + (b2 >> U32) + ml * (t0 >> U32) + mh * w1 + (c4 >> U32)
    top = (c5 << U32) | (c4 & M32)  # x*2/pi mod 4, in units of 2^-62
    q = (top + HALF_Q) >> U62
    a = np.int64(top - (q << U62))  # the fraction, in [-2^61, 2^61)
    # f = a 2^-62 + c3 2^-94 + c2 2^-126 + c1 2^-158 as a double-double:
    # h = a rounded; a - h and c3 together are exact in one float64
    h = np.float64(a)
    ar = a - np.int64(h)
    hi, lo = _two_sum(h * P62, np.float64(ar) * P62 + np.float64(c3 & M32) * P94)
    lo = lo + (np.float64(c2 & M32) * P126 + np.float64(c1 & M32) * P158)
    fh = hi + lo
    fl = lo - (fh - hi)
    # r = f * pi/2
    ph = fh * PIO2_HI
    pl = fma(fh, PIO2_HI, -ph) + (fh * PIO2_LO + fl * PIO2_HI)
    rh = ph + pl
    rl = pl - (rh - ph)
    small = ax <= PIO4
    return (np.int64(0) if small else np.int64(q)), (ax if small else rh), (0.0 if small else rl)


@njit(forceinline=True, error_model="numpy", cache=True)
def _sincos_f64(x, shift):
    """sin(x) for shift 0, cos(x) for shift 1: fdlibm kernels on rh + rl."""
    q, r, y = _reduce_f64(x)
    z = r * r
    w = z * z
    # __kernel_sin(r, y, 1)
    v = z * r
    sp = fma(z, fma(z, fma(z, fma(z, S6, S5), S4), S3), S2)
    s = r - ((z * (0.5 * y - v * sp) - y) - v * S1)
    # __kernel_cos(r, y)
    cp = z * fma(z, fma(z, C3, C2), C1) + w * w * fma(z, fma(z, C6, C5), C4)
    hz = 0.5 * z
    one_hz = 1.0 - hz
    c = one_hz + (((1.0 - one_hz) - hz) + (z * cp - r * y))
    q = q + shift
    v = c if q & 1 else s
    neg = ((q >> 1) & 1) ^ ((bits_of_f64(x) >> 63) & 1 & (1 - shift))
    return -v if neg else v


@njit(forceinline=True, error_model="numpy", cache=True)
def sin_f64(x):
    v = _sincos_f64(x, 0)
    return v if abs(x) <= MAX64 else x - x


@njit(forceinline=True, error_model="numpy", cache=True)
def cos_f64(x):
    v = _sincos_f64(x, 1)
    return v if abs(x) <= MAX64 else x - x
