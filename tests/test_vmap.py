"""vmap, batched Jacobians and Hessians, static arguments across transformations,
cached vjp/jvp/linearize, and every transformation composed with the others."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from test_prims import SPECS

import tracediff as td
from tracediff import batching
from tracediff.core import REGISTRY

B = 3
F64 = np.dtype(np.float64)


def _members(spec, k):
    rng = np.random.default_rng(zlib.crc32(f"{spec.prim}-{k}".encode()))
    return [spec.args(rng, F64, spec.shapes[0]) for _ in range(B)]


def _stack(members):
    return [np.stack([m[i] for m in members]) for i in range(len(members[0]))]


def _close(got, want, **tol):
    g, w = td.pytree.flatten(got)[0], td.pytree.flatten(want)[0]
    assert len(g) == len(w)
    for a, b in zip(g, w):
        assert np.shape(a) == np.shape(b)
        np.testing.assert_allclose(a, b, **(tol or dict(rtol=1e-10, atol=1e-12)))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_primitive_has_a_batching_rule(name):
    assert REGISTRY[name].batch is not None, f"{name} has no batching rule"


SPEC_IDS = [f"{s.prim}-{k}" for k, s in enumerate(SPECS)]


@pytest.mark.parametrize("k", range(len(SPECS)), ids=SPEC_IDS)
def test_batching_rule_matches_a_loop(k):
    """vmap of each registry program (and of its value and gradient) equals a Python
    loop over the members of the batch, run by plain NumPy."""
    spec = SPECS[k]
    members = _members(spec, k)
    stacked = _stack(members)
    want = np.stack([np.asarray(spec.fn(*m)) for m in members])
    _close(td.vmap(spec.fn)(*stacked), want)
    out = np.asarray(spec.fn(*members[0]))
    if not spec.diff or out.dtype.kind != "f":
        return
    w = np.random.default_rng(1).standard_normal(out.shape)
    nums = tuple(range(len(members[0])))
    vg = td.value_and_grad(lambda *a: np.sum(spec.fn(*a) * w), argnums=nums)
    want = [vg(*m) for m in members]
    want = (np.stack([v for v, _ in want]), tuple(np.stack([g[i] for _, g in want]) for i in nums))
    _close(td.vmap(vg)(*stacked), want, rtol=1e-9, atol=1e-11)  # vmap . grad
    # grad . vmap: the gradient of the batch's total is each member's gradient
    total = td.grad(lambda *a: np.sum(td.vmap(lambda *b: np.sum(spec.fn(*b) * w))(*a)), argnums=nums)
    _close(total(*stacked), want[1], rtol=1e-9, atol=1e-11)


# --- in_axes / out_axes / pytrees / errors --------------------------------------------------


def test_axes_pytrees_and_keywords():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((4, 5)), rng.standard_normal(4)

    def f(x, y, p):
        return {"a": np.tanh(x) * y, "b": np.sum(x) * p["s"]}

    p = {"s": np.arange(5.0)}
    got = td.vmap(f, in_axes=(1, None, 0))(x, y, p)
    want = [f(x[:, j], y, {"s": p["s"][j]}) for j in range(5)]
    np.testing.assert_allclose(got["a"], np.stack([w["a"] for w in want]))
    np.testing.assert_allclose(got["b"], np.stack([w["b"] for w in want]))
    # out_axes: the batch last; nested vmap (outer product)
    got = td.vmap(lambda x: x * 2.0, out_axes=1)(x)
    np.testing.assert_allclose(got, (x * 2.0).T)
    outer = td.vmap(td.vmap(lambda a, b: a * b, in_axes=(None, 0)), in_axes=(0, None))(x[0], y)
    np.testing.assert_allclose(outer, np.outer(x[0], y))
    # an output the same for every member is broadcast over the batch
    np.testing.assert_allclose(td.vmap(lambda a, b: b * 2.0, in_axes=(0, None))(y, 3.0), np.full(4, 6.0))
    # keyword arguments map over axis 0
    np.testing.assert_allclose(td.vmap(lambda a, *, b: a + b)(y, b=y), 2 * y)
    # axes as nested as the arguments, dicts included (a prefix of the pytree, as in JAX)
    params = {"w": rng.standard_normal((5, 2)), "b": rng.standard_normal((4, 2))}

    def layer(p, x):
        return np.tanh(x @ p["w"] + p["b"])

    got = td.vmap(layer, in_axes=({"w": None, "b": 0}, 0))(params, x)
    want = np.stack([layer({"w": params["w"], "b": params["b"][i]}, x[i]) for i in range(4)])
    np.testing.assert_allclose(got, want)
    got = td.vmap(lambda x: {"a": x * 2.0, "b": np.sum(x)}, out_axes={"a": 1, "b": 0})(x)
    np.testing.assert_allclose(got["a"], (x * 2.0).T)
    np.testing.assert_allclose(got["b"], x.sum(axis=1))
    with pytest.raises(ValueError, match=r"keys \['w'\] do not match a dict with the keys \['b', 'w'\]"):
        td.vmap(layer, in_axes=({"w": None}, 0))(params, x)


def test_vmap_errors_name_the_argument():
    x = np.ones((3, 2))
    with pytest.raises(ValueError, match="4 members along axis 0, an earlier argument 3"):
        td.vmap(lambda a, b: a + b[:2])(x, np.ones((4, 2)))
    with pytest.raises(ValueError, match="scalar .* no axis 0"):
        td.vmap(lambda a, s: a * s)(x, 2.0)
    with pytest.raises(ValueError, match="in_axes 2 is out of range"):
        td.vmap(lambda a: a, in_axes=2)(x)
    with pytest.raises(ValueError, match="depends on the batched inputs"):
        td.vmap(lambda a: a * 2.0, out_axes=None)(x)
    with pytest.raises(ValueError, match="in_axes has 1 entries"):
        td.vmap(lambda a, b: a, in_axes=(0,))(x, x)
    with pytest.raises(ValueError, match="no argument .* is mapped"):
        td.vmap(lambda a: a, in_axes=None)(x)


def _uses_fallback(fn, *args):
    calls = []
    orig = batching._loop_over_batch

    def spy(*a, **k):
        calls.append(1)
        return orig(*a, **k)

    batching._loop_over_batch = spy
    try:
        td.make_ir(fn, *args)
    finally:
        batching._loop_over_batch = orig
    return bool(calls)


def _while(x):
    s, k = x * 1.0, 0
    while np.sum(s * s) > 0.5 and k < 20:
        s = s * 0.8
        k += 1
    return s


def test_while_loops_batch_per_member():
    """A while whose trip count differs per member runs until every member is done,
    each keeping its own carry; its gradient (a tape whose length differs per member)
    falls back to a loop over the members, with the same numbers."""
    X = np.random.default_rng(3).standard_normal((5, 3)) * np.array([[0.1], [1], [2], [0.3], [3]])
    assert not _uses_fallback(td.vmap(_while), X)
    np.testing.assert_allclose(td.vmap(_while)(X), np.stack([_while(x) for x in X]))
    g = td.grad(lambda x: np.sum(_while(x) ** 2))
    assert _uses_fallback(td.vmap(g), X)
    want = np.stack([g(x) for x in X])
    np.testing.assert_allclose(td.vmap(g)(X), want)
    np.testing.assert_allclose(td.jit(td.vmap(g))(X), want)


# --- compositions ----------------------------------------------------------------------------


@td.custom_vjp
def clip_gradient(x, lo, hi):
    return x


clip_gradient.defvjp(lambda x, lo, hi: (x, (lo, hi)), lambda res, g: (np.clip(g, res[0], res[1]), None, None))


@td.custom_vjp
def log1pexp(x):
    return np.log1p(np.exp(x))


log1pexp.defvjp(lambda x: (log1pexp(x), x), lambda x, g: (g / (1.0 + np.exp(-x)),))


def _mlp(x, w):
    h = np.tanh(w[:3, :] @ x + w[3, :])
    return np.sum(log1pexp(h) * x) + np.sum(clip_gradient(h * 4.0, -0.5, 0.5) ** 2)


def _branchy(x, w):
    if np.sum(x * w[0]) > 0:
        y = np.sin(x) * w[1]
    else:
        y = x**3 * w[2]
    for i in range(12):
        y = np.tanh(y * 0.9 + w[0, i % 3] * 0.1)
    return np.sum(td.checkpoint(lambda z: np.exp(z) * z)(y))


@pytest.mark.parametrize("f", [_mlp, _branchy], ids=["mlp-custom-vjp", "branches-loop-checkpoint"])
def test_every_composition(f):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((4, 3))
    w = rng.standard_normal((4, 3)) * 0.7
    g = td.grad(f)
    want = np.stack([g(x, w) for x in X])
    vg = td.vmap(g, in_axes=(0, None))
    np.testing.assert_allclose(vg(X, w), want, rtol=1e-10)  # vmap . grad
    np.testing.assert_allclose(td.jit(vg)(X, w), want, rtol=1e-10)  # jit . vmap . grad
    gv = td.grad(lambda X, w: np.sum(td.vmap(f, in_axes=(0, None))(X, w)))
    np.testing.assert_allclose(gv(X, w), want, rtol=1e-10)  # grad . vmap
    # gradient of a batch with respect to the shared argument: the sum over members
    gw = td.grad(lambda X, w: np.sum(td.vmap(f, in_axes=(0, None))(X, w)), argnums=1)(X, w)
    np.testing.assert_allclose(gw, sum(td.grad(f, argnums=1)(x, w) for x in X), rtol=1e-10)
    # jvp . grad (a Hessian-vector product), batched over directions: the Hessian
    x = X[0]
    H = td.hessian(f)(x, w)
    hv = td.jvp(lambda x: g(x, w), (x,), (np.ones(3),))[1]
    np.testing.assert_allclose(hv, H @ np.ones(3), rtol=1e-9)
    rows = td.vmap(lambda t: td.jvp(lambda x: g(x, w), (x,), (t,))[1])(np.eye(3))
    np.testing.assert_allclose(rows, H, rtol=1e-9)
    if f is _mlp:  # (compiling _branchy's Hessian, ten nested loops, takes Numba a minute)
        np.testing.assert_allclose(td.jit(td.hessian(f))(x, w), H, rtol=1e-10)
    np.testing.assert_allclose(td.jacrev(g)(x, w), H, rtol=1e-9)
    if f is _branchy:  # (the clipped gradient of _mlp is not its derivative, on purpose)
        td.check_grads(lambda x: td.vmap(f, in_axes=(0, None))(x, w), (X,), order=2)
    # vmap . vmap
    XX = np.stack([X, X * 0.5])
    np.testing.assert_allclose(
        td.vmap(td.vmap(f, in_axes=(0, None)), in_axes=(0, None))(XX, w),
        np.array([[f(x, w) for x in Y] for Y in XX]),
        rtol=1e-12,
    )


# --- Jacobians and Hessians --------------------------------------------------------------------


def _fd_jacobian(f, x, eps=1e-6):
    cols = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = eps
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * eps))
    return np.stack(cols, axis=-1).reshape(np.shape(f(x)) + x.shape)


def test_jacobians_are_one_program_each():
    """No loop over rows or columns: the program's size does not grow with n."""

    def f(x):
        return np.tanh(x[:, None] * x[None, :]).sum(axis=0) * np.sin(x)

    def size(jac, n):
        return len(td.make_ir(jac(f), np.linspace(0.1, 1.0, n), stage="optimized").eqns)

    for jac in (td.jacrev, td.jacfwd, td.hessian):
        fn = jac if jac is not td.hessian else (lambda f: td.hessian(lambda x: np.sum(f(x))))
        assert size(fn, 4) == size(fn, 40)
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    g = lambda x: np.sin(x) * np.sum(x**2)  # noqa: E731
    for jac in (td.jacrev, td.jacfwd):
        np.testing.assert_allclose(jac(g)(x), _fd_jacobian(g, x), rtol=1e-7, atol=1e-8)
    h = lambda x: np.sum(np.sin(x) ** 2 * x[0])  # noqa: E731
    np.testing.assert_allclose(td.hessian(h)(x), _fd_jacobian(td.grad(h), x), rtol=1e-7, atol=1e-8)


