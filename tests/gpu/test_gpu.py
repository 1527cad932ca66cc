"""td.jit(..., target="cuda") on a real GPU, checked against target="cpu".

Every test here needs a CUDA GPU and skips otherwise, saying why. The CUDA
simulator (NUMBA_ENABLE_CUDASIM=1) does not count: it runs the kernels as Python
threads on the CPU, and these tests are about the device itself (compiled
kernels, cuBLAS, device memory, no copies to the host). Whether a GPU is there
is worked out once per process, on the first test of this module that runs, so
collecting the rest of the suite never imports numba.cuda.

    python -m pytest tests/gpu -rs -n 0     # one process: one CUDA context
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import tracediff as td


@functools.cache
def gpu_missing() -> str | None:
    """Why these tests cannot run here, or None when a CUDA GPU is usable."""
    from tracediff.backend.cuda import gpu_missing as why

    return why()


@pytest.fixture(autouse=True)
def _needs_gpu():
    reason = gpu_missing()
    if reason is not None:
        pytest.skip(f"no GPU: {reason}")


# --- helpers -------------------------------------------------------------------------------


def host(tree):
    """A result with every device array copied to a NumPy array (any pytree)."""
    from numba import cuda

    if isinstance(tree, (tuple, list)):
        return type(tree)(host(t) for t in tree)
    if isinstance(tree, dict):
        return {k: host(v) for k, v in tree.items()}
    if cuda.is_cuda_array(tree):
        return cuda.as_cuda_array(tree).copy_to_host()
    return np.asarray(tree)


def leaves(tree) -> list:
    if isinstance(tree, (tuple, list)):
        return [x for t in tree for x in leaves(t)]
    if isinstance(tree, dict):
        return [x for k in sorted(tree) for x in leaves(tree[k])]
    return [tree]


def assert_close(got, want, rtol):
    """Every leaf within rtol, elementwise, plus rtol times the leaf's largest |value| (where
    terms cancel, an element's own relative error says nothing about the code)."""
    got, want = leaves(host(got)), leaves(host(want))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        atol = rtol * float(np.max(np.abs(w), initial=0.0))
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


class DeviceToHostCounter:
    """Counts device -> host copies made through numba's driver while it is active."""

    def __init__(self, monkeypatch):
        from numba.cuda.cudadrv import driver

        self.calls = 0
        real = driver.device_to_host

        def counting(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(driver, "device_to_host", counting)


# sizes: W1 and W4 of 1M float32 elements, W2's batch
N_W1, N_W4, N_W2, N_WHILE = 1_000_000, 1_000_000, 256, 2000


# --- the programs --------------------------------------------------------------------------


def w1(x, y):
    return np.sum(np.sin(x) * np.exp(-x * x) + np.tanh(x * y) + np.log1p(y * y))


def w2(W1, b1, W2, b2, X, Y):
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    m = np.max(logits, axis=1, keepdims=True)
    z = logits - m
    lse = np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(Y * (z - lse), axis=1))


def w4(x, w, b):
    for _ in range(40):
        x = x + 0.1 * np.tanh(x * w + b)
    return np.sum(x * x)


def spring(p0, k):
    p, v, t = p0, np.zeros_like(p0), 0.0
    while t < 3.0:  # an adaptive step: the trip count depends on the values
        a = -k * p - 0.1 * v * np.abs(v)
        dt = 0.2 / (1.0 + np.max(np.abs(a)))
        v = v + dt * a
        p = p + dt * v
        t = t + dt
    return np.sum(p * p) + np.sum(v * v)


def spring_steps(p0, k) -> int:
    p, v, t, steps = p0, np.zeros_like(p0), 0.0, 0
    while t < 3.0:
        a = -k * p - 0.1 * v * np.abs(v)
        dt = 0.2 / (1.0 + np.max(np.abs(a)))
        v = v + dt * a
        p = p + dt * v
        t = t + dt
        steps += 1
    return steps


def w1_data(n=None):
    n = n or N_W1
    rng = np.random.default_rng(1)
    return rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)


def w2_data(n=None, d=784, hdim=512, k=10):
    n = n or N_W2
    rng = np.random.default_rng(2)
    X = rng.random((n, d), dtype=np.float32)
    Y = np.eye(k, dtype=np.float32)[rng.integers(0, k, n)]
    W1 = (rng.standard_normal((d, hdim)) * math.sqrt(1.0 / d)).astype(np.float32)
    b1 = (rng.standard_normal(hdim) * 0.01).astype(np.float32)
    W2 = (rng.standard_normal((hdim, k)) * math.sqrt(1.0 / hdim)).astype(np.float32)
    b2 = (rng.standard_normal(k) * 0.01).astype(np.float32)
    return W1, b1, W2, b2, X, Y


def w4_data(n=None):
    n = n or N_W4
    rng = np.random.default_rng(4)
    x = rng.standard_normal(n, dtype=np.float32)
    return x, np.float32([0.8]), np.float32([-0.3])


def both(fn):
    """fn compiled for the GPU and for the CPU."""
    return td.jit(fn, target="cuda"), td.jit(fn, target="cpu")


# --- the tests -----------------------------------------------------------------------------


