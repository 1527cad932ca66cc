"""scipy.special, scipy.stats and scipy.signal on traced arrays: values against
SciPy (special values included), derivatives (check_grads), compiled against
interpreted, errors. The primitives themselves run in the registry tests
(tests/specs_special.py)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal as ss
import scipy.special as S
import scipy.stats as st

import tracediff as td

RNG = np.random.default_rng(7)
X = RNG.normal(size=6)
XP = RNG.uniform(0.2, 3.0, 6)
U = RNG.uniform(0.05, 0.95, 6)
EDGE = np.array([-np.inf, -2.0, -0.0, 0.0, 1e-300, 0.4, 0.5, 1.0, 3.0, np.inf, np.nan])
K = np.array([0.0, 1.0, 2.0, 3.0, 5.0, -1.0, 2.5, np.nan])


def interp(f):
    return td.jit(f, target="interpret")


def assert_same(got, want, rtol=1e-12):
    assert np.asarray(got).dtype == np.asarray(want).dtype
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-300, equal_nan=True)


# --- scipy.special compositions and forms --------------------------------------------------

COMPOSITES = [
    ("logit", lambda x: S.logit(x), EDGE),
    ("log_expit", lambda x: S.log_expit(x), EDGE),
    ("entr", lambda x: S.entr(x), EDGE),
    ("rel_entr", lambda x: S.rel_entr(x, np.flip(x)), EDGE),
    ("kl_div", lambda x: S.kl_div(x, np.flip(x)), EDGE),
    ("xlogy", lambda x: S.xlogy(x, np.flip(x)), EDGE),
    ("multigammaln", lambda x: S.multigammaln(x, 3), np.array([1.2, 2.0, 5.5])),
    ("polygamma", lambda x: S.polygamma(np.array([0, 1, 2, 3]), x[:4]), XP),
    ("softmax", lambda x: S.softmax(np.reshape(x, (2, 3)), axis=1), X),
    ("log_softmax", lambda x: S.log_softmax(np.reshape(x, (2, 3)), axis=0), X),
    ("logsumexp", lambda x: S.logsumexp(x), X),
    ("logsumexp-axis", lambda x: S.logsumexp(np.reshape(x, (2, 3)), axis=-1, keepdims=True), X),
    ("logsumexp-b", lambda x: S.logsumexp(x, b=np.array([1.0, 2.0, 0.0, 0.5, 1.0, 3.0])), X),
    ("logsumexp-inf", lambda x: S.logsumexp(np.array([-np.inf, -np.inf]) + x[:2]), X),
    ("logsumexp-sign", lambda x: S.logsumexp(x, b=np.array([1.0, -2, 1, -1, 0.5, 0.1]), return_sign=True), X),
    ("logsumexp-nan", lambda x: S.logsumexp(x, b=-np.ones(6)), X),
]


@pytest.mark.parametrize("name, f, x", COMPOSITES, ids=[c[0] for c in COMPOSITES])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_special_values_match_scipy(name, f, x, dtype):
    x = x.astype(dtype)
    with np.errstate(all="ignore"):
        want = f(x)
        got = interp(f)(x)
    if isinstance(want, tuple):
        for g, w in zip(got, want):
            assert_same(g, w, 1e-5 if dtype == "float32" else 1e-12)
    else:
        assert_same(got, want, 1e-5 if dtype == "float32" else 1e-12)


def _special_mix(x, u):
    """The compositions together: one derivative check and one compiled program."""
    return (
        S.logit(u) * S.log_expit(x)
        + S.entr(u)
        + S.rel_entr(u, np.flip(u))
        + S.kl_div(u, 1.0 - u)
        + S.multigammaln(u + 2.0, 2)
        + S.softmax(x) * S.log_softmax(u)
        + S.logsumexp(x * u, b=u)
        + S.polygamma(3, u + 1.0)
    )


def test_special_compositions_derivatives_and_compiled():
    td.check_grads(_special_mix, (X, U), order=2)
    want = interp(td.value_and_grad(lambda x, u: np.sum(_special_mix(x, u)), argnums=(0, 1)))(X, U)
    got = td.jit(td.value_and_grad(lambda x, u: np.sum(_special_mix(x, u)), argnums=(0, 1)))(X, U)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    for g, w in zip(got[1], want[1]):
        np.testing.assert_allclose(g, w, rtol=1e-11)


def test_compiled_special_functions_are_scipys_to_the_bit():
    x = np.linspace(0.05, 6.0, 200)

    def f(x):
        return (
            S.gammaln(x),
            S.digamma(x),
            S.erfinv(x / 7.0),
            S.log_ndtr(-x * 5),
            S.iv(1.5, x),
            S.gammainc(2.5, x),
        )

    got = td.jit(f)(x)
    for g, w in zip(got, f(x)):
        np.testing.assert_array_equal(g, w)
    got32 = td.jit(f)(x.astype(np.float32))  # float64 arithmetic, rounded to float32
    for g, w in zip(got32, f(x.astype(np.float32))):
        assert g.dtype == w.dtype  # (SciPy's gammainc gives float64 for a float32 x)
        np.testing.assert_allclose(g, w, rtol=2e-7)


def test_log_ndtr_tail_derivative():
    # d/dx log Phi(x) -> -x far in the left tail, where Phi(x) underflows
    x = np.array([-40.0, -10.0, 0.0, 10.0])
    g = td.grad(lambda x: np.sum(S.log_ndtr(x)))(x)
    want = np.exp(st.norm.logpdf(x) - S.log_ndtr(x))
    np.testing.assert_allclose(g, want, rtol=1e-13)
    assert abs(g[0] - 40.0) < 0.1


def test_derivatives_not_implemented_are_nan():
    # d/da gammainc(a, x) and d/dv iv(v, x): NaN (not implemented), never a wrong number
    ga = td.grad(lambda a: S.gammainc(a, 1.5))(2.0)
    gv = td.grad(lambda v: S.iv(v, 1.5))(2.0)
    assert np.isnan(ga) and np.isnan(gv)
    assert np.isfinite(td.grad(lambda x: S.gammainc(2.0, x))(1.5))


@pytest.mark.parametrize(
    "f, exc, text",
    [
        (lambda x: S.polygamma(1.5, x), ValueError, "polygamma"),
        (lambda x: S.multigammaln(x, 0), ValueError, "multigammaln"),
        (lambda x: S.logsumexp(x, axis=3), np.exceptions.AxisError, "logsumexp"),
        (lambda x: ss.convolve(x, np.ones((2, 2))), ValueError, "dimensionality"),
        (lambda x: ss.convolve(x, np.ones(2), mode="middle"), ValueError, "mode"),
        (lambda x: ss.correlate(np.reshape(x, (2, 3)), np.ones((3, 2)), mode="valid"), ValueError, "valid"),
        (
            lambda x: ss.convolve2d(np.ones((2, 2)), np.ones((2, 2)), boundary="wrap"),
            NotImplementedError,
            "fill",
        ),
        (lambda x: st.gamma.logpdf(x), TypeError, "shape parameter"),
        (lambda x: st.norm.logpdf(x, 0.0, 1.0, 2.0), TypeError, "at most"),
        (lambda x: st.dirichlet.logpdf(x[:4], np.ones(3)), ValueError, "dirichlet"),
        (
            lambda x: st.multivariate_normal.logpdf(x, np.zeros(6), np.eye(6), allow_singular=True),
            NotImplementedError,
            "allow_singular",
        ),
    ],
)
def test_errors_name_the_function(f, exc, text):
    with pytest.raises(exc, match=text):
        td.jit(f, target="interpret")(X)


# --- scipy.stats -------------------------------------------------------------------------------

STATS = [
    ("norm", lambda x: st.norm.logpdf(x, 0.3, 1.5) + st.norm.pdf(x) + st.norm.cdf(x, scale=2.0), X),
    ("norm-logcdf", lambda x: st.norm.logcdf(x, 1.0), X),
    ("t", lambda x: st.t.logpdf(x, 3.5, 0.1, 2.0) + st.t.pdf(x, df=4.0) + st.t.cdf(x, 2.5), X),
    ("t-logcdf", lambda x: st.t.logcdf(x, 2.5, scale=3.0), EDGE),
    ("gamma", lambda x: st.gamma.logpdf(x, 2.5, scale=0.5) + st.gamma.cdf(x, 0.7), EDGE),
    ("gamma-logcdf", lambda x: st.gamma.logcdf(x, a=3.0), EDGE),
    ("chi2", lambda x: st.chi2.logpdf(x, 3.0) + st.chi2.cdf(x, 4.0, 0.1), EDGE),
    ("beta", lambda x: st.beta.logpdf(x, 2.0, 3.0) + st.beta.pdf(x, 0.5, 1.5), EDGE),
    ("beta-cdf", lambda x: st.beta.cdf(x, 2.0, 3.0) + st.beta.logcdf(x, 0.5, 1.5), EDGE),
    ("expon", lambda x: st.expon.logpdf(x, scale=2.0) + st.expon.cdf(x) + st.expon.logcdf(x, -1.0), EDGE),
    ("laplace", lambda x: st.laplace.logpdf(x, 0.2) + st.laplace.cdf(x, 0.0, 3.0), EDGE),
    ("laplace-logcdf", lambda x: st.laplace.logcdf(x), EDGE),
    ("logistic", lambda x: st.logistic.logpdf(x, 1.0) + st.logistic.cdf(x), EDGE),
    ("logistic-logcdf", lambda x: st.logistic.logcdf(x, scale=0.5), EDGE),
    (
        "uniform",
        lambda x: st.uniform.logpdf(x, -0.5, 2.0) + st.uniform.cdf(x) + st.uniform.pdf(x, 0.0, 4.0),
        EDGE,
    ),
    ("bad-scale", lambda x: st.norm.logpdf(x, 0.0, -1.0) + st.gamma.logpdf(x, -1.0), X),
    (
        "poisson",
        lambda m: st.poisson.logpmf(K, m[0]) + st.poisson.pmf(K, 2.0, 1.0) + st.poisson.cdf(K, m[1]),
        XP,
    ),
    (
        "binom",
        lambda p: st.binom.logpmf(K, 5, p[0]) + st.binom.pmf(K, 3.0, 0.2) + st.binom.cdf(K, 4, p[1]),
        U,
    ),
    (
        "bernoulli",
        lambda p: st.bernoulli.logpmf(K, p[0]) + st.bernoulli.cdf(K, p[1]) + st.bernoulli.pmf(K, 0.3),
        U,
    ),
    ("dirichlet", lambda a: st.dirichlet.logpdf(np.array([[0.2, 0.1], [0.3, 0.6], [0.5, 0.3]]), a[:3]), XP),
    ("dirichlet-k-1", lambda a: st.dirichlet.pdf(np.array([0.2, 0.3]), a[:3]), XP),
    ("mvn", lambda m: st.multivariate_normal.logpdf(np.reshape(X, (2, 3)), m[:3], np.diag(m[3:]) + 0.5), XP),
    ("mvn-1", lambda m: st.multivariate_normal.pdf(m[:3], cov=2.0), XP),
]


@pytest.mark.parametrize("name, f, x", STATS, ids=[c[0] for c in STATS])
def test_stats_match_scipy(name, f, x):
    with np.errstate(all="ignore"):
        want = f(x)
        got = interp(f)(x)
    assert_same(got, want, 1e-11)


def test_stats_float32_inputs_give_float64():
    x = X.astype(np.float32)
    f = STATS[0][1]
    assert_same(interp(f)(x), f(x), 1e-12)


def _log_likelihood(x, loc, scale, a, p):
    """Every distribution with its parameters traced (values inside the supports)."""
    xp = x * x + 0.2  # (no kink: abs(x) at x near 0 would cross one)
    u = 1.0 / (1.0 + xp)
    return (
        np.sum(st.norm.logpdf(x, loc, scale) + st.norm.logcdf(x, loc, scale))
        + np.sum(st.t.logpdf(x, a + 1.0, loc, scale) + st.t.cdf(x, 3.0, loc, scale))
        + np.sum(
            st.gamma.logpdf(xp, a, scale=scale)
            + st.gamma.cdf(xp, 2.0, scale=scale)
            + st.chi2.cdf(xp, 3.0, loc)
        )
        + np.sum(st.chi2.logpdf(xp, a + 1.0))
        + np.sum(st.beta.logpdf(u, a, a + p) + st.beta.cdf(u, 2.0, 3.0, 0.0, scale + 0.5))
        + np.sum(st.expon.logpdf(xp, scale=scale) + st.laplace.logpdf(x, loc, scale))
        + np.sum(st.logistic.logpdf(x, loc, scale) + st.logistic.logcdf(x, loc, scale))
        + np.sum(st.uniform.logpdf(u, -scale, 2.0 * scale))
        + np.sum(st.poisson.logpmf(K[:5], a) + st.binom.logpmf(K[:5], 6, p) + st.binom.cdf(K[:5], 6, p))
        + np.sum(st.bernoulli.logpmf(K[:2], p))
        + st.dirichlet.logpdf(np.array([0.2, 0.3, 0.5]), np.stack([a, p + 1.0, scale]))
        + np.sum(st.multivariate_normal.logpdf(np.reshape(x, (2, 3)), x[:3] * 0.1, np.eye(3) * scale + 0.1))
    )


def _small_likelihood(x, loc, scale, a, p):
    out = np.sum(st.norm.logpdf(x, loc, scale) + st.gamma.logpdf(x * x + 0.2, a, scale=scale))
    return out + np.sum(st.poisson.logpmf(K[:5], a)) + np.sum(st.bernoulli.logpmf(K[:2], p))


def test_stats_derivatives_and_compiled():
    args = (X, -0.65, 1.4, 2.2, 0.35)  # loc away from every x: no kink of laplace in reach
    td.check_grads(_log_likelihood, args, order=2, modes=("rev",))
    # compiled: a few distributions (the whole likelihood takes Numba half a minute)
    vg = td.value_and_grad(_small_likelihood, argnums=(0, 1, 2, 3, 4))
    want, got = interp(vg)(*args), td.jit(vg)(*args)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    for g, w in zip(got[1], want[1]):
        np.testing.assert_allclose(g, w, rtol=1e-10)


def test_grad_of_a_scipy_function_itself():
    g = td.grad(st.norm.logpdf, argnums=(0, 1, 2))(0.7, 0.2, 1.5)
    z = (0.7 - 0.2) / 1.5
    np.testing.assert_allclose(g, (-z / 1.5, z / 1.5, (z * z - 1.0) / 1.5), rtol=1e-13)


def test_no_nan_derivative_outside_the_support():
    g = td.grad(lambda x: np.sum(np.where(x > 0, st.gamma.logpdf(x, 0.5), 0.0)))(np.array([-1.0, 2.0]))
    assert g[0] == 0.0 and np.isfinite(g[1])


# --- scipy.signal -------------------------------------------------------------------------------

SHAPES = [((7,), (3,)), ((3,), (7,)), ((5, 6), (2, 3)), ((2, 3), (5, 6)), ((4, 4), (3, 5))]


@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("fn", [ss.convolve, ss.correlate], ids=["convolve", "correlate"])
def test_signal_matches_scipy(fn, shapes):
    a, b = RNG.normal(size=shapes[0]), RNG.normal(size=shapes[1])
    for mode in ("full", "valid", "same"):
        if mode == "valid" and not (
            all(p >= q for p, q in zip(*shapes)) or all(q >= p for p, q in zip(*shapes))
        ):
            continue
        want = fn(a, b, mode=mode)
        assert_same(interp(lambda a, b, m=mode: fn(a, b, mode=m, method="direct"))(a, b), want, 1e-12)
        if len(shapes[0]) == 2:  # the 2-D functions (correlate2d's 'same' is placed differently)
            fn2 = ss.convolve2d if fn is ss.convolve else ss.correlate2d
            assert_same(
                interp(lambda a, b, m=mode, g=fn2: g(a, b, mode=m))(a, b), fn2(a, b, mode=mode), 1e-12
            )


def test_signal_derivatives_and_compiled():
    a, b = RNG.normal(size=(5, 4)), RNG.normal(size=(2, 3))

    def f(a, b):
        return (
            ss.convolve(a, b, mode="same") ** 2
            + ss.correlate(a, b, mode="same")
            + ss.convolve(a[0], b[1])[:4]
        )

    td.check_grads(f, (a, b), order=2)
    np.testing.assert_allclose(td.jit(f)(a, b), f(a, b), rtol=1e-12)
