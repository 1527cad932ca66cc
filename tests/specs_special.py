"""Registry specs of the special-function family (scipy.special): one spec per
group of primitives sharing a domain (`also` names the others), one shape each.
The compositions (logit, entr, logsumexp, scipy.stats...) are tested in test_special.py."""

from __future__ import annotations

import scipy.special as S
from spec_util import Spec, away0, normal, pos, unit


def _erfs(x, u):
    return S.erf(x) + 0.5 * S.erfc(x) + S.erfcx(x) + S.erfinv(u) * S.erfcinv(u + 1.0)


def _normal_cdfs(x, u):
    # log_ndtr far in the left tail (x - 4), where ndtr itself underflows its precision
    return S.ndtr(x) + S.ndtri(0.5 * (u + 1.0)) + S.log_ndtr(x - 4.0)


def _gammas(x):
    # gammasgn on (-1, 0): -1 (piecewise constant, derivative 0)
    return S.gammaln(x) + S.digamma(x) + S.polygamma(1, x) + S.gamma(x) * S.gammasgn(-0.4 * x - 0.1)


def _bessel_i(x, y):
    # integer orders at any sign of x; fractional orders at x > 0
    return (
        S.i0(x) + S.i1(x) + S.i0e(x) + S.i1e(x) + S.iv(2.0, x) + S.iv(1.5, y) + S.ive(0.5, y) + S.ive(1.0, x)
    )


def _bessel_j(y):
    return S.j0(y) + S.j1(y) + S.y0(y) + S.y1(y) + S.jv(1.5, y) + S.yv(0.5, y) + S.jn(2, y)


SPECS = [
    Spec("erf", _erfs, normal, unit, shapes=((5,),), also=("erfc", "erfcx", "erfinv", "erfcinv")),
    Spec("ndtr", _normal_cdfs, normal, unit, shapes=((5,),), also=("ndtri", "log_ndtr")),
    Spec("gammaln", _gammas, pos, shapes=((5,),), also=("digamma", "polygamma", "gamma", "gammasgn")),
    Spec(
        "gammainc",
        lambda x: S.gammainc(1.5, 2.0 * x) + S.gammaincc(2.5, x),
        pos,
        shapes=((5,),),
        also=("gammaincc",),
    ),
    Spec(
        "beta", lambda a, b: S.beta(a, b) + S.betaln(a, 2.0 * b), pos, pos, shapes=((5,),), also=("betaln",)
    ),
    Spec(
        "betainc",
        lambda x, t: S.betainc(2.0, 3.5, 0.4 * x) + S.stdtr(3.0, t),
        pos,
        normal,
        shapes=((5,),),
        also=("stdtr",),
    ),
    Spec(
        "xlogy", lambda x, y: S.xlogy(x, y) + S.xlog1py(x, y), normal, pos, shapes=((5,),), also=("xlog1py",)
    ),
    Spec("iv", _bessel_i, away0, pos, shapes=((5,),), also=("ive", "i0", "i1", "i0e", "i1e")),
    Spec("jv", _bessel_j, pos, shapes=((5,),), also=("yv", "j0", "j1", "y0", "y1")),
]