def test_w1_value_and_grad_match_cpu():
    x, y = w1_data()
    f_gpu, f_cpu = both(w1)
    v = f_gpu(x, y)
    assert not hasattr(v, "__cuda_array_interface__")  # NumPy in, NumPy out
    assert_close(np.float32(v), np.float32(f_cpu(x, y)), rtol=1e-5)
    g_gpu, g_cpu = both(td.grad(w1, argnums=(0, 1)))
    got = g_gpu(x, y)
    assert all(type(g) is np.ndarray for g in got)
    assert_close(got, g_cpu(x, y), rtol=1e-5)


def test_w2_mlp_value_and_grad_match_cpu():
    args = w2_data()
    vg_gpu, vg_cpu = both(td.value_and_grad(w2, argnums=(0, 1, 2, 3)))
    (v, g), (v_ref, g_ref) = vg_gpu(*args), vg_cpu(*args)
    # 1e-4: float32 sums of 784 products in another order; TF32 matmuls would miss it
    assert_close(np.float32(v), np.float32(v_ref), rtol=1e-4)
    assert_close(g, g_ref, rtol=1e-4)


def test_w4_forty_step_chain_grad_matches_cpu():
    args = w4_data()
    g_gpu, g_cpu = both(td.grad(w4, argnums=(0, 1)))
    assert_close(g_gpu(*args), g_cpu(*args), rtol=1e-4)


def test_while_loop_with_value_dependent_trip_count():
    p0 = np.random.default_rng(5).standard_normal(N_WHILE)
    g_gpu, g_cpu = both(td.grad(spring, argnums=(0, 1)))
    cases = [(p0, 2.0), (p0 * 3.0, 0.5), (p0, 2.0)]  # different trip counts in turn
    assert len({spring_steps(*c) for c in cases}) == 2
    for c in cases:
        assert_close(g_gpu(*c), g_cpu(*c), rtol=1e-8)


def test_device_arrays_in_device_arrays_out(monkeypatch):
    from numba import cuda

    x, y = w1_data()
    dx, dy = cuda.to_device(x), cuda.to_device(y)
    g = td.jit(td.grad(w1, argnums=(0, 1)), target="cuda")
    want = g(x, y)  # NumPy in: NumPy out
    g(dx, dy)  # compiles for device arrays, if that is a separate entry
    copies = DeviceToHostCounter(monkeypatch)
    got = g(dx, dy)
    cuda.synchronize()
    assert copies.calls == 0, f"{copies.calls} device-to-host copies during a call on device arrays"
    assert len(got) == 2
    for r, w in zip(got, want):
        assert cuda.is_cuda_array(r) and not isinstance(r, np.ndarray)
        assert r.shape == w.shape and r.dtype == w.dtype == np.float32
    assert_close(got, want, rtol=1e-6)  # the same kernels on the same inputs


def mlp_loss(params, X, y):
    h = np.tanh(X @ params["W"] + params["b"])
    return np.mean((h @ params["v"] - y) ** 2)


def sgd(params, grads):
    return {k: params[k] - 0.05 * grads[k] for k in params}


def test_training_loop_keeps_params_on_the_device(monkeypatch):
    from numba import cuda

    rng = np.random.default_rng(6)
    X = rng.standard_normal((512, 32), dtype=np.float32)
    y = np.sin(X[:, 0] + X[:, 1]).astype(np.float32)
    params = {
        "W": (rng.standard_normal((32, 16)) * 0.2).astype(np.float32),
        "b": np.zeros(16, np.float32),
        "v": (rng.standard_normal(16) * 0.2).astype(np.float32),
    }

    def make(target):
        return td.jit(td.value_and_grad(mlp_loss), target=target), td.jit(sgd, target=target)

    def train(step, update, params, X, y):
        losses = []
        for _ in range(5):
            loss, grads = step(params, X, y)
            params = update(params, grads)
            losses.append(loss)
        return losses, params

    losses_cpu, params_cpu = train(*make("cpu"), params, X, y)
    step, update = make("cuda")
    d_params = {k: cuda.to_device(v) for k, v in params.items()}
    dX, dy = cuda.to_device(X), cuda.to_device(y)
    train(step, update, d_params, dX, dy)  # compiles, outside the counted run
    copies = DeviceToHostCounter(monkeypatch)
    losses, d_out = train(step, update, d_params, dX, dy)
    cuda.synchronize()
    assert copies.calls == 0, f"{copies.calls} device-to-host copies in a training loop on the device"
    assert sorted(d_out) == sorted(params)
    assert all(cuda.is_cuda_array(p) for p in d_out.values())
    monkeypatch.undo()
    assert_close([np.float32(v) for v in host(losses)], [np.float32(v) for v in losses_cpu], rtol=1e-5)
    assert losses_cpu[-1] < losses_cpu[0]
    assert_close(d_out, params_cpu, rtol=1e-5)


def test_cuda_array_interface_input():
    try:
        import torch
    except Exception as e:
        pytest.skip(f"torch is not importable ({type(e).__name__})")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA support here: no __cuda_array_interface__ object to pass")
    from numba import cuda

    x, y = w1_data(100_000)
    tx, ty = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
    torch.cuda.synchronize()
    assert hasattr(tx, "__cuda_array_interface__")
    g = td.jit(td.grad(w1, argnums=(0, 1)), target="cuda")
    got = g(tx, ty)
    assert all(cuda.is_cuda_array(r) for r in got)
    assert_close(got, td.jit(td.grad(w1, argnums=(0, 1)))(x, y), rtol=1e-5)
    torch_x_after = tx.cpu().numpy()
    np.testing.assert_array_equal(torch_x_after, x)  # the input is left alone
