"""Small compiled calls: the gradient of slices as scatter stores
(backend/cpu/scatter.py), results the caller allocates (CpuWriter.out_args), and
a transformed function calling its newest fast path directly (`specialize`).
Compiled results are checked against the interpreter and finite differences,
the generated code for the loops and allocations it should (not) have."""

import inspect
import pickle
import re

import numpy as np
import pytest

import tracediff as td


def rosenbrock(x):  # W3
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def laplacian(x):  # three slices: three terms added into each element
    return np.sum(np.tanh(x[2:] - 2.0 * x[1:-1] + x[:-2]) ** 2)


def strided(x):  # slices with steps
    return np.sum(np.sin(x[::2]) * np.cos(x[1::2])) + np.sum(x[1::3] ** 3)


def rows(x):  # a 2-D stencil over the first axis and one over the second
    return np.sum((x[1:, :] - x[:-1, :]) ** 2) + np.sum(np.exp(x[:, 1:] * x[:, :-1]))


def one_slice(x):
    return np.sum(x[3:] ** 2)


PROGRAMS = [rosenbrock, laplacian, strided, rows, one_slice]


def _shape(fn, n):
    return (n, 7) if fn is rows else (n,)


def _source(f, *args):
    f(*args)
    key, _ = f._key(args, {})
    return f.cache[key].runner.source


@pytest.mark.parametrize("fn", PROGRAMS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_slice_gradients_match_the_interpreter(fn, dt, rng):
    x = rng.uniform(-1, 1, _shape(fn, 16)).astype(dt)
    f = td.jit(td.value_and_grad(fn), eager_first=False)
    v, g = f(x)
    v0, g0 = td.value_and_grad(fn)(x)
    tol = 2e-6 if dt == np.float32 else 1e-14
    np.testing.assert_allclose(v, v0, rtol=tol)
    np.testing.assert_allclose(g, g0, rtol=tol, atol=tol * np.max(np.abs(g0)))
    assert g.dtype == dt and g.shape == x.shape
    if dt == np.float64:
        td.check_grads(fn, (x,), order=1, modes=("rev",))


@pytest.mark.parametrize("fn", PROGRAMS, ids=lambda f: f.__name__)
def test_slice_gradients_are_one_loop_into_one_array(fn, rng):
    x = rng.uniform(-1, 1, _shape(fn, 16))
    src = _source(td.jit(td.grad(fn), eager_first=False), x)
    kernel = src[src.index("def kernel") :]
    loops = {rosenbrock: 1, laplacian: 1, strided: 2, one_slice: 1}  # one per slice shape
    if fn in loops:  # (rows: one nest per stencil's axes)
        assert kernel.count("for i0 in") == loops[fn], kernel
    assert " += " in kernel  # the cotangents are added in where they belong
    assert "np.zeros" not in kernel and "np.empty" not in kernel, kernel  # the caller's array
    assert re.search(r"def kernel\(\w+, \w+\)", kernel)  # the input, the gradient passed in


def test_large_slice_gradients_stay_parallel(rng):
    x = rng.uniform(-1, 1, 3_000_000)
    f = td.jit(td.grad(laplacian), eager_first=False)
    src = _source(f, x)
    assert "prange" in src  # not turned into a serial loop of scatter stores
    np.testing.assert_allclose(f(x), td.grad(laplacian)(x), rtol=1e-12, atol=1e-13)


def test_results_passed_in_or_returned(rng):
    def many(x, y):
        s = np.sum(x * y)
        big = np.repeat(x, 3000)  # 48,000 float64: small, passed in
        return s, x, 2.0 * y, big, 2.0 * y + 0.0, np.zeros(3), s * x

    x, y = rng.normal(size=16), rng.normal(size=16)
    f = td.jit(many, eager_first=False)
    want = many(x, y)
    for _ in range(3):  # the general path, then the fast one
        got = f(x, y)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-15)
            assert np.shape(a) == np.shape(b)
    got = f(x, y)
    assert got[2] is not f(x, y)[2]  # every call gets fresh arrays


def test_large_results_are_allocated_by_the_kernel(rng):
    x = rng.normal(size=1_000_000)  # 8 MB: Numba allocates it (huge pages)
    f = td.jit(lambda x: np.tanh(x), eager_first=False)
    src = _source(f, x)
    assert "advise_huge_pages" in src[src.index("def kernel") :]
    np.testing.assert_allclose(f(x), np.tanh(x), rtol=1e-15)


