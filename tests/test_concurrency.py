"""Threads and processes: the same answers as one thread, and a disk cache that
eight processes can fill at once.

- One compiled function called from 8 threads at once (started together by a
  barrier, many rounds), warm and cold (the first call, which traces and
  compiles, made by all 8 threads at once): results equal the single-threaded
  ones exactly.
- Different functions, with different signatures (shapes, dtypes), traced by 8
  threads at once through grad, value_and_grad, vjp, jvp and jit(grad): an
  equation of one trace leaking into another would show up as a wrong value or
  an error. New function objects every round, so every round traces.
- Eight processes compile the same program into one empty cache folder,
  released together; then a second wave of eight loads it. All exit 0 with
  the right numbers, and the folder holds no temporary or half-written files.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import traceback

import numpy as np
import pytest

import tracediff as td


@pytest.fixture(autouse=True)
def _first_calls_compile(monkeypatch):
    """These tests are about compiled programs and their caches: the first call
    compiles (also in the processes they start), whatever --eager-first says."""
    monkeypatch.setenv("TRACEDIFF_EAGER_FIRST", "0")
    monkeypatch.setattr("tracediff.transforms.DEFAULT_EAGER_FIRST", False)


N_THREADS = 8


@pytest.fixture(autouse=True)
def _own_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEDIFF_CACHE_DIR", str(tmp_path / "td_cache"))


@pytest.fixture
def fast_switching():
    """Make the interpreter switch threads often, so interleavings are many."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def _run_threads(work, n=N_THREADS, timeout=120.0):
    """Run work(t) in n threads released together; returns their results, raises their errors."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def body(t):
        try:
            barrier.wait(timeout=timeout)
            results[t] = work(t)
        except BaseException:  # noqa: BLE001
            errors.append((t, traceback.format_exc()))

    threads = [threading.Thread(target=body, args=(t,), daemon=True) for t in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout)
    assert not any(th.is_alive() for th in threads), "a thread hung"
    assert not errors, "\n".join(f"thread {t}:\n{tb}" for t, tb in errors[:3])
    return results


def _exact(got, want, what):
    if isinstance(want, (tuple, list)):
        assert type(got) is type(want) and len(got) == len(want), what
        for g, w in zip(got, want):
            _exact(g, w, what)
        return
    if isinstance(want, dict):
        assert type(got) is dict and got.keys() == want.keys(), what
        for k in want:
            _exact(got[k], want[k], what)
        return
    assert type(got) is type(want), f"{what}: {type(got)} vs {type(want)}"
    g, w = np.asarray(got), np.asarray(want)
    assert g.dtype == w.dtype and g.shape == w.shape, f"{what}: {g.dtype}{g.shape} vs {w.dtype}{w.shape}"
    assert np.array_equal(g, w, equal_nan=True), f"{what}: {g} != {w}"


# --- one compiled function, many threads ------------------------------------------------


def make_loss():
    """A new function object (its own tracediff cache) for the same program."""

    def loss(w, x, y):
        p = np.tanh(x @ w)
        return np.mean((p - y) ** 2) + 0.01 * np.sum(w * w)

    return loss


def _inputs(n_in, n_feat, count, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_in, n_feat))
    y = rng.standard_normal(n_in)
    ws = [rng.standard_normal(n_feat) for _ in range(count)]
    return ws, x, y


def test_one_compiled_function_called_from_8_threads(fast_switching):
    loss = make_loss()
    ws, x, y = _inputs(64, 16, 16)
    g = td.jit(td.grad(loss))
    vg = td.jit(td.value_and_grad(loss))
    gi = td.grad(loss)  # interpreted, through the same per-function cache
    gd = td.jit(td.grad(lambda p, x, y: loss(p["w"], x, y)))  # a pytree: the general path
    want_g = [g(w, x, y) for w in ws]
    want_gd = [gd({"w": w}, x, y) for w in ws]
    want_vg = [vg(w, x, y) for w in ws]
    want_gi = [gi(w, x, y) for w in ws]
    rounds = 300

    def work(t):
        for i in range(rounds):
            j = (t * 7 + i) % len(ws)
            _exact(g(ws[j], x, y), want_g[j], f"jit(grad) thread {t} call {i}")
            if i % 3 == 0:
                _exact(vg(ws[j], x, y), want_vg[j], f"jit(value_and_grad) thread {t} call {i}")
            if i % 10 == 0:
                _exact(gi(ws[j], x, y), want_gi[j], f"grad thread {t} call {i}")
            if i % 5 == 0:
                _exact(gd({"w": ws[j]}, x, y), want_gd[j], f"jit(grad) of a dict thread {t} call {i}")
        return True

    assert all(_run_threads(work))


def test_first_call_from_8_threads_at_once(fast_switching):
    """All threads make the first call (trace + compile) of a fresh function together.

    Twelve rounds, each with a fresh function object: three programs (shapes),
    so the first three rounds race on the Numba compile, the others on tracing,
    optimizing and the module lookup.
    """
    rounds = 12
    data = [_inputs(40 + r % 3, 9 + r % 3, N_THREADS, seed=r) for r in range(rounds)]
    gs = [td.jit(td.grad(make_loss())) for _ in range(rounds)]
    barrier = threading.Barrier(N_THREADS)

    def work(t):
        out = []
        for g, (ws, x, y) in zip(gs, data):
            barrier.wait(timeout=120)
            out.append([g(ws[t], x, y) for _ in range(3)])
        return out

    got = _run_threads(work)
    for r, (ws, x, y) in enumerate(data):
        # the single-threaded answers, from another fresh function object (same program)
        g1 = td.jit(td.grad(make_loss()))
        for t in range(N_THREADS):
            want = g1(ws[t], x, y)
            for res in got[t][r]:
                _exact(res, want, f"round {r} thread {t}")
        ref = td.grad(make_loss())(ws[0], x, y)  # and they are the gradient
        np.testing.assert_allclose(g1(ws[0], x, y), ref, rtol=1e-12, atol=1e-14)


# --- different functions traced by 8 threads at once -----------------------------------


def _family(k):
    """Thread k's function: its own operations, shape and dtype."""
    ops = [
        lambda x: np.sum(np.tanh(x) ** 2),
        lambda x: np.sum(np.exp(-x * x) * x),
        lambda x: np.mean(np.sin(x) * np.cos(2.0 * x)),
        lambda x: np.sum(np.log1p(x * x)),
        lambda x: np.sum(x**3) - np.max(x),
        lambda x: np.sum(np.sqrt(x * x + 1.0)) * 0.5,
        lambda x: np.sum(1.0 / (1.0 + np.exp(-x))),
        lambda x: np.sum(np.abs(x) * x) + np.sum(x[::2]),
    ]
    body = ops[k % len(ops)]

    def make():
        def f(x):  # a new function object each call: traced anew each round
            return body(x) + 0.0

        return f

    shape = (k + 2,) if k % 3 else (2, k + 1)
    dtype = np.float32 if k % 2 == 0 else np.float64
    return make, shape, dtype