def test_jacobian_structures():
    x, y = np.array([0.5, -1.0, 2.0]), np.array([[1.0, 2.0], [3.0, 4.0]])

    def f(x, y):
        return {"p": np.sin(x) * np.sum(y), "q": np.sum(x) * y}

    for jac in (td.jacrev, td.jacfwd):
        J = jac(f, argnums=(0, 1))(x, y)
        assert J["p"][0].shape == (3, 3) and J["p"][1].shape == (3, 2, 2)
        assert J["q"][0].shape == (2, 2, 3) and J["q"][1].shape == (2, 2, 2, 2)
        np.testing.assert_allclose(J["p"][0], np.diag(np.cos(x) * np.sum(y)))
        np.testing.assert_allclose(J["q"][1], np.sum(x) * np.eye(4).reshape(2, 2, 2, 2))
        J1, aux = jac(lambda x: (np.sin(x), np.sum(x)), has_aux=True)(x)
        np.testing.assert_allclose(J1, np.diag(np.cos(x)))
        assert aux == pytest.approx(np.sum(x))
    H = td.hessian(lambda x, y: np.sum(x**2) * np.sum(y), argnums=(0, 1))(x, y)
    assert H[0][0].shape == (3, 3) and H[0][1].shape == (3, 2, 2) and H[1][1].shape == (2, 2, 2, 2)
    np.testing.assert_allclose(H[0][0], 2 * np.sum(y) * np.eye(3))
    np.testing.assert_allclose(H[0][1], np.broadcast_to((2 * x)[:, None, None], (3, 2, 2)))


