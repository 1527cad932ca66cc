"""The interpreter runs a fused region's body block by block of its leading
axis (tracediff/blocked.py): elementwise results bit-identical to the whole-array
run, reductions over the leading axis within rounding, and bodies it cannot
follow run whole."""

from __future__ import annotations

import numpy as np
import pytest

import tracediff as td
from tracediff import blocked
from tracediff.interpret import Interpreter
from tracediff.passes.pipeline import optimize
from tracediff.prims.region import fused_p


def _regions(ir):
    return [e for e in ir.eqns if e.prim is fused_p]


def _run(fn, args, block):
    """fn's optimized program interpreted with blocks of `block` elements (0: whole)."""
    ir = td.make_ir(fn, *args, stage="optimized")
    old = blocked.BLOCK
    blocked.BLOCK = block or 1 << 62
    try:
        planned = [blocked.plan(e.params["body"]) for e in _regions(ir)]
        out = Interpreter(ir)(*args)
    finally:
        blocked.BLOCK = old
    return out, planned


def _unoptimized(fn, args):
    return Interpreter(optimize(td.make_ir(fn, *args), enabled=False))(*args)


def _grad_chain(x, w, b):
    for _ in range(5):
        x = x + 0.1 * np.tanh(x * w + b)
    return np.sum(x * x)


def _rows(x, y):  # 2-D domain, a row vector and a column vector broadcast into it
    r = np.exp(-((x - y[None, :]) ** 2)) * (x[:, :1] + 1.0)
    return r, np.sum(r, axis=1), np.max(r, axis=0), np.min(r), (r > 0.5), np.sum(r * r, axis=0)


def _ints(i, x):
    return (i * 3 + 1) % 7, np.where(i > 2, x, -x), np.prod(1.0 + 0.001 * x, axis=0)


def _three(x, v):  # 3-D domain, reduced over the middle and last axes
    s = x * v[None, :, None] + 1.0
    return np.sum(s, axis=(1, 2)), np.sum(np.sin(s), axis=(0, 2)), s[:, 0, 0]


CASES = {
    "grad_chain_f32": (
        td.grad(_grad_chain, argnums=(0, 1, 2)),
        lambda r: (r.normal(size=1003).astype(np.float32), np.float32([0.9]), np.float32([0.1])),
    ),
    "grad_chain_f64": (
        td.grad(_grad_chain, argnums=(0, 1, 2)),
        lambda r: (r.normal(size=1003), np.array([0.9]), np.array([0.1])),
    ),
    "rows_2d": (_rows, lambda r: (r.normal(size=(97, 5)), r.normal(size=5))),
    "rows_2d_f32": (
        _rows,
        lambda r: (r.normal(size=(97, 5)).astype(np.float32), r.normal(size=5).astype(np.float32)),
    ),
    "ints_and_select": (_ints, lambda r: (r.integers(0, 6, size=(141, 3)), r.normal(size=(141, 3)))),
    "three_d": (_three, lambda r: (r.normal(size=(23, 4, 3)), r.normal(size=4))),
    "grad_rows": (
        td.grad(lambda x, y: np.sum(_rows(x, y)[0] * x), argnums=(0, 1)),
        lambda r: (r.normal(size=(97, 5)), r.normal(size=5)),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("block", [7, 64])
def test_blocks_agree_with_the_whole_run(name, block):
    fn, make = CASES[name]
    args = make(np.random.default_rng(3))
    whole, none = _run(fn, args, 0)
    got, planned = _run(fn, args, block)
    assert not any(none)  # the reference ran whole
    assert any(planned)  # and this one in blocks
    want = [np.asarray(w) for w in _unoptimized(fn, args)]
    for g, w, ref in zip(got, whole, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype and g.shape == w.shape
        if g.ndim and g.shape[0] == args[0].shape[0] and g.dtype.kind != "f":
            np.testing.assert_array_equal(g, w)
        tol = 1e-5 if g.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)
        np.testing.assert_allclose(g, ref, rtol=tol, atol=tol)


def test_elementwise_results_are_bit_identical(rng):
    x = rng.normal(size=(301, 3))

    def f(x):
        return np.tanh(x) * np.exp(-x) + x / 3.0

    (whole,), _ = _run(f, (x,), 0)
    (got,), planned = _run(f, (x,), 10)
    assert planned[0] is not None and planned[0].step == 3  # 10 elements: 3 rows of 3, 1 row last
    np.testing.assert_array_equal(got, whole)
    np.testing.assert_array_equal(got, np.tanh(x) * np.exp(-x) + x / 3.0)


def test_whole_array_default_threshold(rng):
    # below two blocks of the default size the body runs whole; above, in blocks
    small = td.make_ir(lambda x: np.exp(x) + 1.0, np.ones(1000), stage="optimized")
    big = td.make_ir(lambda x: np.exp(x) + 1.0, np.ones(4 * blocked.BLOCK), stage="optimized")
    assert blocked.plan(_regions(small)[0].params["body"]) is None
    p = blocked.plan(_regions(big)[0].params["body"])
    assert p is not None and p.step == blocked.BLOCK


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: np.exp(x.T) * 2.0,  # the leading axis moves
        lambda x: np.exp(x[::-1]) + x,  # a value read at another index
        lambda x: np.exp(np.reshape(x, (-1,))) + 1.0,  # the domain is the flattened one
    ],
    ids=["transpose", "flip", "reshape"],
)
def test_bodies_it_cannot_follow_run_whole(fn, rng):
    x = rng.normal(size=(60, 40))
    (got, *_), planned = _run(fn, (x,), 8)
    np.testing.assert_allclose(got, fn(x), rtol=1e-13)
    for e, p in zip(_regions(td.make_ir(fn, x, stage="optimized")), planned):
        body = e.params["body"]
        follows = all(
            b.prim.kind in ("elementwise", "reduction") or b.prim.name in ("broadcast", "reshape")
            for b in body.eqns
        )
        assert p is None or follows


