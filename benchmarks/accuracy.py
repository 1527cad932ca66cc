"""Accuracy and speed of tracediff's vectorized math (tracediff.backend.vmath)
against the correctly rounded result, for docs/accuracy.md.

    python benchmarks/accuracy.py [--points N] [--markdown FILE]

For each function and dtype: the maximum error in ulp over N points with
uniformly random bit patterns (every binade, subnormals too) plus N points
spread over the range where the function is most used; and the time per
element in a loop, against the same loop calling libm (Numba's math/np.*),
on standard-normal data. References: float64 NumPy for float32 results, x87
long double (np.longdouble) for float64 results.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import datetime, timezone

import numba
import numpy as np
import scipy.special

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from vmath_util import apply, apply2, loop2_of, loop_of, ulp_error  # noqa: E402

from tracediff.backend import vmath  # noqa: E402


def _libm(fn):
    return numba.njit(inline="always")(lambda x: fn(x))


# name: (NumPy reference, libm scalar in Numba, everyday range, domain)
UNARY = {
    "exp": (np.exp, np.exp, (-10, 10)),
    "exp2": (np.exp2, np.exp2, (-10, 10)),
    "expm1": (np.expm1, np.expm1, (-2, 2)),
    "log": (np.log, np.log, (0, 10)),
    "log2": (np.log2, np.log2, (0, 10)),
    "log1p": (np.log1p, np.log1p, (-0.9, 10)),
    "sin": (np.sin, np.sin, (-10, 10)),
    "cos": (np.cos, np.cos, (-10, 10)),
    "tanh": (np.tanh, np.tanh, (-5, 5)),
    "sigmoid": (scipy.special.expit, None, (-20, 20)),
}


def _reference(ref, x):
    wide = np.float64 if x.dtype == np.float32 else np.longdouble
    with np.errstate(all="ignore"):
        return ref(x.astype(wide))


def _reference2(ref, x, y):
    wide = np.float64 if x.dtype == np.float32 else np.longdouble
    with np.errstate(all="ignore"):
        return ref(x.astype(wide), y.astype(wide))


def _random_bits(dt, n, rng):
    if dt == np.float32:
        x = rng.integers(0, 0x7F800000, n, dtype=np.int64).astype(np.uint32).view(np.float32)
    else:
        x = rng.integers(0, 0x7FF0000000000000, n, dtype=np.int64).view(np.float64)
    x[1::2] *= -1
    return x


def _time(loop, args, repeat=7):
    loop(*args)
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        loop(*args)
        best = min(best, time.perf_counter() - t)
    return best


def measure(points: int) -> list[dict]:
    rng = np.random.default_rng(0)
    rows = []
    for name, (ref, libm, (lo, hi)) in UNARY.items():
        for dt, suffix in ((np.float32, "f32"), (np.float64, "f64")):
            fast = getattr(vmath, f"{name}_{suffix}", None)
            if fast is None:
                continue
            x = np.concatenate([_random_bits(dt, points, rng), rng.uniform(lo, hi, points).astype(dt)])
            with np.errstate(all="ignore"):
                err = ulp_error(apply(fast, x), _reference(ref, x))
            data = rng.standard_normal(4_000_000).astype(dt)
            out = np.empty_like(data)
            t_fast = _time(loop_of(fast), (data, out))
            if libm is None:  # the formula a user would write
                libm_fn = numba.njit(inline="always")(lambda v: 1 / (1 + np.exp(-v)))
            else:
                libm_fn = _libm(libm)
            t_libm = _time(loop_of(libm_fn), (data, out))
            rows.append(
                {
                    "function": name,
                    "dtype": np.dtype(dt).name,
                    "max_ulp": float(err.max()),
                    "points": len(x),
                    "ns_fast": t_fast / data.size * 1e9,
                    "ns_libm": t_libm / data.size * 1e9,
                }
            )
    for dt, suffix in ((np.float32, "f32"), (np.float64, "f64")):
        pow_fast = getattr(vmath, f"pow_{suffix}", None)
        if pow_fast is None:
            continue
        x = np.abs(_random_bits(dt, points, rng))
        with np.errstate(all="ignore"):  # exponents that keep most results finite and nonzero
            y = (
                rng.uniform(-1000, 1000, points) / np.maximum(np.abs(np.log2(x.astype(np.float64))), 1)
            ).astype(dt)
            err = ulp_error(apply2(pow_fast, x, y), _reference2(np.power, x, y))
        a = np.abs(rng.standard_normal(4_000_000)).astype(dt) + dt(0.5)
        b = rng.standard_normal(4_000_000).astype(dt)
        out = np.empty_like(a)
        libm_pow = numba.njit(inline="always")(lambda u, v: u**v)
        rows.append(
            {
                "function": "pow",
                "dtype": np.dtype(dt).name,
                "max_ulp": float(err.max()),
                "points": points,
                "ns_fast": _time(loop2_of(pow_fast), (a, b, out)) / a.size * 1e9,
                "ns_libm": _time(loop2_of(libm_pow), (a, b, out)) / a.size * 1e9,
            }
        )
    return rows


def markdown(rows: list[dict], points: int) -> str:
    lines = [
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}; NumPy {np.__version__}, Numba {numba.__version__}",
        f"- command: `python benchmarks/accuracy.py --points {points}`",
        "",
        "| function | dtype | max error (ulp) | bound | points | ns/element fast | ns/element libm | speed-up |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        bound = 4 if r["dtype"] == "float32" else 2
        lines.append(
            f"| {r['function']} | {r['dtype']} | {r['max_ulp']:.2f} | {bound} | {r['points']:,} | "
            f"{r['ns_fast']:.2f} | {r['ns_libm']:.2f} | {r['ns_libm'] / r['ns_fast']:.1f}× |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000, help="points per sample set (default 1M)")
    ap.add_argument("--markdown", help="also write the table to this file")
    args = ap.parse_args(argv)
    text = markdown(measure(args.points), args.points)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
