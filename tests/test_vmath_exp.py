"""tracediff.backend.vmath exp, exp2, expm1 and sigmoid against correctly rounded values.

Accuracy: every function on every binade (sample_f32 / sample_f64) plus dense
samples of the interesting ranges, against float64 (float32 results) or
np.longdouble (float64 results). Thresholds of overflow / underflow / rounding
to +-1, where the longdouble reference itself can round twice, against values
computed in 60-digit decimal arithmetic and rounded once.
"""

from decimal import Decimal, localcontext

import numpy as np
import pytest
from vmath_util import apply, assert_vectorizes, sample_f32, sample_f64, ulp_error, worst

from tracediff.backend import vmath

NAMES = ["exp", "exp2", "expm1", "sigmoid"]
DTYPES = [np.float32, np.float64]
SUFFIX = {np.float32: "f32", np.float64: "f64"}


def fn_of(name, dtype):
    return getattr(vmath, f"{name}_{SUFFIX[dtype]}")


def reference(name, x):
    """The function in the wider type (float64 for float32 x, longdouble for float64 x)."""
    w = x.astype(np.float64 if x.dtype == np.float32 else np.longdouble)
    with np.errstate(over="ignore", under="ignore"):
        if name == "sigmoid":
            return 1 / (1 + np.exp(-w))
        return getattr(np, name)(w)


# where each function needs a close look: around 0 (expm1 cancellation, the k = 0
# range), the reduction boundaries +-ln2/2, overflow, the subnormal tail, +-1
DENSE = {
    np.float32: {
        "exp": [(-110, 100), (-2, 2), (-104, -87)],
        "exp2": [(-155, 130), (-2, 2), (-150, -126)],
        "expm1": [(-20, 90), (-1, 1), (-1e-3, 1e-3)],
        "sigmoid": [(-110, 40), (-4, 4), (-104, -87)],
    },
    np.float64: {
        "exp": [(-750, 712), (-2, 2), (-745.2, -708)],
        "exp2": [(-1080, 1030), (-2, 2), (-1075, -1022)],
        "expm1": [(-40, 712), (-1, 1), (-1e-6, 1e-6)],
        "sigmoid": [(-750, 40), (-4, 4), (-745.2, -708)],
    },
}


def sample(name, dtype):
    parts = [sample_f32(1009) if dtype == np.float32 else sample_f64(1_000_000)]
    for lo, hi in DENSE[dtype][name]:
        parts.append(np.linspace(lo, hi, 500_001, dtype=dtype))
    return np.concatenate(parts)


# measured (exhaustive for float32, tens of millions of points for float64):
# float32 <= 0.504 ulp, float64 <= 0.62 ulp (subnormal results included)
BOUND = {np.float32: 0.55, np.float64: 0.7}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_accuracy(name, dtype):
    x = sample(name, dtype)
    with np.errstate(invalid="ignore", over="ignore"):  # results beyond the type: inf
        err = ulp_error(apply(fn_of(name, dtype), x), reference(name, x))
    assert err.max() <= BOUND[dtype], f"{name}_{SUFFIX[dtype]}: {worst(err, x)} on {x.size} points"


def _decimal_ref(name, x):
    d = Decimal(float(x))
    if name == "exp":
        return d.exp()
    if name == "exp2":
        return Decimal(2) ** int(d) if d == int(d) else (d * Decimal(2).ln()).exp()
    if name == "expm1":
        return d.exp() - 1
    return 1 / (1 + (-d).exp())


def _round_once(d, dtype):
    """The float of `dtype` nearest the Decimal d (ties to even; inf past the largest)."""
    with np.errstate(over="ignore"):
        f = dtype(float(d))  # within an ulp of the answer (subnormals included)
    top = Decimal(2) ** (128 if dtype == np.float32 else 1024)
    cands = [np.nextafter(f, dtype(-np.inf)), f, np.nextafter(f, dtype(np.inf))]

    def dist(c):
        v = top.copy_sign(Decimal(float(c))) if np.isinf(c) else Decimal(float(c))
        odd = int(np.abs(c).view(np.uint32 if dtype == np.float32 else np.uint64)) & 1
        return (abs(v - d), odd)

    return min(cands, key=dist)