def test_fast_call_keeps_the_object_and_its_signature(rng):
    def loss(w, x):
        return np.sum(np.tanh(x @ w) ** 2)

    w, x = rng.normal(size=3), rng.normal(size=(5, 3))
    f = td.jit(td.grad(loss))
    want = td.grad(loss)(w, x)
    for _ in range(3):
        np.testing.assert_allclose(f(w, x), want, rtol=1e-14)
    assert type(f) is type(td.jit(td.grad(loss)))
    assert list(inspect.signature(f).parameters) == ["w", "x"]
    np.testing.assert_allclose(
        pickle.loads(pickle.dumps(td.jit(td.grad(rosenbrock))))(w), td.grad(rosenbrock)(w)
    )
    np.testing.assert_allclose(f(w, x=x), want, rtol=1e-14)  # keywords: the general call
    with pytest.raises(TypeError):
        f(w)


def test_fast_call_misses_go_to_the_general_call(rng):
    f = td.jit(td.grad(rosenbrock), eager_first=False)
    x = rng.uniform(-1, 1, 16)
    np.testing.assert_allclose(f(x), td.grad(rosenbrock)(x))
    others = [
        x.astype(np.float32),  # another dtype
        rng.uniform(-1, 1, 32)[::2],  # not contiguous, same length
        rng.uniform(-1, 1, 17),  # another length
        rng.uniform(-1, 1, (16, 2)),  # same length, two axes
        np.asfortranarray(rng.uniform(-1, 1, (16, 1)))[:, 0],  # a view, contiguous
    ]
    for y in others:
        want = td.grad(rosenbrock)(np.asarray(y))
        got = f(y)
        assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=2e-6 if want.dtype == np.float32 else 1e-14)
        np.testing.assert_allclose(f(x), td.grad(rosenbrock)(x))  # and back
    with pytest.raises(TypeError):  # a list is a pytree of 16 scalars: x[1:] is a list
        f(list(x))
    np.testing.assert_allclose(f(x), td.grad(rosenbrock)(x))


def test_scalar_and_python_float_arguments(rng):
    def loss(x, a, b):
        return np.sum((x[1:] - a * x[:-1]) ** 2) * b

    x = rng.normal(size=10)
    f = td.jit(td.grad(loss, argnums=(0, 1)), eager_first=False)
    for a, b in [(0.5, 2.0), (np.float64(0.25), 3.0), (np.array(0.75), 1.5)]:
        for _ in range(2):
            got = f(x, a, b)
            want = td.grad(loss, argnums=(0, 1))(x, a, b)
            np.testing.assert_allclose(got[0], want[0], rtol=1e-14)
            np.testing.assert_allclose(got[1], want[1], rtol=1e-14)


def heads(Q, K, V):  # W13's pattern: a product per slice of a stack
    loss = 0.0
    for h in range(Q.shape[0]):
        S = Q[h] @ K[h].T
        loss = loss + np.sum(np.tanh(S) @ V[h])
    return loss


def some_heads(Q, K, V):  # slices 0 and 2 only: the rest of each gradient is zeros
    return np.sum((Q[0] @ K[0].T) ** 2) + np.sum(np.sin(Q[2] @ K[2].T) @ V[2])


def plain_slices(Q, K, V):  # values placed that are not products
    return np.sum(np.sin(Q[1]) * K[1]) + np.sum(np.cos(Q[0]) * V[0]) + np.sum(K[0] * V[1])


@pytest.mark.parametrize("fn", [heads, some_heads, plain_slices], ids=lambda f: f.__name__)
@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_stacked_slice_gradients(fn, dt, rng):
    Q, K, V = (rng.normal(size=(3, 6, 4)).astype(dt) for _ in range(3))
    f = td.jit(td.value_and_grad(fn, argnums=(0, 1, 2)), eager_first=False)
    v, g = f(Q, K, V)
    v0, g0 = td.value_and_grad(fn, argnums=(0, 1, 2))(Q, K, V)
    tol = 2e-5 if dt == np.float32 else 1e-13
    np.testing.assert_allclose(v, v0, rtol=tol)
    for a, b in zip(g, g0):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.max(np.abs(b)))
    if dt == np.float64:
        td.check_grads(fn, (Q, K, V), order=1, modes=("rev",))
        src = _source(f, Q, K, V)
        kernel = src[src.index("def kernel") :]
        assert "for i0 in range(3)" not in kernel, kernel  # no loop over the stack
        if fn is not plain_slices:  # products are written by BLAS into their slices
            assert re.search(r"bl\.gemm_into\([^\n]*, v\d+\[\d\]\)", kernel), kernel


def test_a_0d_array_after_a_fast_path_retraces():
    """The fast path of 1-D arguments called len() on its argument first: a 0-d
    array raised TypeError instead of taking the general path (a bug hunt)."""
    f = td.jit(lambda x: np.sin(x) * 2.0, eager_first=False)
    f(np.ones(4))
    f(np.ones(4))
    assert f(np.array(0.5)) == np.sin(0.5) * 2.0
