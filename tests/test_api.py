"""The public API: transformations, pytrees, caching, inspection and errors."""

from __future__ import annotations

import numpy as np
import pytest

import tracediff as td

f32, f64 = np.float32, np.float64


def test_golden_traced_dump():
    def f(x, w):
        return np.sum(np.tanh(x @ w))

    x = np.ones((4, 3), f32)
    w = np.ones((3, 2), f32)
    text = str(td.make_ir(f, x, w))
    lines = text.splitlines()
    assert lines[0] == "{ lambda a:f32[4,3] b:f32[3,2] ."
    assert lines[1].startswith("  c:f32[4,2] = matmul a b") and lines[1].endswith("test_api.py:15")
    assert lines[2].startswith("  d:f32[4,2] = tanh c")
    assert lines[3].startswith("  e:f32[] = reduce_sum[axes=(0, 1)] d")
    assert lines[4] == "  in (e) }"


def test_grad_ir_has_forward_and_adjoint():
    def f(x):
        return np.sum(np.sin(x))

    ir = td.make_ir(td.grad(f), np.ones(3))
    names = [e.prim.name for e in ir.eqns]
    assert "cos" in names  # the adjoint of sin
    assert all(e.src.startswith("test_api.py:") for e in ir.eqns if e.prim.name != "broadcast")
    assert len(ir.outvars) == 1 and ir.outvars[0].aval.shape == (3,)


def test_traces_once_per_signature():
    calls = []

    def f(x):
        calls.append(1)
        return np.sum(x * x)

    g = td.grad(f)
    for _ in range(5):
        g(np.ones(3))
    assert len(calls) == 1
    g(np.ones(4))  # new shape: one more trace
    g(np.ones(4, f32))  # new dtype: one more
    assert len(calls) == 3
    for _ in range(3):  # td.grad(f) made again in a loop still hits the cache
        td.grad(f)(np.ones(3))
    assert len(calls) == 3


def test_pytrees_in_and_out():
    def loss(params, x):
        h = np.tanh(x @ params["w"] + params["b"])
        return np.sum(h * h) + np.sum(params["extra"][0] ** 2)

    params = {"w": np.ones((3, 2)), "b": np.zeros(2), "extra": [np.ones(2), None]}
    g = td.grad(loss)(params, np.ones((4, 3)))
    assert set(g) == {"w", "b", "extra"}
    assert g["w"].shape == (3, 2) and g["b"].shape == (2,)
    assert isinstance(g["extra"], list) and g["extra"][1] is None
    np.testing.assert_allclose(g["extra"][0], 2 * np.ones(2))


def test_argnums_tuple_and_negative():
    def f(a, b, c):
        return np.sum(a * b * c)

    a, b, c = np.full(2, 2.0), np.full(2, 3.0), np.full(2, 5.0)
    ga, gc = td.grad(f, argnums=(0, -1))(a, b, c)
    np.testing.assert_allclose(ga, b * c)
    np.testing.assert_allclose(gc, a * b)


def test_has_aux_and_value_and_grad():
    def f(x):
        return np.sum(x**2), {"mean": np.mean(x)}

    x = np.arange(3.0, dtype=f32)
    (val, aux), g = td.value_and_grad(f, has_aux=True)(x)
    assert val == np.float32(5.0) and val.dtype == f32
    assert aux["mean"] == np.float32(1.0)
    np.testing.assert_allclose(g, 2 * x)
    assert g.dtype == f32
    g2, aux2 = td.grad(f, has_aux=True)(x)
    np.testing.assert_allclose(g2, 2 * x)


def test_python_float_argument_is_traced_and_weak():
    calls = []

    def f(x, s):
        calls.append(1)
        return np.sum(x * s) * s

    x = np.ones(3, f32)
    g = td.grad(f, argnums=1)(x, 2.0)
    assert isinstance(g, float) and g == pytest.approx(12.0)
    td.grad(f, argnums=1)(x, 3.0)
    assert len(calls) == 1  # a new float value does not retrace
    gx = td.grad(f)(x, 2.0)
    assert gx.dtype == f32  # a Python float does not promote float32


def test_static_int_argument():
    def f(x, n):
        for _ in range(n):
            x = np.sin(x)
        return np.sum(x)

    x = np.array([0.5, 1.0])
    want = np.cos(np.sin(x)) * np.cos(x)
    np.testing.assert_allclose(td.grad(f)(x, 2), want)


def test_higher_order():
    f = lambda x: x**4  # noqa: E731
    assert td.grad(td.grad(td.grad(f)))(2.0) == pytest.approx(48.0)
    h = td.hessian(lambda x: np.sum(x**3))(np.array([1.0, 2.0]))
    np.testing.assert_allclose(h, np.diag([6.0, 12.0]))
    j = td.jacobian(lambda x: np.sin(x) * 2)(np.array([0.1, 0.2, 0.3]))
    np.testing.assert_allclose(j, np.diag(2 * np.cos([0.1, 0.2, 0.3])))
    jf = td.jacfwd(lambda x: x[::-1] ** 2)(np.array([1.0, 2.0]))
    np.testing.assert_allclose(jf, [[0.0, 4.0], [2.0, 0.0]])