def _neighbours(x0, dtype, n=25):
    x0 = dtype(x0)
    up, down = [x0], [x0]
    for _ in range(n):
        up.append(np.nextafter(up[-1], dtype(np.inf)))
        down.append(np.nextafter(down[-1], dtype(-np.inf)))
    return np.array(sorted(set(up + down)), dtype)


# x where the result crosses a threshold: the largest finite result, the
# smallest subnormal, the smallest normal, rounding to -1 (expm1) or 1 (sigmoid)
THRESHOLDS = {
    ("exp", np.float64): [709.782712893384, -745.1332191019411, -708.3964185322641],
    ("exp", np.float32): [88.72283935546875, -103.97208, -87.33654],
    ("exp2", np.float64): [1024.0, -1075.0, -1074.0, -1022.0],
    ("exp2", np.float32): [128.0, -150.0, -149.0, -126.0],
    ("expm1", np.float64): [709.782712893384, -37.42994775023705, -36.7368005696771],
    ("expm1", np.float32): [88.72283935546875, -17.32868, -16.635532],
    ("sigmoid", np.float64): [-745.1332191019411, -708.3964185322641, 36.7368005696771, 37.42994775023705],
    ("sigmoid", np.float32): [-103.97208, -87.33654, 16.635532, 17.32868],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_thresholds_are_exact(name, dtype):
    x = np.concatenate([_neighbours(t, dtype) for t in THRESHOLDS[(name, dtype)]])
    out = apply(fn_of(name, dtype), x)
    with localcontext() as ctx:
        ctx.prec = 60
        ctx.Emin = -99999
        ctx.Emax = 99999
        expect = np.array([_round_once(_decimal_ref(name, xi), dtype) for xi in x], dtype)
    bad = out != expect
    assert not bad.any(), f"x = {x[bad][:4]!r}: {out[bad][:4]!r}, expected {expect[bad][:4]!r}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values(dtype):
    inf, nan = np.inf, np.nan
    x = np.array([0.0, -0.0, inf, -inf, nan, -nan], dtype)

    def run(name):
        return apply(fn_of(name, dtype), x)

    for name, expect in [
        ("exp", [1, 1, inf, 0, nan, nan]),
        ("exp2", [1, 1, inf, 0, nan, nan]),
        ("expm1", [0, -0.0, inf, -1, nan, nan]),
        ("sigmoid", [0.5, 0.5, 1, 0, nan, nan]),
    ]:
        out = run(name)
        np.testing.assert_array_equal(out, np.array(expect, dtype), err_msg=name)
        assert out.dtype == dtype
    ex = run("expm1")
    assert not np.signbit(ex[0]) and np.signbit(ex[1])  # expm1(-0.0) == -0.0
    assert not np.signbit(run("exp")[3]) and not np.signbit(run("sigmoid")[3])  # +0.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_cases(dtype):
    info = np.finfo(dtype)
    k = np.arange(info.minexp - info.nmant, info.maxexp, dtype=dtype)  # every power of 2
    np.testing.assert_array_equal(apply(fn_of("exp2", dtype), k), np.ldexp(np.ones_like(k), k.astype(int)))
    # expm1(x) == x below 2**-(mantissa bits + 2), subnormals included
    tiny = np.geomspace(info.smallest_subnormal, info.eps / 8, 2000, dtype=dtype)
    tiny = np.concatenate([tiny, -tiny])
    np.testing.assert_array_equal(apply(fn_of("expm1", dtype), tiny), tiny)
    # sigmoid saturates to exactly 1
    big = np.array([60, 1e4, info.max], dtype)
    np.testing.assert_array_equal(apply(fn_of("sigmoid", dtype), big), 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_vectorizes(name, dtype):
    assert_vectorizes(fn_of(name, dtype), dtype)