# --- static arguments compose ---------------------------------------------------------------


def _scaled(x, s):
    if s > 0:  # Python control flow on a static argument
        return np.sum(x**2) * s
    return np.sum(x)


def test_static_arguments_compose():
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(td.jit(td.grad(_scaled), static_argnums=1)(x, 2.0), 4.0 * x)
    np.testing.assert_allclose(td.jit(td.grad(_scaled), static_argnums=1)(x, -1.0), np.ones(2))
    np.testing.assert_allclose(td.grad(_scaled, static_argnums=1)(x, 3.0), 6.0 * x)
    np.testing.assert_allclose(td.grad(td.jit(_scaled, static_argnums=1), static_argnums=1)(x, 2.0), 4.0 * x)
    with pytest.raises(td.TracediffError, match="static argument 1 .* received a traced value"):
        td.grad(td.jit(_scaled, static_argnums=1))(x, 2.0)
    np.testing.assert_allclose(td.hessian(_scaled, static_argnums=1)(x, 2.0), 4.0 * np.eye(2))
    np.testing.assert_allclose(td.jacfwd(td.grad(_scaled), static_argnums=1)(x, 2.0), 4.0 * np.eye(2))
    X = np.stack([x, 2 * x])
    np.testing.assert_allclose(
        td.vmap(td.grad(_scaled), in_axes=(0, None), static_argnums=1)(X, 2.0), 4.0 * X
    )
    np.testing.assert_allclose(td.jit(td.value_and_grad(_scaled), static_argnums=(1,))(x, 0.5)[1], 1.0 * x)

    # a value static for the outer transformation reaches an inner one through user code
    def outer(x, s):
        return td.grad(_scaled)(x, s) * s

    np.testing.assert_allclose(td.jit(outer, static_argnums=1)(x, 2.0), 8.0 * x)