def test_closure_over_outer_tracer():
    # d/dx [ d/dy (x*y)^2 at y=x ] = d/dx 2 x^3 = 6 x^2
    def outer(x):
        return td.grad(lambda y: (x * y) ** 2)(x)

    assert td.grad(outer)(1.5) == pytest.approx(6 * 1.5**2)


def test_vjp_and_jvp():
    x = np.array([1.0, 2.0, 3.0])
    out, f_vjp = td.vjp(lambda x: np.cumsum(x**2), x)
    np.testing.assert_allclose(out, np.cumsum(x**2))
    (ct,) = f_vjp(np.ones(3))
    np.testing.assert_allclose(ct, 2 * x * np.array([3.0, 2.0, 1.0]))
    y, t = td.jvp(lambda x: np.sin(x), (x,), (np.ones(3),))
    np.testing.assert_allclose(t, np.cos(x))


def test_nan_propagates_like_numpy():
    x = np.array([1.0, np.nan, np.inf])
    g = td.grad(lambda x: np.sum(x * 2.0))(x)
    np.testing.assert_array_equal(g, [2.0, 2.0, 2.0])
    v = td.jit(lambda x: np.exp(-x), target="interpret")(x)
    np.testing.assert_array_equal(v, np.exp(-x))


# --- errors ---------------------------------------------------------------------------


def _raises(exc, fn, *args, match=()):
    with pytest.raises(exc) as info:
        fn(*args)
    msg = str(info.value)
    for m in match:
        assert m in msg, f"{m!r} not in {msg!r}"
    return msg


def test_error_python_if_on_traced_array():
    def f(x):
        if x > 0:  # an array as a condition is ambiguous (a traced scalar is a `cond`)
            return np.sum(x)
        return -np.sum(x)

    _raises(ValueError, td.grad(f), np.ones(3), match=("ambiguous", "test_api.py:", "bool[3]"))


def test_error_unsupported_function():
    _raises(
        NotImplementedError,
        td.grad(lambda x: np.sum(np.unwrap(x))),
        np.ones(3),
        match=("unwrap", "test_api.py:"),
    )


def test_error_nonscalar_output():
    _raises(TypeError, td.grad(lambda x: x * 2), np.ones(3), match=("scalar", "f64[3]"))


def test_error_shape_mismatch():
    _raises(
        ValueError,
        td.grad(lambda x, y: np.sum(x + y)),
        np.ones(3),
        np.ones(4),
        match=("add", "f64[3]", "f64[4]", "test_api.py:"),
    )
    _raises(
        ValueError,
        td.grad(lambda x, y: np.sum(x @ y)),
        np.ones((2, 3)),
        np.ones((4, 2)),
        match=("matmul", "test_api.py:"),
    )


def test_error_argnums_and_has_aux_and_int_argument():
    _raises(ValueError, td.grad(lambda x: np.sum(x), argnums=3), np.ones(2), match=("argnums",))
    _raises(TypeError, td.grad(lambda x: np.sum(x), has_aux=True), np.ones(2), match=("has_aux", "pair"))

    def f(x, idx):
        return np.sum(x[idx])

    _raises(
        TypeError, td.grad(f, argnums=1), np.ones(3), np.array([0, 1]), match=("argument 1", "'idx'", "int64")
    )
    g = td.grad(f)(np.ones(3), np.array([0, 0, 2]))  # int arguments are fine when not differentiated
    np.testing.assert_array_equal(g, [2.0, 0.0, 1.0])


def test_static_values_equal_but_of_other_types_trace_apart():
    """2, 2.0 and np.float64(2.0) (and 0.0, -0.0) compare equal but give other
    programs: each is its own cache entry (a bug hunt: int8 * 2.0 reused the int8
    program, wrapping 200 to -56)."""
    counts = np.array([1, 2, 100], dtype=np.int8)
    f = td.jit(lambda x, s: x * s, static_argnums=1)
    for s in (2, 2.0, np.float64(2.0), True):
        want = counts * s
        got = f(counts, s)
        assert got.dtype == want.dtype, s
        np.testing.assert_array_equal(got, want)
    g = td.jit(lambda x, s: x * np.copysign(1.0, s), static_argnums=1)
    np.testing.assert_array_equal(g(np.ones(2), 0.0), [1.0, 1.0])
    np.testing.assert_array_equal(g(np.ones(2), -0.0), [-1.0, -1.0])
    # inside namedtuples and value dataclasses, given static or static by being hashable
    import collections
    import dataclasses

    cfg = collections.namedtuple("cfg", "scale")

    @dataclasses.dataclass(frozen=True)
    class Frozen:
        scale: float

    for make in (cfg, Frozen):
        for h in (td.jit(lambda x, c: x * c.scale, static_argnums=1), td.jit(lambda x, c: x * c.scale)):
            np.testing.assert_array_equal(h(counts, make(2)), counts * 2)
            got = h(counts, make(2.0))
            assert got.dtype == np.float64
            np.testing.assert_array_equal(got, counts * 2.0)