def _ops(f, x):
    out, f_vjp = td.vjp(f, x)
    return (
        td.grad(f)(x),
        td.value_and_grad(f)(x),
        (out, f_vjp(np.ones_like(out))),
        td.jvp(f, (x,), (np.ones_like(x),)),
        td.jit(td.grad(f))(x),
        td.grad(lambda s: f(x * s))(np.asarray(1.0, x.dtype)),  # a closure over a traced-in value
    )


def test_tracing_different_functions_from_8_threads(fast_switching):
    rng = np.random.default_rng(1)
    tasks = []
    for k in range(N_THREADS):
        make, shape, dtype = _family(k)
        xs = [rng.uniform(-1.5, 1.5, shape).astype(dtype) for _ in range(4)]
        want = [_ops(make(), x) for x in xs]  # single-threaded, before the threads start
        tasks.append((make, xs, want))
    rounds = 12

    def work(t):
        make, xs, want = tasks[t]
        for i in range(rounds):
            j = i % len(xs)
            _exact(_ops(make(), xs[j]), want[j], f"thread {t} round {i}")
        return True

    assert all(_run_threads(work))


def test_dump_and_make_ir_from_threads(fast_switching):
    """Inspection traces too: each thread's IR has only its own equations."""

    def make(k):
        def f(x):
            y = x
            for _ in range(k + 1):
                y = np.sin(y)
            return np.sum(y)

        return f

    x = np.ones(3)
    want = [len(td.make_ir(make(k), x).eqns) for k in range(N_THREADS)]
    assert len(set(want)) == N_THREADS

    def work(t):
        return [len(td.make_ir(make(t), x).eqns) for _ in range(15)]

    for t, counts in enumerate(_run_threads(work)):
        assert counts == [want[t]] * 15, (t, counts, want[t])


