"""Region groups (backend/cpu/groups.py): regions sharing leading loops compile
to one loop nest, and values passed between them are scalars or small buffers
instead of arrays. Compiled results are checked against the interpreter, and
the big intermediates must be gone from the generated code."""

import re

import numpy as np
import pytest

import tracediff as td


def pairwise_kernel(P, w):  # W12: a Gaussian kernel summed over pairs of points
    d2 = np.sum((P[:, None, :] - P[None, :, :]) ** 2, axis=-1)
    return np.sum(w[:, None] * w[None, :] * np.exp(-d2 / 0.1))


def row_logsumexp(x, w):  # max, exp-sum and log per row: prefix (rows,)
    z = x * w[None, :]
    m = np.max(z, axis=1, keepdims=True)
    return np.sum(np.log(np.sum(np.exp(z - m), axis=1)) + m[:, 0])


def transposed_read(x, w):  # a member would read a group value at (i1, i0): separate nests
    y = np.exp(x[:24] * w[None, :])
    return np.sum(y.T * y) + np.sum(np.sum(y, axis=1) * w)


def prefix_reduction(x, w):  # a sum over the leading axis cannot feed the same nest
    s = np.sum(np.tanh(x), axis=0)
    return np.sum(np.sin(x) * s[None, :] * w[None, :])


def coulomb(q, r):  # charges over a distance matrix, with a mask on the diagonal
    n = q.shape[0]
    d = np.sqrt(np.sum((r[:, None, :] - r[None, :, :]) ** 2, axis=-1) + np.eye(n))
    return np.sum(q[:, None] * q[None, :] / d * (1.0 - np.eye(n)))


def inputs(name, rng, dt):
    n = 40
    if name in ("pairwise_kernel", "coulomb"):
        return rng.uniform(-1, 1, (n, 3)).astype(dt), rng.uniform(0.5, 1.5, n).astype(dt)
    return rng.normal(size=(n, 24)).astype(dt), rng.uniform(0.5, 1.5, 24).astype(dt)


PROGRAMS = [pairwise_kernel, row_logsumexp, transposed_read, prefix_reduction, coulomb]


@pytest.mark.parametrize("fn", PROGRAMS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_grouped_gradients_match_the_interpreter(fn, dt, rng):
    if fn is coulomb:  # (swap the argument roles: charges, positions)
        r, q = inputs(fn.__name__, rng, dt)
        args = (q, r)
    else:
        args = inputs(fn.__name__, rng, dt)
    f = td.jit(td.value_and_grad(fn, argnums=(0, 1)), eager_first=False)
    v, g = f(*args)
    v0, g0 = td.value_and_grad(fn, argnums=(0, 1))(*args)
    tol = 2e-5 if dt == np.float32 else 1e-12
    np.testing.assert_allclose(v, v0, rtol=tol)
    for a, b in zip(g, g0):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.max(np.abs(b)))
    if dt == np.float64:
        td.check_grads(fn, args, order=1, modes=("rev",))


def _source(f, *args):
    f(*args)
    (entry,) = f.cache.values()
    return entry.runner.source


def test_pairwise_kernel_keeps_no_n_by_n_array(rng):
    n = 300
    P = rng.uniform(0, 1, (n, 2)).astype(np.float32)
    w = rng.uniform(0, 1, n).astype(np.float32)
    src = _source(td.jit(td.grad(pairwise_kernel, argnums=(0, 1)), eager_first=False), P, w)
    # no N x N (or N x N x 2) array is allocated: the three regions are one nest
    assert not re.search(rf"\(\(?{n}, {n}", src), src
    assert src.count("for i0 in") == 1 + src.count("def chunk") or "prange" in src


def test_transposed_read_falls_back_to_separate_nests(rng):
    x, w = inputs("transposed_read", rng, np.float64)
    src = _source(td.jit(td.grad(transposed_read, argnums=(0, 1)), eager_first=False), x, w)
    assert re.search(r"np\.empty\(\(24, 24\)", src)  # y is materialized for the transposed read


def _picked_logit(A, B, C, b, xi, yi):  # (h - max) picked at the label: one example
    h = xi[None] @ A @ B @ C + b
    m = np.max(h, axis=1, keepdims=True)
    return -np.sum((h - m)[np.arange(1), yi[None]])


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_separate_nests_keep_what_a_later_member_reads(dt, rng):
    """A group written as separate nests (a member reads a group value at another
    index) is one equation to the walk: an input it reads last was dead after it,
    and its first nest stored its output into the scatter result that its last
    nest then read. Per-example gradients of a vmapped gradient came out wrong."""
    A, B, C = (rng.standard_normal((2, 2)).astype(dt) for _ in range(3))
    b = rng.standard_normal(2).astype(dt)
    x, y = rng.standard_normal((3, 2)).astype(dt), np.array([1, 0, 1])
    per_example = td.vmap(td.grad(_picked_logit), in_axes=(None,) * 4 + (0, 0))
    got = td.jit(per_example, eager_first=False)(A, B, C, b, x, y)
    want = np.stack([td.grad(_picked_logit)(A, B, C, b, x[i], y[i]) for i in range(3)])
    tol = 1e-5 if dt == np.float32 else 1e-13
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_row_sums_fold_in_four_chains_only_when_widened(dt, rng):
    """A float32 row sum accumulates in float64: after the row's loop it is folded in
    four interleaved chains (vm.wide_sum), which moves the float64 sum by ~1e-16 of
    it, below the float32 rounding; a float64 sum keeps its in-order fold."""

    def f(x, w):
        return np.sum(np.log(np.sum(np.exp(x * w[None, :]), axis=1)))

    x, w = rng.normal(size=(50, 300)).astype(dt), rng.uniform(0.5, 1.5, 300).astype(dt)
    g = td.jit(td.value_and_grad(f, argnums=(0, 1)), eager_first=False)
    v, (gx, gw) = g(x, w)
    v0, (gx0, gw0) = td.value_and_grad(f, argnums=(0, 1))(x, w)
    tol = 2e-6 if dt == np.float32 else 1e-13
    np.testing.assert_allclose(v, v0, rtol=tol)
    np.testing.assert_allclose(gx, gx0, rtol=tol, atol=tol * np.abs(gx0).max())
    np.testing.assert_allclose(gw, gw0, rtol=tol, atol=tol * np.abs(gw0).max())
    src = _source(g, x, w)
    assert ("vm.wide_sum(" in src) == (dt == np.float32), src
    # the fold itself: float32 summands, float64 sums, rounded once
    buf = rng.normal(size=1001).astype(np.float32).astype(np.float64)
    from tracediff.backend import vmath as vm

    for lo, hi in [(0, 1001), (3, 998), (5, 7), (4, 4)]:
        assert np.float32(vm.wide_sum(buf, lo, hi)) == np.float32(np.sum(buf[lo:hi]))
