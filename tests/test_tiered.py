"""Tiered execution: td.jit's first calls run the optimized program with the
interpreter while Numba compiles it in a background thread."""

import threading

import numpy as np
import pytest

import tracediff as td
from tracediff.tiered import Tier


def make_loss(c=0.5):
    # a new function object per test (transformed functions share their cache per
    # function), and a new program per `c` (compiled programs are shared per source)
    def loss(w, x):
        h = np.tanh(x @ w)
        return np.sum(h * h) + c * np.sum(np.exp(-w * w))

    return loss


loss = make_loss()


def _entry(f):
    (entry,) = f.cache.values()
    return entry


def test_first_call_interprets_then_switches(rng):
    w, x = rng.normal(size=(6, 3)), rng.normal(size=(40, 6))
    f = td.jit(td.grad(loss), eager_first=True, cache=False)
    want = td.grad(loss)(w, x)
    got = f(w, x)  # interpreted: the compiler runs in the background
    entry = _entry(f)
    assert isinstance(entry.tier, Tier)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert f.compile(w, x) is f  # waits for the compiled program
    assert entry.runner is not None and not isinstance(entry.runner, Tier)
    np.testing.assert_allclose(f(w, x), want, rtol=1e-12)
    # the compiled call is the generated fast path from now on
    assert f._fasts and f(w, x).shape == w.shape


def test_eager_first_off_compiles_on_the_first_call(rng):
    w, x = rng.normal(size=(6, 3)), rng.normal(size=(40, 6))
    fresh = make_loss()
    f = td.jit(td.grad(fresh), eager_first=False, cache=False)
    np.testing.assert_allclose(f(w, x), td.grad(loss)(w, x), rtol=1e-12)
    entry = _entry(f)
    assert entry.tier is None and entry.runner is not None


def test_env_default_follows_the_suite_option(pytestconfig):
    # conftest turns tiering off (unless --eager-first=on) so that a test's first
    # call checks compiled code
    assert td.jit(loss).eager_first is (pytestconfig.getoption("--eager-first") == "on")
    assert td.jit(loss, eager_first=True).eager_first is True
    assert td.jit(loss, target="interpret", eager_first=True).eager_first is False


def test_background_failure_surfaces_on_the_next_call(rng, monkeypatch):
    from tracediff.backend.cpu import CpuRunner

    def broken(self, sig):
        raise RuntimeError("compiler exploded")

    monkeypatch.setattr(CpuRunner, "compile", broken)
    w, x = rng.normal(size=(6, 3)), rng.normal(size=(40, 6))
    fresh = make_loss(0.25)
    f = td.jit(td.grad(fresh), eager_first=True, cache=False)
    for _ in range(2):  # interpreted; the second call queues the program for compiling
        np.testing.assert_allclose(f(w, x), td.grad(fresh)(w, x), rtol=1e-12)
    _entry(f).tier.done.wait(60)
    with pytest.raises(RuntimeError, match="compiler exploded"):
        f(w, x)
    with pytest.raises(RuntimeError, match="compiler exploded"):
        f.compile(w, x)


def test_a_program_called_once_is_not_compiled(rng):
    w, x = rng.normal(size=(6, 3)), rng.normal(size=(40, 6))
    f = td.jit(td.grad(make_loss(0.375)), eager_first=True, cache=False)
    f(w, x)
    tier = _entry(f).tier
    assert tier.state == "new" and tier.calls == 1
    f(w, x)
    assert tier.state in ("queued", "running", "done")
    f.compile(w, x)
    assert _entry(f).runner is not None


def test_a_dropped_function_is_not_compiled(rng):
    import gc

    from tracediff.tiered import COMPILE_AFTER

    w, x = rng.normal(size=(6, 3)), rng.normal(size=(40, 6))
    f = td.jit(td.grad(make_loss(0.625)), eager_first=True, cache=False)
    for _ in range(COMPILE_AFTER):
        f(w, x)
    tier = _entry(f).tier
    del f
    gc.collect()
    assert tier.done.wait(60)  # served (or skipped: its entry is gone) without error
    assert tier.error is None


def test_codegen_errors_are_not_deferred(rng, monkeypatch):
    # an operation the CPU target cannot compile fails on the first call, as without
    # tiering (a check of the program, before the background thread generates code)
    from tracediff.backend.base import EmitError
    from tracediff.backend.cpu.writer import CpuWriter

    monkeypatch.delattr(CpuWriter, "op_matmul")
    g = td.jit(make_loss(0.125), eager_first=True, cache=False)
    with pytest.raises(EmitError, match="cannot compile matmul"):
        g(rng.normal(size=(6, 3)), rng.normal(size=(40, 6)))


def test_compiled_code_is_reused(rng):
    # a program compiled in this process already (same source, another function
    # object): the background thread finds its kernel and installs it at once
    src = "import numpy as np\ndef h(x):\n    return np.sum(np.sin(x) * x)\n"
    ns1, ns2 = {}, {}
    exec(compile(src, "<tiered-h>", "exec"), ns1)
    exec(compile(src, "<tiered-h>", "exec"), ns2)
    x = rng.normal(size=50)
    f1 = td.jit(td.grad(ns1["h"]), eager_first=True, cache=False).compile(x)
    f2 = td.jit(td.grad(ns2["h"]), eager_first=True, cache=False)
    np.testing.assert_allclose(f2(x), np.sin(x) + x * np.cos(x), rtol=1e-12)
    f2.compile(x)
    assert _entry(f2).runner.kernel is _entry(f1).runner.kernel


def test_threads_calling_during_compilation(rng):
    w, x = rng.normal(size=(6, 3)), rng.normal(size=(40, 6))
    fresh = make_loss(0.75)
    f = td.jit(td.value_and_grad(fresh), eager_first=True, cache=False)
    want_v, want_g = td.value_and_grad(fresh)(w, x)
    results, errors = [], []

    def worker():
        try:
            for _ in range(5):
                results.append(f(w, x))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 20
    for v, g in results:
        np.testing.assert_allclose(v, want_v, rtol=1e-12)
        np.testing.assert_allclose(g, want_g, rtol=1e-12)
    assert _entry(f).tier is not None  # one entry, one background compile