# --- vjp, jvp, linearize: traced once per signature -------------------------------------------


def test_vjp_jvp_linearize_trace_once():
    traced = []

    def f(x, y):
        traced.append(1)
        return np.sin(x) * y, np.sum(x * y)

    x, y = np.array([0.5, 1.0, -2.0]), np.array([2.0, 3.0, 4.0])
    (o, s), vjp_fn = td.vjp(f, x, y)
    gx, gy = vjp_fn((np.ones(3), 1.0))
    np.testing.assert_allclose(gx, np.cos(x) * y + y)
    np.testing.assert_allclose(gy, np.sin(x) + x)
    n = len(traced)
    for k in range(3):
        (o, s), vjp_fn = td.vjp(f, x * k, y)
        vjp_fn((np.ones(3), 2.0))
        vjp_fn((np.zeros(3), 1.0))
    assert len(traced) == n  # no re-trace, for new points and new cotangents
    (o, s), (to, ts) = td.jvp(f, (x, y), (np.ones(3), np.zeros(3)))
    np.testing.assert_allclose(to, np.cos(x) * y)
    np.testing.assert_allclose(ts, np.sum(y))
    n = len(traced)
    td.jvp(f, (y, x), (x, y))
    assert len(traced) == n
    (o, s), f_jvp = td.linearize(f, x, y)
    np.testing.assert_allclose(o, np.sin(x) * y)
    n = len(traced)
    for t in (np.ones(3), np.arange(3.0)):
        to, ts = f_jvp(t, np.zeros(3))
        np.testing.assert_allclose(to, np.cos(x) * y * t)
        np.testing.assert_allclose(ts, np.sum(y * t))
    td.linearize(f, x + 1.0, y)[1](x, y)
    assert len(traced) == n
    with pytest.raises(ValueError, match="does not match its primal"):
        f_jvp(np.ones(2), np.zeros(3))
    # inside another transformation: the same programs, re-staged
    g = td.grad(lambda x: np.sum(td.vjp(f, x, y)[1]((np.ones(3), 1.0))[0] ** 2))(x)
    np.testing.assert_allclose(g, td.grad(lambda x: np.sum((np.cos(x) * y + y) ** 2))(x))


