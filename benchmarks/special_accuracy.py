"""Max ulp difference of compiled tracediff special functions vs scipy.special (10^5 points).

python benchmarks/special_accuracy.py   (prints the Markdown table of docs/benchmarks.md)
"""

import numpy as np
import scipy.special as S

import tracediff as td

N = 100_000
rng = np.random.default_rng(0)
U = lambda lo, hi: rng.uniform(lo, hi, N)
V = lambda: rng.integers(0, 5, N).astype(float)
CASES = [
    ("erf", lambda x: S.erf(x), (U(-6, 6),)),
    ("erfc", lambda x: S.erfc(x), (U(-6, 27),)),
    ("erfcx", lambda x: S.erfcx(x), (U(-5, 100),)),
    ("erfinv", lambda x: S.erfinv(x), (U(-1, 1),)),
    ("erfcinv", lambda x: S.erfcinv(x), (U(0, 2),)),
    ("ndtr", lambda x: S.ndtr(x), (U(-38, 9),)),
    ("ndtri", lambda x: S.ndtri(x), (U(0, 1),)),
    ("log_ndtr", lambda x: S.log_ndtr(x), (U(-100, 10),)),
    ("gammaln", lambda x: S.gammaln(x), (U(-20, 200),)),
    ("digamma", lambda x: S.digamma(x), (U(-10, 100),)),
    ("polygamma", lambda n, x: S.polygamma(n, x), (V(), U(0.01, 50))),
    ("gamma", lambda x: S.gamma(x), (U(-10, 30),)),
    ("gammasgn", lambda x: S.gammasgn(x), (U(-10, 10),)),
    ("gammainc", lambda a, x: S.gammainc(a, x), (U(0.1, 20), U(0, 30))),
    ("gammaincc", lambda a, x: S.gammaincc(a, x), (U(0.1, 20), U(0, 30))),
    ("beta", lambda a, b: S.beta(a, b), (U(0.1, 30), U(0.1, 30))),
    ("betaln", lambda a, b: S.betaln(a, b), (U(0.1, 300), U(0.1, 300))),
    ("betainc", lambda a, b, x: S.betainc(a, b, x), (U(0.1, 10), U(0.1, 10), U(0, 1))),
    ("stdtr", lambda df, t: S.stdtr(df, t), (U(0.5, 30), U(-20, 20))),
    ("xlogy", lambda x, y: S.xlogy(x, y), (U(-5, 5), U(0, 10))),
    ("xlog1py", lambda x, y: S.xlog1py(x, y), (U(-5, 5), U(-1, 10))),
    ("i0", lambda x: S.i0(x), (U(-50, 50),)),
    ("i1", lambda x: S.i1(x), (U(-50, 50),)),
    ("i0e", lambda x: S.i0e(x), (U(-50, 50),)),
    ("i1e", lambda x: S.i1e(x), (U(-50, 50),)),
    ("iv", lambda v, x: S.iv(v, x), (U(0, 5), U(0, 30))),
    ("ive", lambda v, x: S.ive(v, x), (U(0, 5), U(0, 30))),
    ("jv", lambda v, x: S.jv(v, x), (U(0, 5), U(0, 50))),
    ("yv", lambda v, x: S.yv(v, x), (U(0, 5), U(0.01, 50))),
    ("j0", lambda x: S.j0(x), (U(0, 50),)),
    ("j1", lambda x: S.j1(x), (U(0, 50),)),
    ("y0", lambda x: S.y0(x), (U(0.01, 50),)),
    ("y1", lambda x: S.y1(x), (U(0.01, 50),)),
]


def ulps(got, want):
    got, want = np.asarray(got), np.asarray(want)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    with np.errstate(all="ignore"):
        d = np.abs(got.astype(np.float64) - want.astype(np.float64)) / np.spacing(np.abs(want)).astype(
            np.float64
        )
    d = np.where(same, 0.0, d)
    return np.nanmax(np.where(np.isfinite(d), d, np.inf)), int(np.sum(~same))


def everything(*args):
    out, i = [], 0
    for _, f, a in CASES:
        out.append(f(*args[i : i + len(a)]))
        i += len(a)
    return tuple(out)


rows = []
for dt in (np.float64, np.float32):
    args = [a.astype(dt) for _, _, aa in CASES for a in aa]
    got = td.jit(everything)(*args)
    want = everything(*args)
    for (name, _, _), g, w in zip(CASES, got, want):
        rows.append((name, np.dtype(dt).name, *ulps(g, w), np.asarray(w).dtype.name))
print("| function | dtype | max ulp vs scipy.special | points differing (of 10^5) | result dtype |")
print("| --- | --- | --- | --- | --- |")
for r in rows:
    print(f"| {r[0]} | {r[1]} | {r[2]:.3g} | {r[3]} | {r[4]} |")
