"""Batched transformations: dense Hessians and vmap of a gradient.

    python benchmarks/transforms.py            # all rows, about 2 min on 2 cores
    python benchmarks/transforms.py --rounds 30

Rows, each checked against a reference before it is timed, timed in
interleaved rounds in one process (median and min per call):

- H1: `td.jit(td.hessian(f))` of a logistic-regression loss, n = 256
  parameters and m = 20,000 examples (Newton's method on W6-like data), against
  one `td.jit(td.grad(f))` call and the hand-written Hessian
  `Xᵀ diag(p(1-p)) X / m` (NumPy + BLAS), and JAX when it imports.
- H2: the same for Rosenbrock in n = 256 (W3's function, larger): the gradient
  is a few microseconds, the Hessian 65,536 numbers.
- V1: `td.jit(td.vmap(td.grad(f)))` over 1,000 Rosenbrock problems of 16
  (W3), against a hand-written batched `@njit` gradient loop, and JAX.
- C: the cold first call (trace + optimize + compile) of
  `td.jit(td.hessian(f))` for n = 256 and n = 1024, in fresh processes with an
  empty cache.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np

import tracediff as td

M, N = 20_000, 256
REG = 1e-3


def logreg(w, X, y):
    z = X @ w
    return np.mean(np.log1p(np.exp(z)) - y * z) + 0.5 * REG * np.sum(w * w)


def logreg_hessian(w, X, y):
    """The limit: Xᵀ diag(p (1 - p)) X / m + reg I, one BLAS product."""
    p = 1.0 / (1.0 + np.exp(-(X @ w)))
    return (X.T * (p * (1.0 - p))) @ X / X.shape[0] + REG * np.eye(X.shape[1])


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


@numba.njit(cache=True)
def rosen_grads(X):
    """The limit of V1: each problem's gradient, one pass."""
    out = np.zeros_like(X)
    for b in range(X.shape[0]):
        for i in range(X.shape[1] - 1):
            x0, x1 = X[b, i], X[b, i + 1]
            t = x1 - x0 * x0
            out[b, i] += -400.0 * t * x0 - 2.0 * (1.0 - x0)
            out[b, i + 1] += 200.0 * t
    return out


