"""Special functions (scipy.special) as elementwise primitives.

The NumPy implementation is scipy.special itself; compiled CPU code calls the
same C functions (`tracediff.backend.cpu.lib.special`), in float64, rounded to
float32 for float32 operands. Each VJP is written with primitives, so the
derivative differentiates again (second order, forward mode by transposition).
Sources of the rules: DLMF (chapters 5, 7, 8, 10: 5.15.1, 7.2, 8.8.13, 10.6.1,
10.29.1) and JAX's jax.scipy.special / lax special-function JVPs.

The first operand of a binary function whose derivative with respect to it is
not implemented (the order v of iv/ive/jv/yv, the parameter a of gammainc and
gammaincc, a and b of betainc, the degrees of freedom of stdtr) gets a NaN cotangent, so asking for that derivative gives NaN, never
a silently wrong number (also an explicit zero tangent in forward mode: 0 * NaN;
leave such an operand out of the differentiated arguments); the order n of polygamma
is an integer (no derivative).
"""

from __future__ import annotations

import math

import numpy as np

from .elementwise import _elementwise

SQRT_PI_2 = math.sqrt(math.pi) / 2.0  # sqrt(pi) / 2
TWO_SQRT_PI = 2.0 / math.sqrt(math.pi)  # 2 / sqrt(pi)
SQRT_2PI = math.sqrt(2.0 * math.pi)
INV_SQRT_2PI = 1.0 / SQRT_2PI
LIB = ("import tracediff.backend.cpu.lib.special as lib_special",)


def _scipy(name: str):
    """scipy.special.<name> as the NumPy implementation (imported on first use:
    scipy.special is slow to import), its result in the operands' dtype."""

    def impl(*args):
        import scipy.special

        out = np.asarray(getattr(scipy.special, name)(*args))
        dt = np.result_type(*args)
        return out.astype(dt, copy=False) if out.dtype != dt else out

    impl.__name__ = name
    return impl


def _special(name: str, vjp, *, nin: int = 1, scipy_name: str | None = None, cost: int = 40):
    p = _elementwise(name, _scipy(scipy_name or name), vjp, nin=nin)
    args = ", ".join(f"{{{i}}}" for i in range(nin))
    # float64 arithmetic inside SciPy's C function; {dt}(...) rounds a float32 result
    p.scalar["cpu"] = f"{{dt}}(lib_special.{name}({args}))"
    p.imports["cpu"] = LIB
    p.cost = cost
    return p


def _bind(prim, *args):
    from ..builder import bind  # (the tracing layer sits above the primitives)

    return bind(prim, *args)


def _nan_ct(ct):
    """The cotangent of an operand whose derivative is not implemented: NaN."""
    return ct * math.nan


def _full(x, value):
    return np.full_like(x, value)


# --- error function and normal distribution -------------------------------------------

erf_p = _special("erf", lambda ct, ans, x: [ct * (TWO_SQRT_PI * np.exp(-(x * x)))])
erfc_p = _special("erfc", lambda ct, ans, x: [ct * (-TWO_SQRT_PI * np.exp(-(x * x)))])
# erfcx(x) = exp(x^2) erfc(x): erfcx' = 2 x erfcx(x) - 2/sqrt(pi)
erfcx_p = _special("erfcx", lambda ct, ans, x: [ct * (2.0 * x * ans - TWO_SQRT_PI)])
# inverse functions: 1 / f'(f^-1(y))
erfinv_p = _special("erfinv", lambda ct, ans, x: [ct * (SQRT_PI_2 * np.exp(ans * ans))])
erfcinv_p = _special("erfcinv", lambda ct, ans, x: [ct * (-SQRT_PI_2 * np.exp(ans * ans))])
ndtr_p = _special("ndtr", lambda ct, ans, x: [ct * (INV_SQRT_2PI * np.exp(-0.5 * (x * x)))])
ndtri_p = _special("ndtri", lambda ct, ans, x: [ct * (SQRT_2PI * np.exp(0.5 * (ans * ans)))])
# log Phi(x)' = phi(x) / Phi(x) = exp(-x^2/2 - log Phi(x)) / sqrt(2 pi): no 0/0 far in
# the left tail, where Phi underflows but log Phi does not
log_ndtr_p = _special("log_ndtr", lambda ct, ans, x: [ct * (INV_SQRT_2PI * np.exp(-0.5 * (x * x) - ans))])

# --- gamma family ----------------------------------------------------------------------


def _polygamma_vjp(ct, ans, n, x):
    return [None, ct * _bind(polygamma_p, n + 1.0, x)]


polygamma_p = _special("polygamma", _polygamma_vjp, nin=2)
digamma_p = _special(
    "digamma", lambda ct, ans, x: [ct * _bind(polygamma_p, _full(x, 1.0), x)], scipy_name="psi"
)
gammaln_p = _special("gammaln", lambda ct, ans, x: [ct * _bind(digamma_p, x)])
gamma_p = _special("gamma", lambda ct, ans, x: [ct * (ans * _bind(digamma_p, x))])
gammasgn_p = _special("gammasgn", None, cost=20)  # piecewise constant: derivative 0


def _gammainc_dx(a, x):
    # d/dx P(a, x) = x^(a-1) e^-x / Gamma(a) (DLMF 8.8.13); xlogy: 0^0 = 1 at a = 1
    return np.exp(_bind(xlogy_p, a - 1.0, x) - x - _bind(gammaln_p, a))


gammainc_p = _special("gammainc", lambda ct, ans, a, x: [_nan_ct(ct), ct * _gammainc_dx(a, x)], nin=2)
gammaincc_p = _special("gammaincc", lambda ct, ans, a, x: [_nan_ct(ct), -(ct * _gammainc_dx(a, x))], nin=2)


