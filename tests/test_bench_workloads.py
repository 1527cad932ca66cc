"""The hand-written limits of benchmarks/workloads.py W12 and W13 agree with
td.grad and finite differences, and run.py's peak-memory measurement counts
what compiled code allocates (the W12 memory target is about that number)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tracediff as td

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")


@pytest.fixture(scope="module")
def W():
    spec = importlib.util.spec_from_file_location("workloads", os.path.join(BENCH, "workloads.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # (dataclasses and Numba's cache look their module up)
    spec.loader.exec_module(mod)
    return mod


def rel_err(got, want):
    return max(
        float(np.max(np.abs(np.float64(a) - b)) / max(np.max(np.abs(b)), 1e-30)) for a, b in zip(got, want)
    )


@pytest.mark.parametrize("n", [1, 2, 7, 300])
def test_w12_limit_small(W, n):
    rng = np.random.default_rng(n)
    P = rng.uniform(0.0, 1.0, (n, 2)).astype(np.float32)
    w = rng.standard_normal(n).astype(np.float32)
    want = td.grad(W.w12, argnums=(0, 1))(P, w)
    for limit in (W.w12_limit, W.w12_limit_symmetric):
        got = limit(P, w)
        assert [g.dtype for g in got] == [np.float32, np.float32]
        assert [g.shape for g in got] == [P.shape, w.shape]
        assert rel_err(got, want) < 1e-5
    value, _ = W.w12_value_and_grad(P, w)
    assert value == pytest.approx(float(W.w12(np.float64(P), np.float64(w))), rel=1e-5)


@pytest.mark.parametrize("wid", ["W12", "W13"])
def test_limit_verifies(W, wid):
    w = W.WORKLOADS[wid]
    args = w.data()
    ok, note = W.verify_limit(w, args, td.grad(w.fn, argnums=w.argnums)(*args))
    assert ok and note.startswith("matches td.grad"), note


@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="VmHWM reset (Linux)")
def test_peak_memory_counts_compiled_allocations(tmp_path):
    script = f"""
import json, sys
sys.argv = ["run.py"]
sys.path.insert(0, {BENCH!r})
import numba, numpy as np
import run

@numba.njit(cache=False)
def nb():
    a = np.ones(4_000_000, np.float32)  # 16 MB, freed before the call returns
    return np.ones(10, np.float32) * a[0]

def npy():
    a = np.ones(4_000_000, np.float32)
    return a[:10] * 2

out = {{}}
for f in (nb, npy):
    f()
    out[f.__name__] = run.peak_rss_growth(f, lambda r: (r,))
print(json.dumps(out))
"""
    env = dict(os.environ, TRACEDIFF_CACHE_DIR=str(tmp_path))
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout.strip().splitlines()[-1])
    for name, mb in got.items():
        assert 15.0 < mb < 17.5, (name, mb)
    # the W12 limit, measured in a fresh process as run.py does: no N x N arrays
    p = subprocess.run(
        [sys.executable, os.path.join(BENCH, "run.py"), "--peak-memory-child", "W12", "limit", "cpu"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res.get("peak_mb", 1e9) < 2.0, (res, p.stderr[-2000:])
