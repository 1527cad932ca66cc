"""td.custom_vjp: a user's derivative rule, under grad, grad of grad, jvp and jit."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import tracediff as td


@td.custom_vjp
def log1pexp(x):
    return np.log1p(np.exp(x))


def _log1pexp_fwd(x):
    return log1pexp(x), x


def _log1pexp_bwd(x, g):
    return (g / (1.0 + np.exp(-x)),)  # the logistic function: finite for every x


log1pexp.defvjp(_log1pexp_fwd, _log1pexp_bwd)


@functools.partial(td.custom_vjp, nondiff_argnums=(1,))
def clip_gradient(x, bound):
    return x


clip_gradient.defvjp(lambda x, bound: (x, None), lambda bound, res, g: (np.clip(g, -bound, bound),))


@td.custom_vjp
def newton_sqrt(a):
    """sqrt(a) by Newton's method: a loop whose derivative comes from the implicit function x*x = a."""
    x = a * 0.5 + 0.5
    k = 0
    while np.max(np.abs(x * x - a)) > 1e-13 * np.max(a) and k < 60:
        x = 0.5 * (x + a / x)
        k += 1
    return x


def _sqrt_fwd(a):
    x = newton_sqrt(a)
    return x, x


newton_sqrt.defvjp(_sqrt_fwd, lambda x, g: (g / (2.0 * x),))

X = np.array([-3.0, 0.0, 2.0, 40.0, 800.0])
TARGETS = ["interpret", "cpu"]


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


@pytest.mark.parametrize("target", TARGETS)
def test_rule_replaces_the_derivative(target):
    f = lambda x: np.sum(log1pexp(x) * 2.0)
    g = td.jit(td.grad(f), target=target)(X)
    np.testing.assert_allclose(g, 2.0 * _sigmoid(X), rtol=1e-13)  # the naive derivative is nan at 800
    v = td.jit(f, target=target)(X[:4])
    np.testing.assert_allclose(v, 2.0 * np.sum(np.log1p(np.exp(X[:4]))), rtol=1e-14)
    # second derivative through the rule, and forward mode (the transposed rule)
    h = td.jit(td.grad(lambda x: np.sum(td.grad(f)(x))), target=target)(X[:4])
    s = _sigmoid(X[:4])
    e = np.exp(-X[:4])
    np.testing.assert_allclose(h, 2.0 * e / (1.0 + e) ** 2, rtol=1e-12)
    _, t = td.jvp(f, (X[:4],), (np.ones(4),))
    np.testing.assert_allclose(t, 2.0 * np.sum(s), rtol=1e-13)
    td.check_grads(f, (X[:4],), order=2, modes=("rev",))


@pytest.mark.parametrize("target", TARGETS)
def test_nondiff_argument_and_clipping(target):
    f = lambda x: np.sum(clip_gradient(x, 1.5) * np.array([0.5, 1.0, 2.0, 3.0, -4.0]))
    g = td.jit(td.grad(f), target=target)(X)
    np.testing.assert_array_equal(g, [0.5, 1.0, 1.5, 1.5, -1.5])
    assert td.jit(f, target=target)(X) == pytest.approx(np.sum(X * [0.5, 1.0, 2.0, 3.0, -4.0]))