# --- batched programs on every target: tests/cuda_sim.py runs these with target="cuda" ----------


def _batched_cases():
    rng = np.random.default_rng(11)
    X, w = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)) * 0.7
    spread = X * np.array([[0.1], [1.0], [2.0], [3.0]])
    return [
        ("vmap-grad-custom-vjp", td.vmap(td.value_and_grad(_mlp), in_axes=(0, None)), (X, w)),
        ("vmap-grad-branches-loop", td.vmap(td.grad(_branchy), in_axes=(0, None)), (X, w)),
        ("vmap-while-per-member", td.vmap(_while), (spread,)),
        ("hessian", td.hessian(_mlp), (X[0], w)),
        (
            "jacfwd-jacrev",
            lambda x: (td.jacfwd(np.sin)(x), td.jacrev(lambda z: np.cumsum(z) * z)(x)),
            (X[0],),
        ),
    ]


BATCHED_CASES = _batched_cases()


@pytest.mark.parametrize("k", range(len(BATCHED_CASES)), ids=[c[0] for c in BATCHED_CASES])
def test_batched_programs_compile(k):
    """Compiled (CPU) batched programs equal the interpreted unoptimized ones."""
    _, fn, args = BATCHED_CASES[k]
    _close(td.jit(fn)(*args), td.jit(fn, target="interpret")(*args), rtol=1e-11, atol=1e-12)


# --- members that take different paths ----------------------------------------------------


def _prefix_sum(x):
    i, s = 0, 0.0
    while i < x.shape[0] and x[i] > 0:  # `and` short-circuits: x[n] is never read
        s = s + x[i]
        i += 1
    return s


def _pick(x, k):
    if k < x.shape[0]:  # the member whose k is out of range takes the other branch
        return x[k] * 2.0
    return np.sum(x)


