"""float32 pow (tracediff.backend.vmath.pow) against float64 NumPy, and the
C99 special cases bit for bit (float64 NumPy, rounded: NumPy's float32
power is itself not correctly rounded, e.g. 3**0.5)."""

import re

import numpy as np
from vmath_util import apply2, loop2_of, ulp_error, worst

from tracediff.backend.vmath import pow_f32


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