def timed(variants: dict, rounds: int, per_round: int) -> dict:
    """Interleaved rounds, each timing every variant `per_round` times (median/min)."""
    times = {k: [] for k in variants}
    names = list(variants)
    for r in range(rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            f = variants[k]
            t = time.perf_counter()
            for _ in range(per_round):
                f()
            times[k].append((time.perf_counter() - t) / per_round)
    return {k: (statistics.median(v), min(v)) for k, v in times.items()}


def jax_fns():
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
    except Exception as e:  # noqa: BLE001
        print(f"(JAX not available: {type(e).__name__})", file=sys.stderr)
        return None

    def jlogreg(w, X, y):
        z = X @ w
        return jnp.mean(jnp.log1p(jnp.exp(z)) - y * z) + 0.5 * REG * jnp.sum(w * w)

    def jrosen(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    def ready(f):
        return lambda *a: np.asarray(jax.block_until_ready(f(*a)))

    return {
        "logreg_hess": ready(jax.jit(jax.hessian(jlogreg))),
        "logreg_grad": ready(jax.jit(jax.grad(jlogreg))),
        "rosen_hess": ready(jax.jit(jax.hessian(jrosen))),
        "rosen_grad": ready(jax.jit(jax.grad(jrosen))),
        "rosen_vmap": ready(jax.jit(jax.vmap(jax.grad(jrosen)))),
    }


def fmt(t: float) -> str:
    return f"{t * 1e6:.1f} µs" if t < 1e-3 else f"{t * 1e3:.2f} ms"


def report(title: str, res: dict, base: str, note: dict | None = None) -> list[str]:
    lines = [
        f"### {title}",
        "",
        f"| variant | median | min | ratio to `{base}` |",
        "| --- | --- | --- | --- |",
    ]
    b = res[base][0]
    for k, (med, mn) in res.items():
        lines.append(
            f"| {k} | {fmt(med)} | {fmt(mn)} | {med / b:.2f}× |"
            + ((" " + note[k]) if note and k in note else "")
        )
    return lines + [""]


COLD = """
import time, numpy as np, tracediff as td, sys
sys.path.insert(0, {here!r})
from transforms import logreg
n = {n}
rng = np.random.default_rng(0)
X = rng.standard_normal((2000, n)) / np.sqrt(n); y = (rng.uniform(size=2000) < 0.5).astype(float)
w = rng.standard_normal(n) * 0.1
t = time.perf_counter(); td.jit(td.hessian(logreg))(w, X, y); print(time.perf_counter() - t)
"""


def cold(n: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, TRACEDIFF_CACHE_DIR=d, NUMBA_CACHE_DIR=d)
        src = COLD.format(here=os.path.dirname(os.path.abspath(__file__)), n=n)
        out = subprocess.run([sys.executable, "-c", src], env=env, capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    jx = jax_fns()
    out = [f"tracediff {td.__version__}, NumPy {np.__version__}, Numba {numba.__version__}", ""]

    # H1: logistic regression, n = 256, m = 20,000
    X = rng.standard_normal((M, N)) / np.sqrt(N)
    y = (rng.uniform(size=M) < 0.5).astype(np.float64)
    w = rng.standard_normal(N) * 0.1
    hess, grad = td.jit(td.hessian(logreg)), td.jit(td.grad(logreg))
    want = logreg_hessian(w, X, y)
    np.testing.assert_allclose(hess(w, X, y), want, rtol=1e-9, atol=1e-12)
    v = {
        "td.jit(td.grad)": lambda: grad(w, X, y),
        "td.jit(td.hessian)": lambda: hess(w, X, y),
        "hand-written Hessian (NumPy+BLAS)": lambda: logreg_hessian(w, X, y),
    }
    if jx:
        np.testing.assert_allclose(jx["logreg_hess"](w, X, y), want, rtol=1e-9, atol=1e-12)
        v["JAX jit(grad)"] = lambda: jx["logreg_grad"](w, X, y)
        v["JAX jit(hessian)"] = lambda: jx["logreg_hess"](w, X, y)
    for f in v.values():
        f()
    out += report(
        f"H1: Hessian of a logistic loss, n = {N}, m = {M:,}", timed(v, args.rounds, 1), "td.jit(td.grad)"
    )

    # H2: Rosenbrock, n = 256
    x = rng.standard_normal(N)
    hess, grad = td.jit(td.hessian(rosen)), td.jit(td.grad(rosen))
    want = td.jacfwd(td.grad(rosen))(x)
    np.testing.assert_allclose(hess(x), want, rtol=1e-12)
    v = {"td.jit(td.grad)": lambda: grad(x), "td.jit(td.hessian)": lambda: hess(x)}
    if jx:
        np.testing.assert_allclose(jx["rosen_hess"](x), want, rtol=1e-12)
        v["JAX jit(grad)"] = lambda: jx["rosen_grad"](x)
        v["JAX jit(hessian)"] = lambda: jx["rosen_hess"](x)
    for f in v.values():
        f()
    out += report(f"H2: Hessian of Rosenbrock, n = {N}", timed(v, args.rounds, 20), "td.jit(td.grad)")

    # V1: vmap of a gradient over 1,000 small problems
    Xs = rng.standard_normal((1000, 16))
    vg = td.jit(td.vmap(td.grad(rosen)))
    want = rosen_grads(Xs)
    np.testing.assert_allclose(vg(Xs), want, rtol=1e-12)
    v = {"hand-written @njit loop": lambda: rosen_grads(Xs), "td.jit(td.vmap(td.grad))": lambda: vg(Xs)}
    if jx:
        np.testing.assert_allclose(jx["rosen_vmap"](Xs), want, rtol=1e-12)
        v["JAX jit(vmap(grad))"] = lambda: jx["rosen_vmap"](Xs)
    for f in v.values():
        f()
    out += report(
        "V1: vmap(grad) of Rosenbrock-16 over 1,000 problems",
        timed(v, args.rounds, 50),
        "hand-written @njit loop",
    )

    # C: cold compile of a Hessian, whatever n is
    out += ["### C: cold first call of td.jit(td.hessian(logistic loss)), m = 2,000, fresh process", ""]
    out += ["| n | first call |", "| --- | --- |"]
    for n in (256, 1024):
        out.append(f"| {n} | {cold(n):.2f} s |")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