def test_paths_not_taken_do_not_raise():
    """An index a member's own path rules out is not checked for that member: a
    `while` stopped at the end of the array, a branch not taken."""
    X = np.array([[1.0, 2.0, -1.0], [1.0, 1.0, 1.0], [-1.0, 3.0, 3.0]])
    assert _prefix_sum(X[1]) == 3.0
    np.testing.assert_allclose(td.jit(_prefix_sum, target="interpret")(X[1]), 3.0)
    np.testing.assert_allclose(td.vmap(_prefix_sum)(X), [_prefix_sum(x) for x in X])
    K = np.array([0, 3, 1])
    np.testing.assert_allclose(td.vmap(_pick)(X, K), [_pick(x, k) for x, k in zip(X, K)])
    np.testing.assert_allclose(td.jit(td.vmap(_pick))(X, K), [_pick(x, k) for x, k in zip(X, K)])
    # a member whose own path reads out of range still raises
    with pytest.raises(IndexError, match="out of bounds"):
        td.vmap(_pick)(X, np.array([0, -5, 1]))
    g = td.vmap(td.grad(_prefix_sum))(X)
    np.testing.assert_allclose(g, [td.grad(_prefix_sum)(x) for x in X])


def _sqrt_or_identity(x):
    if x > 0:
        return np.sqrt(x)
    return x * 1.0


def _sqrt_steps(x):
    while x > 1.0:
        x = np.sqrt(x - 1.0)  # NaN for a member that is done (x <= 1), were it run
    return x


@pytest.mark.parametrize("f", [_sqrt_or_identity, _sqrt_steps], ids=["cond", "while"])
def test_gradient_of_a_batch_ignores_paths_not_taken(f):
    """The derivative of the path a member did not take (sqrt at x <= 0) never
    reaches its gradient, in either order of grad and vmap."""
    X = np.array([5.0, 0.5, -1.0, 2.0])
    want = [td.grad(f)(x) for x in X]
    assert np.all(np.isfinite(want))
    np.testing.assert_allclose(td.vmap(td.grad(f))(X), want)
    grad_of_batch = td.grad(lambda X: np.sum(td.vmap(f)(X)))
    np.testing.assert_allclose(grad_of_batch(X), want)
    np.testing.assert_allclose(td.jit(grad_of_batch)(X), want)

    # forward mode of the batch: the transpose of the reverse (ad.jvp_ir) must drop
    # the path not taken too (it gave NaN: a tangent masked before the derivative)
    T = np.ones_like(X)
    np.testing.assert_allclose(td.jvp(td.vmap(f), (X,), (T,))[1], want)
    np.testing.assert_allclose(td.jacfwd(td.vmap(f))(X), np.diag(want))
    np.testing.assert_allclose(td.jit(lambda X, T: td.jvp(td.vmap(f), (X,), (T,))[1])(X, T), want)


def test_forward_mode_of_a_batch_with_an_in_place_branch():
    def f(x):
        y = np.zeros(2)
        if x[0] > 0:
            y[0] = 1.0 / x[0]
        else:
            y[1] = x[1]
        return np.sum(y)

    X = np.array([[2.0, 1.0], [0.0, 3.0]])
    want = np.array([[-0.25, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(td.jacfwd(td.vmap(f))(X).sum(axis=0), want)
    np.testing.assert_allclose(td.jvp(td.vmap(f), (X,), (np.ones_like(X),))[1], want.sum(axis=1))


def test_concatenated_transposes_compile():
    """np.concatenate of transposed parts is of any layout in Numba: its flat view
    failed to type (a raw Numba NotImplementedError), and jit(vmap) of a vector built
    with np.array([p[1], p[0]]) makes that pattern (a bug hunt)."""
    a, b = np.arange(6.0).reshape(2, 3), np.arange(6.0, 12.0).reshape(2, 3)

    def cat(a, b):
        return np.concatenate([a.T, b.T], axis=1) * 2.0

    np.testing.assert_array_equal(td.jit(cat, eager_first=False)(a, b), cat(a, b))
    p = np.random.default_rng(3).standard_normal((4, 2))
    swap = td.jit(td.vmap(lambda q: np.array([q[1], q[0]]) * 2.0), eager_first=False)
    np.testing.assert_array_equal(swap(p), p[:, ::-1] * 2.0)