# --- eight processes, one cache folder -----------------------------------------------------

WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    import numpy as np
    import tracediff as td

    def loss(w, x, y):
        p = np.tanh(x @ w)
        return np.mean((p - y) ** 2) + 0.01 * np.sum(w * w)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 8))
    y = rng.standard_normal(32)
    w = np.linspace(-1.0, 1.0, 8)

    barrier, me, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    open(os.path.join(barrier, "ready." + me), "w").close()
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(barrier, "go")):  # released together
        if time.time() > deadline:
            sys.exit("never released")
        time.sleep(0.002)
    v, g = td.jit(td.value_and_grad(loss))(w, x, y)
    print(json.dumps({"v": float(v), "grad": g.tolist()}))
    """
)


def _wave(cache: str, barrier_dir, n: int = N_THREADS) -> list[dict]:
    barrier_dir.mkdir()
    env = dict(os.environ, TRACEDIFF_CACHE_DIR=cache)
    env.pop("NUMBA_CACHE_DIR", None)  # Numba's cache files go beside the module, as by default
    env["NUMBA_NUM_THREADS"] = "1"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(barrier_dir), str(k), str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for k in range(n)
    ]
    try:
        deadline = time.time() + 240
        while len(list(barrier_dir.glob("ready.*"))) < n:
            dead = [p for p in procs if p.poll() is not None]
            assert not dead, dead[0].communicate()[1][-3000:]
            assert time.time() < deadline, "workers did not start"
            time.sleep(0.01)
        (barrier_dir / "go").touch()
        outs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for k, (p, (_, err)) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f"worker {k} exited {p.returncode}:\n{err[-4000:]}"
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


def _listing(cache) -> dict[str, tuple[int, int]]:
    return {
        os.path.relpath(os.path.join(d, f), cache): (
            os.stat(os.path.join(d, f)).st_mtime_ns,
            os.path.getsize(os.path.join(d, f)),
        )
        for d, _, fs in os.walk(cache)
        for f in fs
    }


def _assert_clean(listing):
    stray = [
        f
        for f in listing
        if "tmp" in f.lower() or not (f.startswith("td_") or f.startswith("__pycache__" + os.sep + "td_"))
    ]
    assert not stray, f"temporary or unexpected files left in the cache folder: {stray}"
    assert all(size > 0 for _, size in listing.values()), f"empty files in the cache folder: {listing}"


def test_eight_processes_fill_one_empty_cache_then_eight_load_it(tmp_path):
    cache = tmp_path / "shared_cache"
    cache.mkdir()
    # the answer, computed here without the disk cache
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 8))
    y = rng.standard_normal(32)
    w = np.linspace(-1.0, 1.0, 8)
    loss = make_loss()
    want_g = td.grad(loss)(w, x, y)

    first = _wave(str(cache), tmp_path / "barrier1")
    for r in first:
        assert r == first[0], "processes disagree"
    np.testing.assert_allclose(first[0]["grad"], want_g, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(first[0]["v"], loss(w, x, y), rtol=1e-12)
    after_first = _listing(str(cache))
    _assert_clean(after_first)
    modules = [f for f in after_first if f.startswith("td_") and f.endswith(".py")]
    assert len(modules) == 1, f"one module for the one program: {sorted(after_first)}"
    for m in modules:  # whole, not half-written: it parses and ends with its last line
        src = (cache / m).read_text()
        ast.parse(src)
        assert src.endswith("\n"), f"{m} does not end with a newline"
    for m in modules:
        name = m[: -len(".py")]
        assert any(
            f.startswith(os.path.join("__pycache__", name)) and f.endswith(".nbi") for f in after_first
        ), f"no Numba cache index for {m}: {sorted(after_first)}"

    second = _wave(str(cache), tmp_path / "barrier2")
    for r in second:
        assert r == first[0], "the second wave (loading from the cache) disagrees"
    after_second = _listing(str(cache))
    _assert_clean(after_second)
    rewritten = sorted(f for f in after_second if after_first.get(f) != after_second[f])
    assert not rewritten, f"the loading wave rewrote cache files (it compiled again): {rewritten}"