def _beta_vjp(ct, ans, a, b):
    # d/da B(a, b) = B(a, b) (psi(a) - psi(a + b)) (DLMF 5.12.1 differentiated)
    pab = _bind(digamma_p, a + b)
    return [ct * (ans * (_bind(digamma_p, a) - pab)), ct * (ans * (_bind(digamma_p, b) - pab))]


def _betaln_vjp(ct, ans, a, b):
    pab = _bind(digamma_p, a + b)
    return [ct * (_bind(digamma_p, a) - pab), ct * (_bind(digamma_p, b) - pab)]


beta_p = _special("beta", _beta_vjp, nin=2)
betaln_p = _special("betaln", _betaln_vjp, nin=2)

# --- x log y ----------------------------------------------------------------------------


def _safe_ratio(x, y):
    """x / y, exactly 0 where x == 0 (also where y == 0: no 0/0 in a later derivative)."""
    zero = x == 0.0
    return np.where(zero, 0.0, x / np.where(zero, 1.0, y))


# d/dx x log y = log y (as JAX, also at x = 0); d/dy = x / y, 0 where x == 0
xlogy_p = _special("xlogy", lambda ct, ans, x, y: [ct * np.log(y), ct * _safe_ratio(x, y)], nin=2)
xlog1py_p = _special("xlog1py", lambda ct, ans, x, y: [ct * np.log1p(y), ct * _safe_ratio(x, y + 1.0)], nin=2)

# --- incomplete beta and Student's t distribution -------------------------------------


def _betainc_vjp(ct, ans, a, b, x):
    # d/dx I_x(a, b) = x^(a-1) (1-x)^(b-1) / B(a, b) (DLMF 8.17.1)
    d = np.exp(_bind(xlogy_p, a - 1.0, x) + _bind(xlog1py_p, b - 1.0, -x) - _bind(betaln_p, a, b))
    return [_nan_ct(ct), _nan_ct(ct), ct * d]


def _stdtr_vjp(ct, ans, df, t):
    # the density of Student's t: Gamma((df+1)/2) / (sqrt(df pi) Gamma(df/2)) (1 + t^2/df)^(-(df+1)/2)
    logc = _bind(gammaln_p, 0.5 * df + 0.5) - _bind(gammaln_p, 0.5 * df) - 0.5 * np.log(df * math.pi)
    return [_nan_ct(ct), ct * np.exp(logc - (0.5 * df + 0.5) * np.log1p(t * t / df))]


betainc_p = _special("betainc", _betainc_vjp, nin=3, cost=80)
stdtr_p = _special("stdtr", _stdtr_vjp, nin=2, cost=80)

# SciPy's float32 loops of these compute in single precision: so does compiled code
for _p in (erfinv_p, xlogy_p, xlog1py_p, betainc_p, stdtr_p):
    _p.scalar["cpu:float32"] = f"lib_special.{_p.name}_f32({', '.join(f'{{{i}}}' for i in range(_p.nin))})"

# --- Bessel functions ----------------------------------------------------------------
# DLMF 10.6.1 (J, Y: C' = (C(v-1) - C(v+1)) / 2) and 10.29.1 (I' = (I(v-1) + I(v+1)) / 2);
# the scaled ive(v, x) = iv(v, x) e^-|x| adds -sign(x) ive(v, x)


def _two(x):
    return _full(x, 2.0)


def _iv_vjp(ct, ans, v, x):
    return [_nan_ct(ct), ct * (0.5 * (_bind(iv_p, v - 1.0, x) + _bind(iv_p, v + 1.0, x)))]


def _ive_vjp(ct, ans, v, x):
    d = 0.5 * (_bind(ive_p, v - 1.0, x) + _bind(ive_p, v + 1.0, x)) - np.sign(x) * ans
    return [_nan_ct(ct), ct * d]


def _jv_vjp(ct, ans, v, x):
    return [_nan_ct(ct), ct * (0.5 * (_bind(jv_p, v - 1.0, x) - _bind(jv_p, v + 1.0, x)))]


def _yv_vjp(ct, ans, v, x):
    return [_nan_ct(ct), ct * (0.5 * (_bind(yv_p, v - 1.0, x) - _bind(yv_p, v + 1.0, x)))]


iv_p = _special("iv", _iv_vjp, nin=2, cost=80)
ive_p = _special("ive", _ive_vjp, nin=2, cost=80)
jv_p = _special("jv", _jv_vjp, nin=2, cost=80)
yv_p = _special("yv", _yv_vjp, nin=2, cost=80)
i0_p = _special("i0", lambda ct, ans, x: [ct * _bind(i1_p, x)])
# I1' = (I0 + I2) / 2: finite at 0, where I0 - I1/x is 0/0
i1_p = _special("i1", lambda ct, ans, x: [ct * (0.5 * (_bind(i0_p, x) + _bind(iv_p, _two(x), x)))])
i0e_p = _special("i0e", lambda ct, ans, x: [ct * (_bind(i1e_p, x) - np.sign(x) * ans)])
i1e_p = _special(
    "i1e",
    lambda ct, ans, x: [ct * (0.5 * (_bind(i0e_p, x) + _bind(ive_p, _two(x), x)) - np.sign(x) * ans)],
)
j0_p = _special("j0", lambda ct, ans, x: [-(ct * _bind(j1_p, x))])
j1_p = _special("j1", lambda ct, ans, x: [ct * (0.5 * (_bind(j0_p, x) - _bind(jv_p, _two(x), x)))])
y0_p = _special("y0", lambda ct, ans, x: [-(ct * _bind(y1_p, x))])
y1_p = _special("y1", lambda ct, ans, x: [ct * (0.5 * (_bind(y0_p, x) - _bind(yv_p, _two(x), x)))])
