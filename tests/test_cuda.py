"""target="cuda" without a GPU: kernels run in Numba's CUDA simulator, and every
kernel the simulator launched compiles to PTX for sm_80 (which later GPUs, sm_90
included, also run: the driver compiles PTX for newer targets).

The simulator must be chosen before Numba is imported, so each check runs in a
subprocess (`tests/cuda_sim.py`). The primitive and program tables are split
into shards that run in parallel; every case compiles forward, value_and_grad
and (float64, each primitive's first shape) a Hessian-vector product for target="cuda" and must match the
NumPy interpreter running the unoptimized program.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tracediff as td

pytest.importorskip("numba_cuda", reason="numba-cuda is not installed (pip install 'tracediff[cuda]')")

HERE = os.path.dirname(os.path.abspath(__file__))
SHARDS = 6


def _env(sim: bool) -> dict:
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if sim:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(HERE), env.get("PYTHONPATH", "")])
    return env


def _python(args: list[str], sim: bool, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], env=_env(sim), capture_output=True, text=True, timeout=timeout, cwd=HERE
    )


@pytest.mark.parametrize("shard", range(SHARDS))
def test_tables_on_simulator_and_ptx(shard, tmp_path, tmp_path_factory):
    out = tmp_path / "run.json"
    r = _python([os.path.join(HERE, "cuda_sim.py"), "run", str(shard), str(SHARDS), str(out)], sim=True)
    assert r.returncode == 0, r.stderr[-4000:]
    data = json.loads(out.read_text())
    results = data["results"]
    assert len(results) > 100  # the tables are there
    wrong = [f"{name}: {msg}" for name, kind, msg in results if kind == "fail"]
    assert not wrong, f"{len(wrong)} of {len(results)} cases differ:\n" + "\n\n".join(wrong)[:8000]
    refused = [name for name, kind, _ in results if kind == "error"]
    assert len(refused) <= 0.05 * len(results), refused
    # every kernel those programs launched, compiled for real GPUs
    # (kernels another shard compiled already are skipped: the shards share a folder)
    done = tmp_path_factory.getbasetemp().parent / "ptx-compiled"
    done.mkdir(exist_ok=True)
    r = _python([os.path.join(HERE, "cuda_sim.py"), "ptx", str(out), str(done)], sim=False)
    assert r.returncode == 0, r.stderr[-4000:]
    ptx = json.loads(r.stdout.strip().splitlines()[-1])
    assert not ptx["failures"], "\n".join(ptx["failures"])[:8000]
    assert len(os.listdir(done)) >= ptx["compiled"] > 0


DEVICE_ARRAYS = textwrap.dedent(
    """
    import numpy as np
    from numba import cuda
    from numba.cuda.simulator.cudadrv import devicearray as sim
    import tracediff as td

    from tracediff.backend.cuda import cublas

    copies, in_blas = [], []
    orig = sim.FakeCUDAArray.copy_to_host
    sim.FakeCUDAArray.copy_to_host = lambda self, *a, **k: (
        in_blas or copies.append(self.shape), orig(self, *a, **k))[1]
    blas = cublas.matmul  # (the simulator's stand-in for cuBLAS computes on the host)
    cublas.matmul = lambda *a, **k: (in_blas.append(1), blas(*a, **k), in_blas.pop())[1]

    def loss(w, x, y):
        z = x @ w
        return np.mean(np.log1p(np.exp(z)) - y * z)

    @td.jit(target="cuda")
    def step(w, x, y):
        l, g = td.value_and_grad(loss)(w, x, y)
        return l, w - 0.5 * g

    r = np.random.default_rng(0)
    x = r.standard_normal((16, 3)); y = (r.uniform(size=16) < 0.5).astype(np.float64)
    w = np.zeros(3)
    dw, dx, dy = (cuda.to_device(a) for a in (w, x, y))
    for _ in range(3):
        l_dev, dw = step(dw, dx, dy)
        assert type(dw).__name__ == "FakeCUDAArray" and dw.shape == (3,), type(dw)
        assert type(l_dev).__name__ == "FakeCUDAArray" and l_dev.shape == (), l_dev.shape
    assert copies == [], copies  # nothing came back to the host
    cpu = td.jit(step)
    for _ in range(3):
        l_cpu, w = cpu(w, x, y)
    np.testing.assert_allclose(dw.copy_to_host(), w, rtol=1e-12)
    np.testing.assert_allclose(l_dev.copy_to_host(), l_cpu, rtol=1e-12)
    # NumPy in, NumPy out
    l_np, w_np = step(np.zeros(3), x, y)
    assert isinstance(w_np, np.ndarray) and isinstance(l_np, np.floating)
    # an index out of bounds raises, as on the CPU
    g = td.jit(lambda a, i: a[i] * 2.0, target="cuda")
    try:
        g(np.arange(3.0), np.array([0, 5]))
    except IndexError as e:
        assert "out of bounds" in str(e), e
    else:
        raise AssertionError("no IndexError")
    print("ok")
    """
)


def test_device_arrays_stay_on_the_device():
    r = _python(["-c", DEVICE_ARRAYS], sim=True)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout[-2000:] + r.stderr[-4000:]


def test_without_a_gpu_the_error_says_what_to_do():
    from numba import cuda

    if cuda.is_available():
        pytest.skip("a GPU is present")
    f = td.jit(lambda x: np.sin(x) * 2.0, target="cuda")
    with pytest.raises(RuntimeError, match="NUMBA_ENABLE_CUDASIM=1") as e:
        f(np.ones(3))
    assert "tracediff[cuda]" in str(e.value)


def test_dump_shows_kernels_and_the_host_function():
    def f(x, y):
        return np.sum(np.tanh(x * y), axis=1)

    x = np.ones((4, 3), np.float32)
    src = td.dump(td.grad(lambda x, y: np.sum(f(x, y)), argnums=(0, 1)), x, x, stage="source", target="cuda")
    assert "@cuda.jit" in src and "def program(" in src and "cuda.grid(1)" in src
    assert "float64" not in src.split("def program")[0]  # float32 stays float32 on the device
    r = _python(["-m", "tracediff", "dump", "--help"], sim=False)
    assert "--target" in r.stdout


CACHED = textwrap.dedent(
    """
    import numpy as np
    import tracediff as td
    f = td.jit(td.grad(lambda x: np.sum(np.tanh(x) ** 2)), target="cuda")
    print(float(np.sum(f(np.linspace(-1.0, 1.0, 7)))))
    """
)


def test_programs_are_cached_on_disk_per_device(tmp_path):
    env_dir = str(tmp_path / "cache")
    outs = []
    for _ in range(2):
        env = _env(sim=True)
        env["TRACEDIFF_CACHE_DIR"] = env_dir
        r = subprocess.run(
            [sys.executable, "-c", CACHED], env=env, capture_output=True, text=True, timeout=600
        )
        assert r.returncode == 0, r.stderr[-3000:]
        outs.append(r.stdout)
        files = sorted(p for p in os.listdir(env_dir) if p.endswith(".py"))
        if len(outs) == 1:
            first = files
    assert outs[0] == outs[1] and files == first and len(files) == 1  # the second process reused it
    with open(os.path.join(env_dir, files[0])) as f:
        assert f.readline().startswith("# device: simulator")  # the key names the device
