"""pow (tracediff.backend.vmath.pow): float32 against float64 NumPy, float64
against long double NumPy (and decimal), and the C99 special cases bit for bit
(for float32: float64 NumPy, rounded: NumPy's float32 power is itself not
correctly rounded, e.g. 3**0.5)."""

import math
import re
from decimal import Decimal, getcontext

import numba
import numpy as np
from vmath_util import apply2, loop2_of, ulp_error, worst

from tracediff.backend.vmath import pow_f32, pow_f64


def _exact(x, y):
    with np.errstate(all="ignore"):
        return np.power(x.astype(np.float64), y.astype(np.float64))


def test_pow_f32_within_one_ulp():
    rng = np.random.default_rng(0)
    n = 1_000_000
    x = rng.integers(0, 0x7F800000, n, dtype=np.int64).astype(np.uint32).view(np.float32)
    y = rng.uniform(-3, 3, n).astype(np.float32)  # every |x|, results from subnormal to huge
    x2 = rng.uniform(0, 4, n).astype(np.float32)
    y2 = rng.uniform(-60, 60, n).astype(np.float32)  # over- and underflow edges
    x3 = -rng.uniform(0, 4, n).astype(np.float32)
    y3 = rng.integers(-40, 40, n).astype(np.float32)  # negative bases, integer powers
    x, y = np.concatenate([x, x2, x3]), np.concatenate([y, y2, y3])
    with np.errstate(all="ignore"):
        err = ulp_error(apply2(pow_f32, x, y), _exact(x, y))
    assert err.max() <= 1.0, worst(err, x) + f", y = {y[np.argmax(err)]!r}"


def test_pow_f32_special_values_match_c99():
    vals = np.array(
        [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0, np.inf, -np.inf, np.nan, 1e-45], np.float32
    )
    x, y = (a.ravel() for a in np.meshgrid(vals, vals))
    out = apply2(pow_f32, x, y)
    with np.errstate(all="ignore"):
        ref = np.power(x.astype(np.float64), y.astype(np.float64)).astype(np.float32)
    same = (out == ref) & (np.signbit(out) == np.signbit(ref)) | (np.isnan(out) & np.isnan(ref))
    bad = np.flatnonzero(~same)
    assert bad.size == 0, [(x[i], y[i], out[i], ref[i]) for i in bad[:8]]


def test_pow_f32_vectorizes():
    loop = loop2_of(pow_f32)
    a = np.ones(64, np.float32)
    loop(a, a, np.empty_like(a))
    packed = re.findall(r"\bv(?:add|mul|fmadd\w*|sub|div)p[sd]\b", loop.inspect_asm(loop.signatures[0]))
    assert packed, "pow_f32 does not vectorize"


# ---------------------------------------------------------------- float64
# Reference: np.power on np.longdouble (x87 80-bit powl, ~2^-63 relative), and
# Python's decimal for the few points it cannot decide (rounding near-ties at the
# overflow threshold). NumPy's own float64 array power is not the reference for
# inexact results: on AVX-512 machines it is SVML's, itself up to ~1 ulp off
# (e.g. 1e300 ** -1 != 1e-300); the libm pow (np.power on scalars inside an njit
# loop) is, and pow_f64 matches it bit for bit on the special-value grid.

DBL_MAX_LOG = 709.782712893384  # ln(DBL_MAX)
MIN_NORMAL_LOG = -708.3964185322641  # ln(2^-1022)
ZERO_LOG = -745.1332191019412  # ln(2^-1075): below, the result rounds to 0


def _exact64(x, y):
    with np.errstate(all="ignore"):
        return np.power(x.astype(np.longdouble), y.astype(np.longdouble))


def _decimal_ulp_error(out, x, y):
    """|out - x**y| in ulp of the correctly rounded float64, x**y in 60-digit decimal."""
    getcontext().prec = 60
    ax = Decimal(abs(float(x)))
    v = (Decimal(float(y)) * ax.ln()).exp()
    if x < 0 and float(y) % 2 == 1:
        v = -v
    rounded = float(v)  # correctly rounded, inf past DBL_MAX + ulp/2
    if not math.isfinite(rounded):
        return 0.0 if out == rounded else math.inf
    return float(abs(Decimal(float(out)) - v) / Decimal(math.ulp(rounded)))