def test_a_dtype_the_ir_did_not_promise_falls_back_unbuffered(rng):
    x = rng.normal(size=200)
    ir = td.make_ir(lambda x: np.exp(x) * 2.0 + x, x, stage="optimized")
    body = _regions(ir)[0].params["body"]
    p = blocked.plan(body, 16)
    # a float32 array where the body says float64: casting="no" refuses the pool's
    # float64 arrays, and the blocks run again without them, as the whole body would
    got = p(x.astype(np.float32))
    assert not p.buffered
    want = Interpreter(body)(x.astype(np.float32))
    np.testing.assert_array_equal(got[0], want[0])


def test_w4_gradient_in_blocks_matches_the_compiled_program(rng):
    x = rng.normal(size=200_000).astype(np.float32)
    w, b = np.float32([0.9]), np.float32([0.1])

    def w4(x, w, b):  # (W4 takes 40 steps: 10 compile in a quarter of the time)
        for _ in range(10):
            x = x + 0.1 * np.tanh(x * w + b)
        return np.sum(x * x)

    g = td.grad(w4, argnums=(0, 1, 2))
    (region,) = _regions(td.make_ir(g, x, w, b, stage="optimized"))
    assert blocked.plan(region.params["body"]) is not None
    got = g(x, w, b)  # interpreted, in blocks
    want = td.jit(g, eager_first=False)(x, w, b)
    for a, c in zip(got, want):
        np.testing.assert_allclose(a, c, rtol=2e-4, atol=1e-5)


def test_a_view_of_a_pooled_value_keeps_its_array(rng):
    # np.real of a complex array is a view of it: the pool must not hand that array
    # to a later result while the view is still read
    x = rng.normal(size=400) + 1j * rng.normal(size=400)

    def f(x):
        r = np.real(np.exp(x))
        b = np.sin(x) * 3.0
        c = np.cos(x) + b
        return r * np.abs(c) + np.imag(c)

    (whole,), _ = _run(f, (x,), 0)
    (got,), planned = _run(f, (x,), 16)
    assert any(planned)
    np.testing.assert_array_equal(got, whole)
    np.testing.assert_allclose(got, f(x), rtol=1e-13)
