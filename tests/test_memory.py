"""Memory: a long loop of compiled-gradient calls keeps RSS flat, and tracing
many distinct functions does not grow memory without bound.

Each measurement runs in a fresh subprocess (a clean heap, nothing else from
the test session in it) and reads the resident set size from
/proc/self/statm after a warm-up and a garbage collection. The numbers are
printed (pytest -s shows them) so regressions can be compared.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import weakref

import numpy as np
import pytest

import tracediff as td

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="RSS from /proc (Linux)")

MB = 1 << 20

PRELUDE = textwrap.dedent(
    """
    import gc, json, os, sys, time
    import numpy as np
    import tracediff as td

    PAGE = os.sysconf("SC_PAGE_SIZE")

    def rss():
        gc.collect()
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE

    def loss(w, x, y):
        p = np.tanh(x @ w)
        return np.mean((p - y) ** 2) + 0.01 * np.sum(w * w)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 16))
    y = rng.standard_normal(64)
    w = rng.standard_normal(16)
    """
)

CALLS = PRELUDE + textwrap.dedent(
    """
    out = {}

    def loop(name, call, n, warm):
        for _ in range(warm):
            call()
        r0 = rss()
        t0 = time.perf_counter()
        marks = []
        for k in range(4):
            for _ in range(n // 4):
                call()
            marks.append(rss())
        dt = time.perf_counter() - t0
        out[name] = {"n": n, "rss0": r0, "marks": marks, "us_per_call": dt / n * 1e6}

    g = td.jit(td.grad(loss))
    loop("jit_grad", lambda: g(w, x, y), 100_000, 5_000)

    gd = td.jit(td.grad(lambda p, x, y: loss(p["w"], x, y) * p["s"]))  # pytree: the general path
    p = {"w": w, "s": 2.0}
    loop("jit_grad_pytree", lambda: gd(p, x, y), 20_000, 2_000)

    gi = td.grad(loss)  # interpreted with NumPy
    loop("grad_interpreted", lambda: gi(w, x, y), 10_000, 1_000)

    vg = td.jit(td.value_and_grad(loss), target="interpret")
    loop("value_and_grad_interpret", lambda: vg(w, x, y), 10_000, 1_000)
    print(json.dumps(out))
    """
)

TRACING = PRELUDE + textwrap.dedent(
    """
    import weakref
    out = {}

    def make(k):
        c = 1.0 + k * 1e-3  # a different constant: a different function and program

        def f(w, x, y):
            return loss(w, x, y) * c

        return f

    def trace_many(name, transform, n, warm, offset):
        refs = []
        for k in range(warm):
            f = make(offset + k)
            transform(f)(w, x, y)
        r0 = rss()
        t0 = time.perf_counter()
        for k in range(n):
            f = make(offset + warm + k)
            transform(f)(w, x, y)
            if k % max(1, n // 25) == 0:
                refs.append(weakref.ref(f))
        del f
        dt = time.perf_counter() - t0
        r1 = rss()
        alive = sum(r() is not None for r in refs)
        out[name] = {"n": n, "rss0": r0, "rss1": r1, "ms_per_function": dt / n * 1e3,
                     "alive_sampled": alive, "sampled": len(refs)}

    trace_many("grad", td.grad, 1000, 150, 0)
    trace_many("value_and_grad_jit_interpret", lambda f: td.jit(td.value_and_grad(f), target="interpret"),
               300, 50, 10_000)

    # compiled: new function objects for one program (the module is reused) ...
    def make_same(k):
        def f(w, x, y):
            return loss(w, x, y) * 2.0

        return f

    saved = make
    make = make_same
    trace_many("jit_grad_same_program", lambda f: td.jit(td.grad(f)), 200, 20, 0)
    make = saved
    # ... and a few distinct programs (each one a Numba compile)
    trace_many("jit_grad_distinct_programs", lambda f: td.jit(td.grad(f)), 4, 1, 20_000)
    print(json.dumps(out))
    """
)


def _run(program: str, tmp_path) -> dict:
    env = dict(os.environ, TRACEDIFF_CACHE_DIR=str(tmp_path / "td_cache"))
    env["TRACEDIFF_VERIFY"] = "0"  # measure the library, not the test-suite's IR checks
    env["NUMBA_NUM_THREADS"] = "1"
    env["TRACEDIFF_EAGER_FIRST"] = "0"  # compiled from the first call (the warm-up)
    proc = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_100k_jitted_gradient_calls_keep_rss_flat(tmp_path):
    res = _run(CALLS, tmp_path)
    for name, r in res.items():
        marks = [m / MB for m in r["marks"]]
        print(
            f"{name}: {r['n']} calls, {r['us_per_call']:.1f} us/call, RSS after warm-up "
            f"{r['rss0'] / MB:.1f} MB, then at each quarter " + ", ".join(f"{m:.2f}" for m in marks) + " MB"
        )
    for name, r in res.items():
        growth = (r["marks"][-1] - r["rss0"]) / MB
        late = (r["marks"][-1] - r["marks"][0]) / MB  # after the first quarter: must be flat
        assert growth < 4.0, f"{name}: RSS grew {growth:.2f} MB over {r['n']} calls after warm-up"
        assert late < 1.5, f"{name}: RSS still growing ({late:.2f} MB over the last 3/4 of the calls)"
        per_call = (r["marks"][-1] - r["rss0"]) / r["n"]
        assert per_call < 32, f"{name}: {per_call:.0f} bytes per call retained"


def test_tracing_many_distinct_functions_is_bounded(tmp_path):
    res = _run(TRACING, tmp_path)
    for name, r in res.items():
        growth = (r["rss1"] - r["rss0"]) / MB
        print(
            f"{name}: {r['n']} functions, {r['ms_per_function']:.2f} ms each, RSS {r['rss0'] / MB:.1f} -> "
            f"{r['rss1'] / MB:.1f} MB ({growth * 1024 / r['n']:.1f} KB per function); "
            f"{r['alive_sampled']}/{r['sampled']} sampled functions still alive"
        )
    for name, r in res.items():
        # the caches belong to the user's functions (weak): dropped functions are freed
        assert r["alive_sampled"] == 0, f"{name}: tracediff keeps dropped functions alive"
    per_fn = {name: (r["rss1"] - r["rss0"]) / r["n"] for name, r in res.items()}
    assert per_fn["grad"] < 2048, f"grad: {per_fn['grad']:.0f} bytes kept per traced function"
    assert per_fn["value_and_grad_jit_interpret"] < 4096, per_fn
    # a function whose program is already compiled reuses the module: little kept per function
    assert per_fn["jit_grad_same_program"] < 16 * 1024, per_fn
    # a distinct program costs a Numba compile; what it keeps must still be modest
    assert per_fn["jit_grad_distinct_programs"] < 8 * MB, per_fn


def _collectable(make_transformed):
    def f(w):
        return np.sum(np.tanh(w) ** 2)

    ref = weakref.ref(f)
    g = make_transformed(f)
    g(np.ones(3))
    g(np.ones(4, np.float32))
    del f, g
    gc.collect()
    return ref() is None


@pytest.mark.parametrize(
    "transform",
    [
        td.grad,
        td.value_and_grad,
        td.jit,
        lambda f: td.jit(td.grad(f)),
        lambda f: td.jit(td.grad(f), target="interpret"),
        lambda f: td.grad(td.jit(f)),
        td.jacobian,
        td.hessian,
    ],
    ids=[
        "grad",
        "value_and_grad",
        "jit",
        "jit_grad",
        "jit_grad_interpret",
        "grad_jit",
        "jacobian",
        "hessian",
    ],
)
def test_dropped_functions_are_freed(transform, tmp_path, monkeypatch):
    """No cache holds a strong reference to the user's function."""
    monkeypatch.setenv("TRACEDIFF_CACHE_DIR", str(tmp_path))
    assert _collectable(transform)