@pytest.mark.parametrize("target", TARGETS)
def test_implicit_rule_for_a_solver(target):
    a = np.array([0.25, 2.0, 9.0, 1e4])
    f = lambda a: np.sum(newton_sqrt(a) * np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_allclose(td.jit(f, target=target)(a), np.sum(np.sqrt(a) * [1, 2, 3, 4]), rtol=1e-14)
    g = td.jit(td.grad(f), target=target)(a)
    np.testing.assert_allclose(g, np.array([1.0, 2.0, 3.0, 4.0]) * 0.5 / np.sqrt(a), rtol=1e-13)
    # the rule is the derivative: the loop itself is never differentiated
    ir = td.make_ir(td.grad(f), a)
    assert "scan" not in str(ir)


def test_outside_transformations_it_is_the_function():
    np.testing.assert_array_equal(log1pexp(np.array([0.0, 1.0])), np.log1p(np.exp([0.0, 1.0])))


def test_misuse_raises_clear_errors():
    @td.custom_vjp
    def no_rule(x):
        return x * 2.0

    with pytest.raises(TypeError, match="defvjp"):
        td.grad(lambda x: np.sum(no_rule(x)))(X)

    @td.custom_vjp
    def bad(x, y):
        return x * y

    bad.defvjp(lambda x, y: (x * y, (x, y)), lambda res, g: (g * res[1],))  # one cotangent for two
    with pytest.raises(TypeError, match="2 cotangent"):
        td.grad(lambda x: np.sum(bad(x, x)))(X)

    @td.custom_vjp
    def wrong_shape(x):
        return x * 2.0

    wrong_shape.defvjp(lambda x: (x * 2.0, None), lambda res, g: (np.sum(g),))
    with pytest.raises(TypeError, match="shape"):
        td.grad(lambda x: np.sum(wrong_shape(x)))(X)

    def closure(w):
        @td.custom_vjp
        def scaled(x):
            return x * w  # w is traced by the outer grad, but not an argument

        scaled.defvjp(lambda x: (x * w, None), lambda res, g: (g,))
        return np.sum(scaled(X * w))

    with pytest.raises(td.TracerError, match="closure"):
        td.grad(closure)(np.float64(2.0))


@td.custom_jvp
def softplus(x):
    return np.log1p(np.exp(x))


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return softplus(x), t / (1.0 + np.exp(-x))


@functools.partial(td.custom_jvp, nondiff_argnums=(0,))
def scaled_tanh(k, x):
    return np.tanh(k * x)


@scaled_tanh.defjvp
def _scaled_tanh_jvp(k, primals, tangents):
    (x,), (t,) = primals, tangents
    y = scaled_tanh(k, x)
    return y, t * k * (1.0 - y * y)


@pytest.mark.parametrize("target", TARGETS)
def test_custom_jvp_in_both_modes(target):
    f = lambda x: np.sum(softplus(x) * 3.0)
    g = td.jit(td.grad(f), target=target)(X)  # reverse mode: the rule, transposed
    np.testing.assert_allclose(g, 3.0 * _sigmoid(X), rtol=1e-13)
    _, t = td.jvp(f, (X[:4],), (np.array([1.0, -2.0, 0.5, 0.0]),))
    np.testing.assert_allclose(t, 3.0 * np.sum(_sigmoid(X[:4]) * [1.0, -2.0, 0.5, 0.0]), rtol=1e-13)
    e = np.exp(-X[:4])
    h = td.jit(td.grad(lambda x: np.sum(td.grad(f)(x))), target=target)(X[:4])
    np.testing.assert_allclose(h, 3.0 * e / (1.0 + e) ** 2, rtol=1e-12)
    u = lambda x: np.sum(scaled_tanh(2.0, x) ** 2)
    td.check_grads(u, (X[:3],), order=2)
    np.testing.assert_allclose(
        td.jit(td.grad(u), target=target)(X[:3]),
        td.grad(lambda x: np.sum(np.tanh(2.0 * x) ** 2))(X[:3]),
        rtol=1e-13,
    )


def test_custom_jvp_misuse():
    @td.custom_jvp
    def no_rule(x):
        return x

    with pytest.raises(TypeError, match="defjvp"):
        td.grad(lambda x: np.sum(no_rule(x)))(X)

    @td.custom_jvp
    def bad(x):
        return x * 2.0

    bad.defjvp(lambda p, t: (p[0] * 2.0, np.sum(t[0])))
    with pytest.raises(TypeError, match="structure|shape"):
        td.grad(lambda x: np.sum(bad(x)))(X)


def _mlp_blocks(wrap, L=12, per=4):
    def block(h, Ws):
        for W in Ws:
            h = np.tanh(h @ W)
        return h

    def loss(Ws, x):
        h = x
        for k in range(0, L, per):
            h = wrap(block)(h, Ws[k : k + per])
        return np.sum(h * h)

    return loss


@pytest.mark.parametrize("policy", [None, "save_matmuls"])
def test_checkpoint_recomputes_instead_of_keeping(policy):
    r = np.random.default_rng(0)
    Ws = [r.standard_normal((16, 16)) / 4.0 for _ in range(12)]
    x = r.standard_normal((8, 16))
    plain = _mlp_blocks(lambda f: f)
    ckpt = _mlp_blocks(lambda f: td.checkpoint(f, policy=policy))
    want = td.grad(plain)(Ws, x)
    for g in (td.grad(ckpt)(Ws, x), td.jit(td.grad(ckpt))(Ws, x)):
        for a, b in zip(g, want):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    kept = {
        name: td.make_ir(td.grad(f), Ws, x, stage="optimized").stats[-1]["kept_bytes"]
        for name, f in (("plain", plain), ("ckpt", ckpt))
    }
    if policy is None:  # only the 3 blocks' inputs stay for the backward sweep, not 12 activations
        assert kept["ckpt"] == 3 * x.nbytes and kept["plain"] == 12 * x.nbytes, kept
    # the checkpointed function differentiates again, and as written outside transformations
    hv = td.grad(lambda x: np.sum(td.grad(ckpt, argnums=1)(Ws, x) * x))(x)
    np.testing.assert_allclose(
        hv, td.grad(lambda x: np.sum(td.grad(plain, argnums=1)(Ws, x) * x))(x), rtol=1e-11
    )
    assert ckpt(Ws, x) == plain(Ws, x)


def test_checkpoint_misuse():
    with pytest.raises(ValueError, match="policy"):
        td.checkpoint(np.sin, policy="everything")


def test_vjp_jvp_inside_another_transformation_keep_rules():
    """td.vjp/jvp/linearize re-staged under an outer transformation ran their
    optimized program, from which stop_gradient and custom rules are gone: the
    outer derivative was that of the plain function (a bug hunt)."""

    def f(x):
        return np.sum(x * td.stop_gradient(x))

    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(td.grad(lambda x: td.vjp(f, x)[0])(x), [1.0, 2.0])
    np.testing.assert_allclose(td.grad(lambda x: td.jvp(f, (x,), (np.ones(2),))[0])(x), [1.0, 2.0])
    np.testing.assert_allclose(td.jvp(lambda x: td.vjp(f, x)[1](1.0)[0], (x,), (np.ones(2),))[1], [0.0, 0.0])
    np.testing.assert_allclose(td.grad(lambda x: td.linearize(f, x)[0])(x), [1.0, 2.0])

    @td.custom_vjp
    def clip_grad(x):
        return x

    clip_grad.defvjp(lambda x: (x, None), lambda r, g: (np.clip(g, -0.5, 0.5),))
    z = np.array([0.1, -2.0, 3.0])
    np.testing.assert_allclose(
        td.grad(lambda x: td.vjp(lambda y: np.sum(clip_grad(y) ** 2), x)[0])(z), [0.2, -0.5, 0.5]
    )