def _samples64(rng, n):
    """(name, x, y) sets: every binade, results from 0 through the subnormals to inf."""
    with np.errstate(all="ignore"):
        x = rng.integers(1, 0x7FF0000000000000, n, dtype=np.int64).view(np.float64)
        y = rng.uniform(-1080, 1030, n) / np.log2(x)  # 2^-1080 .. 2^1030
        x[::2] *= -1
        y[::2] = np.round(y[::2])  # negative bases with integer powers
        yield "all binades", x, y
        x = rng.uniform(0.5, 2, n // 2)
        yield "[0.5, 2] ** [-3, 3]", x, rng.uniform(-3, 3, n // 2)
        x = 1 + rng.uniform(-1, 1, n // 2) * 2.0 ** rng.uniform(-52, -1, n // 2)
        yield "x near 1, huge y", x, rng.uniform(-740, 700, n // 2) / np.log(x)
        x = np.abs(rng.integers(1, 0x7FF0000000000000, n // 2, dtype=np.int64).view(np.float64))
        y = 1 + rng.uniform(-1, 1, n // 2) * 2.0 ** rng.uniform(-52, -3, n // 2)
        yield "y near +-1", x, np.where(rng.random(n // 2) < 0.5, y, -y)
        x = -rng.uniform(0, 30, n // 2)
        yield "negative x, integer y", x, rng.integers(-300, 300, n // 2).astype(np.float64)
        # |log x| small and |s| = |m - b| / (m + b) largest, y log x near the limits:
        # where the error of the logarithm is magnified most
        x = rng.uniform(0.8, 1.8, n)
        z = rng.choice([-1.0, 1.0], n) * rng.uniform(600, 709, n)
        yield "x in [0.8, 1.8], |y log x| in [600, 709]", x, z / np.log(x)
        for name, t, d in [
            ("overflow threshold", DBL_MAX_LOG, 1e-13),
            ("subnormal threshold", MIN_NORMAL_LOG, 1e-13),
            ("underflow to 0", ZERO_LOG, 1.0),
        ]:
            x = np.exp(rng.uniform(-690, 690, n // 4))
            x[::4] = rng.uniform(0.5, 4, x[::4].size)
            y = (t + rng.uniform(-d, d, x.size)) / np.log(x)
            x[1::3] *= -1
            y[1::3] = np.round(y[1::3])
            yield name, x, y


def test_pow_f64_within_one_ulp():
    rng = np.random.default_rng(1)
    total = 0
    report = []
    for name, x, y in _samples64(rng, 1_500_000):
        out = apply2(pow_f64, x, y)
        with np.errstate(all="ignore"):
            err = ulp_error(out, _exact64(x, y))
        # the long double reference cannot tell near-ties: decide those in decimal
        for i in np.flatnonzero(err > 0.75)[:50]:
            err[i] = _decimal_ulp_error(out[i], x[i], y[i])
        assert np.count_nonzero(err > 0.75) < 50, name
        i = int(np.argmax(err))
        report.append(f"{name}: {err[i]:.3f} ulp at x = {x[i]!r}, y = {y[i]!r}")
        assert err[i] <= 1.0, report[-1]
        total += x.size
    assert total > 7_000_000
    print("\n".join(report))


def test_pow_f64_special_values_match_c99():
    vals = [0.0, 1.0, 0.5, 2.0, 3.0, np.inf, 5e-324, 1e-310, 2.2250738585072014e-308, 1e300]
    vals += [1.7976931348623157e308, 2.0**53 - 1, 2.0**53, 1075.0, 1074.5, 0.25, 1.5, 0.1]
    vals = np.array(vals + [-v for v in vals] + [np.nan])
    x, y = (a.ravel() for a in np.meshgrid(vals, vals))
    out = apply2(pow_f64, x, y)
    libm = np.empty_like(x)
    _libm_pow(x, y, libm)
    with np.errstate(all="ignore"):
        numpy = np.power(x, y)

    def same(a, b):
        return (a == b) & (np.signbit(a) == np.signbit(b)) | (np.isnan(a) & np.isnan(b))

    bad = np.flatnonzero(~same(out, libm))
    assert bad.size == 0, [(x[i], y[i], out[i], libm[i]) for i in bad[:8]]
    special = ~np.isfinite(numpy) | (numpy == 0.0) | (np.abs(numpy) == 1.0)
    bad = np.flatnonzero(special & ~same(out, numpy))
    assert bad.size == 0, [(x[i], y[i], out[i], numpy[i]) for i in bad[:8]]
    assert np.isnan(apply2(pow_f64, np.array([-8.0]), np.array([1 / 3])))[0]
    assert apply2(pow_f64, np.array([np.nan]), np.array([-0.0]))[0] == 1.0
    assert apply2(pow_f64, np.array([1.0]), np.array([np.nan]))[0] == 1.0


@numba.njit(error_model="numpy")
def _libm_pow(x, y, out):
    for i in range(x.shape[0]):
        out[i] = np.power(x[i], y[i])


def test_pow_f64_vectorizes():
    loop = loop2_of(pow_f64)
    a = np.ones(64)
    loop(a, a, np.empty_like(a))
    sig = [s for s in loop.signatures if s[0].dtype == numba.float64][0]
    packed = re.findall(r"\bv(?:add|mul|fmadd\w*|sub|div)pd\b", loop.inspect_asm(sig))
    assert len(packed) > 20, "pow_f64 does not vectorize"
