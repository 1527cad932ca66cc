"""sin and cos (tracediff.backend.vmath.trig) against correctly rounded values,
over the whole range: Payne-Hanek reduction makes huge arguments as accurate
as small ones."""

import numpy as np
import pytest
from vmath_util import apply, assert_vectorizes, sample_f32, sample_f64, ulp_error, worst

from tracediff.backend.vmath import trig
from tracediff.backend.vmath.trig import cos_f32, cos_f64, pi_fixed, sin_f32, sin_f64, two_over_pi_bits

FUNCS = {
    ("sin", np.float32): sin_f32,
    ("cos", np.float32): cos_f32,
    ("sin", np.float64): sin_f64,
    ("cos", np.float64): cos_f64,
}
CASES = list(FUNCS)
IDS = [f"{n}-{np.dtype(d).name}" for n, d in CASES]
# measured: 0.562 ulp (float32, every float32), 0.78 ulp (float64); the issue allows 4 and 2
BOUND = {np.float32: 0.6, np.float64: 0.8}

# fdlibm's table of 2/pi (e_rem_pio2.c / k_rem_pio2.c, ipio2), 24 bits per entry
FDLIBM_2_OVER_PI = (
    "A2F9836E4E441529FC2757D1F534DDC0DB6295993C439041FE5163ABDEBBC561B7246E3A424DD2E006492EEA09D192"
    "1CFE1DEB1CB129A73EE88235F52EBB4484E99C7026B45F7E413991D639835339F49C845F8BBDF9283B1FF897FFDE05"
    "980FEF2F118B5A0A6D1F6D367ECF27CB09B74F463F669E5FEA2D7527BAC7EBE5F17B3D0739F78A5292EA6BFB5FB11F"
    "8D5D0856033046FC7B6BABF0CFBC209AF4361DA9E391615EE61B086599855F14A068408DFFD8804D73273106061556"
    "CA73A8C960E27BC08C6B"
)


def _exact(name, x):
    return getattr(np, name)(x.astype(np.float64 if x.dtype == np.float32 else np.longdouble))


def _near_multiples_of_pio2(dt, ks):
    """The floats nearest to k * pi/2 (and their neighbours): the reduced
    argument cancels to a few ulp, the hardest inputs for the reduction."""
    pi = pi_fixed(1300)
    near = [np.float64(k * pi / (2 << 1300)) for k in ks]  # int / int rounds correctly
    x = np.array(near, np.float64)
    x = x[x <= np.finfo(dt).max].astype(dt)
    return np.concatenate([x, np.nextafter(x, dt(0)), np.nextafter(x, dt(np.inf))])


def _hard_cases(dt):
    ks = [1, 2, 3, 4, 5, 7, 10, 100, 1000, 12345, 10**5, 10**6, 10**7, 2**24, 2**30, 10**9]
    ks += [10**k + d for k in range(10, 38) for d in (0, 1)] + [2**k for k in range(31, 127)]
    if dt == np.float64:
        ks += [10**k for k in range(38, 309)] + [2**k for k in range(127, 1024)]
        worst_x = np.float64(6381956970095103 * 2.0**797)  # the classic worst case
        extra = [worst_x, np.nextafter(worst_x, 0), 1e22, 1e300, np.finfo(dt).max, 2.0**1023]
    else:
        extra = [1e22, 3.4e38, np.finfo(dt).max, 16367173 * 2.0**72, 1e5 * np.pi / 2]
    extra = np.array(extra, dt)
    x = np.concatenate([_near_multiples_of_pio2(dt, ks), extra])
    return np.concatenate([x, -x])


def test_two_over_pi_bits():
    g = two_over_pi_bits(1584)
    assert f"{g:0396X}" == FDLIBM_2_OVER_PI
    # an independent formula for pi gives the same bits
    assert two_over_pi_bits(formula="gauss") == two_over_pi_bits()
    assert trig.TWO_OVER_PI_F64.shape == (2048 - trig.EB0_F64, 3)


@pytest.mark.parametrize("name,dt", CASES, ids=IDS)
def test_within_bound_over_the_whole_range(name, dt):
    if dt == np.float32:
        parts = [sample_f32(2003), np.linspace(-1e4, 1e4, 1_000_001)]
    else:
        parts = [sample_f64(1_000_000), np.linspace(-1e4, 1e4, 400_001), np.geomspace(1e4, 1e22, 200_000)]
    parts += [np.linspace(-10, 10, 1_000_001), np.linspace(-1e-3, 1e-3, 20_001)]
    x = np.concatenate([p.astype(dt) for p in parts])
    err = ulp_error(apply(FUNCS[name, dt], x), _exact(name, x))
    assert err.max() <= BOUND[dt], worst(err, x)


@pytest.mark.parametrize("name,dt", CASES, ids=IDS)
def test_hard_cases_for_the_reduction(name, dt):
    x = _hard_cases(dt)
    out = apply(FUNCS[name, dt], x)
    err = ulp_error(out, _exact(name, x))
    assert err.max() <= BOUND[dt], worst(err, x)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_symmetry(dt):
    x = np.concatenate([sample_f32(20011).astype(dt), np.linspace(0, 100, 10_001, dtype=dt)])
    s, c = FUNCS["sin", dt], FUNCS["cos", dt]
    np.testing.assert_array_equal(apply(s, -x), -apply(s, x))
    np.testing.assert_array_equal(apply(c, -x), apply(c, x))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_special_values(dt):
    tiny = np.finfo(dt).smallest_subnormal
    small = np.array([tiny, 7 * tiny, np.finfo(dt).smallest_normal, 1e-30, 1e-20, 1e-10], dt)
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dt)
    s = apply(FUNCS["sin", dt], x)
    c = apply(FUNCS["cos", dt], x)
    assert s[0] == 0 and not np.signbit(s[0]) and s[1] == 0 and np.signbit(s[1])
    assert c[0] == 1 and c[1] == 1
    assert np.isnan(s[2:]).all() and np.isnan(c[2:]).all()
    x = np.concatenate([small, -small])
    np.testing.assert_array_equal(apply(FUNCS["sin", dt], x), x)  # sin(tiny) == tiny
    np.testing.assert_array_equal(apply(FUNCS["cos", dt], x), np.ones_like(x))


@pytest.mark.parametrize("name,dt", CASES, ids=IDS)
def test_vectorizes(name, dt):
    assert_vectorizes(FUNCS[name, dt], dt)
