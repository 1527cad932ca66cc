"""Compile caching: in memory, on disk across processes, corrupt entries, warnings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import tracediff as td


@pytest.fixture(autouse=True)
def _first_calls_compile(monkeypatch):
    """These tests are about compiled programs and their caches: the first call
    compiles (also in the processes they start), whatever --eager-first says."""
    monkeypatch.setenv("TRACEDIFF_EAGER_FIRST", "0")
    monkeypatch.setattr("tracediff.transforms.DEFAULT_EAGER_FIRST", False)


PROGRAM = textwrap.dedent(
    """
    import json, time
    import numpy as np
    t0 = time.perf_counter()
    import tracediff as td

    def loss(w, x):
        return np.sum(np.tanh(x @ w) ** 2)

    g = td.jit(td.grad(loss))
    w = np.linspace(-1, 1, 8).astype(np.float32)
    x = np.ones((16, 8), np.float32)
    out = g(w, x)
    print(json.dumps({"seconds": time.perf_counter() - t0, "grad": out.tolist()}))
    """
)


def _run(cache_dir) -> dict:
    env = dict(os.environ, TRACEDIFF_CACHE_DIR=str(cache_dir))
    env.pop("NUMBA_CACHE_DIR", None)  # Numba's cache files go beside the module, as by default
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_disk_cache_is_reused_and_survives_corruption(tmp_path):
    first = _run(tmp_path)
    modules = list(tmp_path.glob("td_*.py"))
    assert len(modules) == 1, "one generated module per program"
    assert list((tmp_path / "__pycache__").glob("td_*.nbi")), "Numba's cache index is written"
    second = _run(tmp_path)
    assert second["grad"] == first["grad"]
    assert second["seconds"] < first["seconds"], (first, second)

    # a half-written module file is detected and rewritten
    modules[0].write_text("def kernel(:\n")
    assert _run(tmp_path)["grad"] == first["grad"]
    # corrupt Numba cache files: recompiled, never a crash
    for f in (tmp_path / "__pycache__").glob("td_*"):
        f.write_bytes(b"\x00garbage")
    assert _run(tmp_path)["grad"] == first["grad"]


def test_many_signatures_warn_once():
    f = td.jit(lambda x: np.sum(x * 2.0), target="interpret")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in range(1, 20):
            f(np.ones(n))
    msgs = [str(w.message) for w in caught if "different signatures" in str(w.message)]
    assert len(msgs) == 1


def test_in_memory_cache_shares_compiled_programs():
    x = np.ones(4)
    a = td.jit(lambda x: np.sin(x) * 3.0)
    b = td.jit(lambda x: np.sin(x) * 3.0)  # another function, the same program
    a(x)
    b(x)
    assert a.entry(x).runner.module is b.entry(x).runner.module


@pytest.mark.parametrize("bad", [np.ones(3, np.float16)])
def test_unsupported_dtype_is_a_clear_error(bad):
    with pytest.raises(
        TypeError, match=r"argument 0 \('x'\) has dtype float16 .* target 'cpu' does not support"
    ):
        td.jit(lambda x: np.sin(x))(bad)
