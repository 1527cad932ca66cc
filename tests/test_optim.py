"""tracediff.optim: functional optimizers over pytrees, eager and inside td.jit."""

from __future__ import annotations

import numpy as np
import pytest

import tracediff as td
from tracediff import optim

f32, f64 = np.float32, np.float64

OPTIMIZERS = {
    "sgd": lambda: optim.sgd(0.1),
    "momentum": lambda: optim.momentum(0.05, beta=0.9),
    "adam": lambda: optim.adam(0.1),
}


def quadratic(params):
    # minimum 0 at w = [1, -2, 3], b = 0.5
    w, b = params["w"], params["b"]
    return np.sum((w - np.array([1.0, -2.0, 3.0])) ** 2) + 2.0 * np.sum((b - 0.5) ** 2)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_reduces_quadratic(name):
    opt = OPTIMIZERS[name]()
    params = {"w": np.zeros(3), "b": np.zeros(1)}
    state = opt.init(params)
    start = quadratic(params)
    g = td.grad(quadratic)
    for _ in range(200):
        params, state = opt.update(g(params), state, params)
    end = quadratic(params)
    assert end < 1e-3 * start, (name, start, end)
    assert int(state.count) == 200


def _adam_reference(p, grads, lr, b1, b2, eps):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    out = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * (g * g)
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


def test_adam_matches_reference_exactly():
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(3)]
    lr = 0.01
    expected = _adam_reference(p0, grads, lr, 0.9, 0.999, 1e-8)
    opt = optim.adam(lr)
    params = {"p": p0}
    state = opt.init(params)
    for g, want in zip(grads, expected):
        params, state = opt.update({"p": g}, state, params)
        assert params["p"].dtype == f64
        np.testing.assert_array_equal(params["p"], want)


def test_adam_reference_other_hyperparameters():
    # not bit-exact in general: NumPy's power (used on the traced step count) can
    # differ from Python's ** in the last ulp, e.g. 0.99 ** np.int32(3) != 0.99 ** 3
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(3)]
    lr, b1, b2, eps = 0.05, 0.8, 0.99, 1e-7
    expected = _adam_reference(p0, grads, lr, b1, b2, eps)
    opt = optim.adam(lr, b1=b1, b2=b2, eps=eps)
    p, state = p0, opt.init(p0)
    for g, want in zip(grads, expected):
        p, state = opt.update(g, state, p)
        np.testing.assert_allclose(p, want, rtol=1e-14, atol=1e-15)


def test_sgd_and_momentum_match_reference():
    p0 = np.array([1.0, -1.0])
    grads = [np.array([0.5, 2.0]), np.array([-1.0, 0.25]), np.array([0.125, -0.5])]
    sgd = optim.sgd(0.1)
    mom = optim.momentum(0.1, beta=0.5)
    ps, ss = p0, sgd.init(p0)
    pm, sm = p0, mom.init(p0)
    want_s, want_m, vel = p0, p0, np.zeros(2)
    for g in grads:
        ps, ss = sgd.update(g, ss, ps)
        pm, sm = mom.update(g, sm, pm)
        want_s = want_s - 0.1 * g
        vel = 0.5 * vel + g
        want_m = want_m - 0.1 * vel
        np.testing.assert_array_equal(ps, want_s)
        np.testing.assert_array_equal(pm, want_m)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_float32_stays_float32(name):
    opt = OPTIMIZERS[name]()
    params = {"w": np.ones((2, 3), f32), "b": [np.zeros(3, f32)]}
    grads = {"w": np.full((2, 3), 0.5, f32), "b": [np.ones(3, f32)]}
    state = opt.init(params)
    for _ in range(3):
        params, state = opt.update(grads, state, params)
    assert params["w"].dtype == f32 and params["b"][0].dtype == f32
    for leaf in _leaves(state)[1:]:
        assert leaf.dtype == f32


def test_schedule_lr():
    opt = optim.sgd(lambda count: 0.1 / (1.0 + count))
    p, s = np.array([1.0], f32), None
    s = opt.init(p)
    p, s = opt.update(np.array([1.0], f32), s, p)
    p, s = opt.update(np.array([1.0], f32), s, p)
    assert p.dtype == f32
    np.testing.assert_allclose(p, [1.0 - 0.1 - 0.05], rtol=1e-6)


def _leaves(tree):
    from tracediff.pytree import flatten

    return flatten(tree)[0]


def _mlp_loss(params, x, y):
    h = np.tanh(x @ params["layers"][0]["w"] + params["layers"][0]["b"])
    out = h @ params["layers"][1]["w"] + params["layers"][1]["b"]
    return np.mean((out[:, 0] - y) ** 2)


def _mlp_problem(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 3)).astype(dtype)
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1] * x[:, 2]
    params = {
        "layers": [
            {"w": (0.5 * rng.standard_normal((3, 16))).astype(dtype), "b": np.zeros(16, dtype)},
            {"w": (0.5 * rng.standard_normal((16, 1))).astype(dtype), "b": np.zeros(1, dtype)},
        ]
    }
    return params, x, y.astype(dtype)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype", [f32, f64])
def test_inside_jit(name, dtype):
    opt = OPTIMIZERS[name]()
    vg = td.value_and_grad(_mlp_loss)

    def step(params, state, x, y):
        loss, grads = vg(params, x, y)
        params, state = opt.update(grads, state, params)
        return loss, params, state

    params, x, y = _mlp_problem(dtype)
    state = opt.init(params)
    jstep = td.jit(step, target="cpu")
    p_ref, s_ref = params, state
    losses = []
    for _ in range(30):
        loss, params, state = jstep(params, state, x, y)
        loss_ref, p_ref, s_ref = step(p_ref, s_ref, x, y)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0], losses
    assert int(state.count) == 30
    assert type(state) is type(opt.init(params))
    rtol = 2e-3 if dtype == f32 else 1e-9
    for a, b in zip(_leaves(params), _leaves(p_ref)):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)
    assert isinstance(params["layers"], list) and set(params["layers"][1]) == {"w", "b"}


def test_adam_jit_matches_eager_three_steps():
    opt = optim.adam(0.01)

    def step(params, state, grads):
        return opt.update(grads, state, params)

    rng = np.random.default_rng(2)
    params = {"a": rng.standard_normal(4), "b": (rng.standard_normal((2, 2)),)}
    grads = [{"a": rng.standard_normal(4), "b": (rng.standard_normal((2, 2)),)} for _ in range(3)]
    jstep = td.jit(step, target="cpu")
    pj, sj = params, opt.init(params)
    pe, se = params, opt.init(params)
    for g in grads:
        pj, sj = jstep(pj, sj, g)
        pe, se = step(pe, se, g)
    assert isinstance(pj["b"], tuple)
    for a, b in zip(_leaves(pj), _leaves(pe)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
