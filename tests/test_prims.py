"""Every primitive, driven by the registry: forward against NumPy, derivatives
against finite differences (order 2, reverse and forward mode) in float32 and
float64. A primitive without a spec here fails `test_every_primitive_is_tested`.
"""

from __future__ import annotations

import os
import zlib

import numpy as np
import pytest
import scipy.special
from spec_util import (  # noqa: F401  (makers re-exported for other suites)
    Spec,
    away0,
    big_pos,
    gt1,
    ints,
    normal,
    pm1,
    pos,
    small,
    unit,
)

import tracediff as td
from tracediff.core import ELEMENTWISE, REGISTRY
from tracediff.interpret import eval_ir
from tracediff.passes.pipeline import optimize


def family_specs():
    """The SPECS of every tests/specs_<family>.py."""
    import importlib
    import pathlib

    here = pathlib.Path(__file__).parent
    return [importlib.import_module(p.stem).SPECS for p in sorted(here.glob("specs_*.py"))]


def _via_region(f):
    """Run f's optimized program (fused regions) on the arguments, through bind."""

    def g(*args):
        probe = [np.zeros(np.shape(a), a.dtype) for a in args]
        ir = optimize(td.make_ir(f, *probe), enabled=True)
        assert any(e.prim.name == "fused" for e in ir.eqns)
        return eval_ir(ir, list(args))[0]

    return g


def _scatter_fn(x):
    y = x * 1.0
    y[0] = x[-1] ** 2  # scatter: one element
    y[::2] *= 3.0  # a strided view, updated in place
    return y * x


def _scatter_accum_fn(x):
    h = np.zeros_like(x)
    np.add.at(h, np.array([0, 0, -1]), x[:1] ** 2)  # repeated indices accumulate
    return h * x


def _index_check_fn(x):
    i = np.argmax(x)  # a traced integer index: checked and normalized at run time
    return x * x[i] + x[i - 1]


def _cond_fn(x):
    if np.sum(x) > 0:  # a traced condition: a `cond` of the two branches
        y = np.sin(x) * x
    else:
        y = x**3
    return y


def _while_fn(x):
    s, k = x * 1.0, 0
    while np.sum(s * s) > 0.5 and k < 20:  # a traced test: a `while` loop
        s = s * 0.8
        k += 1
    return s * x


def _loop_fn(x):
    y = x
    for i in range(12):  # long enough to stay a counted loop (not unrolled)
        y = np.tanh(y * 0.9 + x[i % 2] * 0.1) if x.ndim else np.tanh(y * 0.9 + i * 0.01)
    return y


@td.custom_vjp
def _custom_sin(x):
    return np.sin(x)


_custom_sin.defvjp(lambda x: (_custom_sin(x), x), lambda x, g: (g * np.cos(x),))


@td.custom_jvp
def _custom_exp(x):
    return np.exp(x)


@_custom_exp.defjvp
def _custom_exp_jvp(primals, tangents):
    y = _custom_exp(primals[0])
    return y, tangents[0] * y


IDX = np.array([0, 2, 2, 1, 0])
MASK = np.array([True, False, True, True, False])

SPECS = [
    # elementwise, unary
    Spec("neg", np.negative, normal),
    Spec("abs", np.abs, away0),
    Spec("sign", lambda x: np.sign(x) * x, away0),
    Spec("floor", lambda x: np.floor(x) + x, away0),
    Spec("ceil", lambda x: np.ceil(x) * x, away0),
    Spec("round", lambda x: np.round(x) + x * x, away0),
    Spec("exp", np.exp, normal),
    Spec("exp2", np.exp2, normal),
    Spec("expm1", np.expm1, normal),
    Spec("log", np.log, pos),
    Spec("log2", np.log2, pos),
    Spec("log10", np.log10, pos),
    Spec("log1p", np.log1p, pos),
    Spec("sqrt", np.sqrt, pos),
    Spec("cbrt", np.cbrt, pos),
    Spec("square", np.square, normal),
    Spec("reciprocal", np.reciprocal, pos),
    Spec("sin", np.sin, normal),
    Spec("cos", np.cos, normal),
    Spec("tan", np.tan, unit),
    Spec("arcsin", np.arcsin, unit),
    Spec("arccos", np.arccos, unit),
    Spec("arctan", np.arctan, normal),
    Spec("sinh", np.sinh, normal),
    Spec("cosh", np.cosh, normal),
    Spec("tanh", np.tanh, normal),
    Spec("logistic", lambda x: scipy.special.expit(x), normal),
    Spec("arcsinh", np.arcsinh, normal),
    Spec("arccosh", np.arccosh, gt1),
    Spec("arctanh", np.arctanh, unit),
    Spec("logical_not", lambda x: np.where(np.logical_not(x > 0), x, 2 * x), away0),
    Spec("invert", lambda x: np.where(~(x > 0), x, 2 * x), away0),
    Spec("isnan", lambda x: np.where(np.isnan(x), 0.0, x), normal),
    Spec("isinf", lambda x: np.where(np.isinf(x), 0.0, x), normal),
    Spec("isfinite", lambda x: np.where(np.isfinite(x), x, 0.0), normal),
    # elementwise, binary (incl. broadcasting, which the front end resolves)
    Spec("add", np.add, normal, normal),
    Spec("sub", np.subtract, normal, normal),
    Spec("mul", np.multiply, normal, normal),
    Spec("div", np.divide, normal, pos),
    Spec("pow", np.power, pos, normal),
    Spec("pow", lambda x: x**3, normal),
    Spec("pow", lambda x: x**0.5, pos),
    Spec("max", np.maximum, small, pm1),
    Spec("min", np.minimum, small, pm1),
    Spec("arctan2", np.arctan2, normal, pos),
    Spec("hypot", np.hypot, pos, normal),
    Spec("logaddexp", np.logaddexp, normal, normal),
    Spec("rem", lambda x, y: np.remainder(x, y), away0, big_pos),
    Spec("floor_divide", lambda x, y: np.floor_divide(x, y) + x * y, away0, big_pos),
    Spec("lt", lambda x, y: np.where(x < y, x, y), small, pm1),
    Spec("le", lambda x, y: np.where(x <= y, x, y), small, pm1),
    Spec("gt", lambda x, y: np.where(x > y, x * y, y), small, pm1),
    Spec("ge", lambda x, y: np.where(x >= y, x, y * y), small, pm1),
    Spec("eq", lambda x, y: np.where(x == y, x, y), small, pm1),
    Spec("ne", lambda x, y: np.where(x != y, x, y), small, pm1),
    Spec("logical_and", lambda x, y: np.where(np.logical_and(x > 0, y > 0), x, y), pm1, pm1),
    Spec("logical_or", lambda x, y: np.where(np.logical_or(x > 0, y > 0), x, y), pm1, pm1),
    Spec("logical_xor", lambda x, y: np.where(np.logical_xor(x > 0, y > 0), x, y), pm1, pm1),
    Spec("bitwise_and", lambda x, y: np.where((x > 0) & (y > 0), x, y), pm1, pm1),
    Spec("bitwise_or", lambda x, y: np.where((x > 0) | (y > 0), x, y), pm1, pm1),
    Spec("bitwise_xor", lambda x, y: np.where((x > 0) ^ (y > 0), x, y), pm1, pm1),
    Spec("select", lambda c, x, y: np.where(c > 0, x, y), pm1, normal, normal),
    Spec("convert", lambda x: (x.astype(np.float64) * x).astype(x.dtype), normal),
    # derivative deliberately differs from finite differences: checked below
    Spec("stop_gradient", lambda x: x * td.stop_gradient(x), normal, diff=False),
    Spec("copy", lambda x: np.copy(x) * x.copy(), normal),
    # reductions
    Spec("reduce_sum", lambda x: np.sum(x, axis=0), normal, shapes=((3, 4), (5,))),
    Spec("reduce_sum", lambda x: x.sum(axis=(0, 2), keepdims=True), normal, shapes=((2, 3, 4),)),
    Spec("reduce_sum", lambda x: np.mean(x, axis=-1), normal, shapes=((3, 4),)),
    Spec("reduce_sum", lambda x: np.var(x, axis=1) + np.std(x), normal, shapes=((3, 4),)),
    Spec("reduce_max", lambda x: np.max(x, axis=1), normal, shapes=((3, 4),)),
    Spec("reduce_max", lambda x: x.max(), normal, shapes=((3, 4), (5,))),
    Spec("reduce_min", lambda x: np.min(x, axis=0, keepdims=True), normal, shapes=((3, 4),)),
    Spec("reduce_prod", lambda x: np.prod(x, axis=1), away0, shapes=((3, 4),)),
    Spec("reduce_prod", lambda x: x.prod(), away0, shapes=((5,),)),
    Spec("argmax", lambda x: x[np.arange(3), np.argmax(x, axis=1)], normal, shapes=((3, 4),)),
    Spec("argmin", lambda x: np.take(x, np.argmin(x)), normal, shapes=((3, 4),)),
    Spec("cumsum", lambda x: np.cumsum(x, axis=1), normal, shapes=((3, 4),)),
    Spec("cumsum", np.cumsum, normal, shapes=((3, 4),)),
    # contractions
    Spec("matmul", np.matmul, normal, normal, shapes=((4, 4),)),
    Spec("matmul", lambda a, b: a @ b[:, :3], normal, normal, shapes=((4, 4),)),
    Spec("matmul", lambda a, b: a @ b[0] + b[:, 1] @ a, normal, normal, shapes=((4, 4),)),
    Spec("matmul", lambda a, b: np.dot(a, b), normal, normal, shapes=((5,),)),
    Spec("matmul", lambda a, b: np.einsum("bij,bjk->bik", a, b), normal, normal, shapes=((2, 3, 3),)),
    Spec("matmul", lambda a, b: np.tensordot(a, b, axes=([1], [0])), normal, normal, shapes=((3, 3),)),
    Spec("matmul", lambda a, b: np.inner(a, b) + np.outer(a, b).sum(), normal, normal, shapes=((4,),)),
    Spec("matmul", lambda a: np.trace(a) + np.einsum("ii->i", a).sum(), normal, shapes=((4, 4),)),
    # shapes
    Spec("reshape", lambda x: x.reshape(4, 3) * np.arange(12.0).reshape(4, 3), normal, shapes=((3, 4),)),
    Spec("transpose", lambda x: x.T * np.arange(12.0).reshape(4, 3), normal, shapes=((3, 4),)),
    Spec("transpose", lambda x: np.moveaxis(x, 0, -1)[..., 0], normal, shapes=((2, 3, 4),)),
    Spec("broadcast", lambda x, y: x[:, None] * y[None, :], normal, normal, shapes=((4,),)),
    Spec(
        "broadcast",
        lambda x: np.broadcast_to(x, (3, 5)) * np.arange(15.0).reshape(3, 5),
        normal,
        shapes=((5,),),
    ),
    Spec(
        "concatenate", lambda x, y: np.concatenate([x, 2 * y, x * y]), normal, normal, shapes=((4,), (2, 3))
    ),
    Spec("concatenate", lambda x, y: np.stack([x, y], axis=1) ** 2, normal, normal, shapes=((4,),)),
    Spec("slice", lambda x: x[1::2] * x[:-2:2], normal, shapes=((7,),)),
    Spec("slice", lambda x: x[::-1, 1:3] ** 2, normal, shapes=((3, 4),)),
    Spec("slice", lambda x: np.flip(x, 1) * x, normal, shapes=((3, 4),)),
    Spec(
        "unslice",
        lambda c: td.vjp(lambda z: z[1::2], np.ones(7, c.dtype))[1](c)[0] * c.sum(),
        normal,
        shapes=((3,),),
    ),
    # regions
    Spec(
        "fused",
        _via_region(lambda x, y: np.sum(np.sin(x) * y, axis=-1) + np.max(x * x, axis=-1)),
        normal,
        normal,
        shapes=((3, 4), (5,)),
    ),
    # indexing
    Spec("gather", lambda x: x[IDX] * x[IDX[::-1]], normal, shapes=((4,),)),
    Spec("gather", lambda x: x[MASK] ** 2, normal, shapes=((5,),)),
    Spec(
        "gather",
        lambda x: np.take_along_axis(x, np.array([[0], [2], [1]]), axis=1) ** 2,
        normal,
        shapes=((3, 4),),
    ),
    Spec(
        "scatter_add",
        lambda c: td.vjp(lambda z: z[IDX], np.ones(4, c.dtype))[1](c)[0] ** 2,
        normal,
        shapes=((5,),),
    ),
    Spec("scatter", _scatter_fn, normal, shapes=((5,), (3, 4))),
    Spec("scatter_accum", _scatter_accum_fn, normal, shapes=((5,), (3, 4))),
    Spec("index_check", _index_check_fn, normal, shapes=((5,),)),
    # control flow (the branch taken depends on the seeded values; tests/test_dynamic.py takes both)
    Spec("cond", _cond_fn, normal),
    # a compiled loop's adjoint is a taping scan and a reverse scan; they differentiate
    # again (to third order here)
    Spec("loop", _loop_fn, normal, shapes=((5,), ())),
    Spec("scan", lambda x: td.grad(lambda z: np.sum(_loop_fn(z) ** 2))(x) * x, normal, shapes=((5,),)),
    Spec("scan", lambda x: td.grad(lambda z: np.sum(_while_fn(z) ** 2))(x) * x, normal, shapes=((5,),)),
    Spec("while", _while_fn, normal, shapes=((5,), ())),
    # a user's reverse-mode rule (here the true derivative, so it checks like one)
    Spec("custom_vjp_call", lambda x: _custom_sin(x) * x, normal),
    Spec("custom_jvp_call", lambda x: _custom_exp(x) * x, small),
    # recomputed in the backward sweep (checkpoint); its VJP reads the inputs through a barrier
    Spec("checkpoint", lambda x: td.checkpoint(lambda z: np.sin(z) * z)(x) * x, normal),
    Spec("barrier", lambda x: td.grad(lambda z: np.sum(td.checkpoint(np.tanh)(z) ** 2))(x) * x, normal),
]


CORE_SPECS = SPECS  # the primitives every target compiles (the CUDA tables run these)
SPECS = CORE_SPECS + [s for family in family_specs() for s in family]


def test_every_primitive_is_tested():
    tested = {p for s in SPECS for p in (s.prim, *s.also)}
    missing = sorted(set(REGISTRY) - tested)
    assert not missing, f"primitives without a test spec: {missing}"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_primitive_has_rules(name):
    p = REGISTRY[name]
    assert p.abstract is not None, f"{name} has no shape/dtype rule"
    assert p.impl is not None, f"{name} has no NumPy implementation"
    if p.differentiable:
        assert p.vjp is not None, f"{name} has no VJP rule"


def _cases():
    for k, s in enumerate(SPECS):
        for shape in s.shapes:
            for dt in ("float64", "float32"):
                yield pytest.param(
                    s, shape, np.dtype(dt), id=f"{s.prim}-{k}-{'x'.join(map(str, shape)) or 'scalar'}-{dt}"
                )


CASES = list(_cases())
CORE_CASES = [c for c in CASES if c.values[0] in CORE_SPECS]
DIFF_CASES = [c for c in CASES if c.values[0].diff]


def _seed(spec, shape):
    return zlib.crc32(repr((spec.prim, shape, SPECS.index(spec))).encode())


@pytest.mark.parametrize("spec,shape,dtype", CASES)
def test_forward_matches_numpy(spec, shape, dtype):
    args = spec.args(np.random.default_rng(_seed(spec, shape)), dtype, shape)
    want = spec.fn(*args)
    got = td.jit(spec.fn, target="interpret")(*args)
    assert np.asarray(got).dtype == np.asarray(want).dtype
    assert np.shape(got) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == np.float32 else 1e-13, atol=1e-7)


@pytest.mark.parametrize("spec,shape,dtype", DIFF_CASES)
def test_derivatives_order2(spec, shape, dtype):
    args = spec.args(np.random.default_rng(_seed(spec, shape)), dtype, shape)
    td.check_grads(spec.fn, args, order=spec.order, modes=spec.modes)


def test_stop_gradient_blocks_derivative():
    x = np.array([1.0, -2.0, 3.0])
    g = td.grad(lambda x: np.sum(x * td.stop_gradient(x)))(x)
    np.testing.assert_array_equal(g, x)
    gg = td.grad(lambda x: np.sum(td.stop_gradient(x) ** 2))(x)
    np.testing.assert_array_equal(gg, np.zeros(3))


def _scalarized(fn, args):
    """sum(fn(*args) * w) with fixed weights: a scalar loss exercising every output."""
    out = np.asarray(fn(*args))
    w = np.random.default_rng(1).standard_normal(out.shape).astype(out.dtype)
    return lambda *a: np.sum(fn(*a) * w)


def _cpu_cases():
    """The compiled comparison's cases. The families' primitives (linear algebra,
    special functions, FFT, sorting) are single library calls: their first shape
    in each dtype is compiled (the others' code is the same call); the core
    primitives' every shape in float64 and first shape in float32 (a shape's
    loops are the same code in either dtype). With the optimizer off or libm
    math (the reruns of test_optimizer_off.py and test_math_libm.py) float64:
    what those reruns change is the code around each primitive, the same in
    either dtype."""
    if os.environ.get("TRACEDIFF_OPT") == "0":
        # each primitive's first shape (a rank's single-op loops come from the loop
        # writer the main run's fused loops use), but for the elementwise ones: their
        # unoptimized programs are one-op loops and the reductions, broadcasts and
        # reshapes of the loss, which the other primitives' programs have too
        return [
            c
            for c in CORE_CASES
            if c.values[2] == np.float64
            and c.values[1] == c.values[0].shapes[0]
            and getattr(REGISTRY.get(c.values[0].prim), "kind", None) != ELEMENTWISE
        ]
    if os.environ.get("TRACEDIFF_MATH") == "libm":
        # only a program with a primitive that has vectorized code compiles otherwise
        return [c for c in CORE_CASES if c.values[2] == np.float64 and _has_fast_math(*c.values)]
    return [
        c
        for c in CASES
        if c.values[1] == c.values[0].shapes[0] or (c.values[0] in CORE_SPECS and c.values[2] == np.float64)
    ]


def _prims_in(ir):
    for e in ir.eqns:
        yield e.prim
        for v in e.params.values():
            for sub in v if isinstance(v, (list, tuple)) else (v,):
                if hasattr(sub, "eqns"):
                    yield from _prims_in(sub)


def _has_fast_math(spec, shape, dtype) -> bool:
    """Whether the case's forward or gradient program has a primitive whose CPU code
    differs with math="libm" (a `cpu:fast:<dtype>` scalar code)."""
    args = spec.args(np.random.default_rng(_seed(spec, shape)), dtype, shape)
    out = np.asarray(spec.fn(*args))
    fns = [spec.fn]
    if spec.diff and out.dtype.kind == "f":
        fns.append(td.value_and_grad(_scalarized(spec.fn, args), argnums=tuple(range(len(args)))))
    return any(
        any(k.startswith("cpu:fast:") for k in p.scalar)
        for fn in fns
        for p in _prims_in(td.make_ir(fn, *args, stage="optimized"))
    )


CPU_CASES = _cpu_cases()


@pytest.mark.parametrize("spec,shape,dtype", CPU_CASES)
def test_cpu_matches_interpreter(spec, shape, dtype):
    """Compiled forward and gradient equal the NumPy interpreter's."""
    args = spec.args(np.random.default_rng(_seed(spec, shape)), dtype, shape)
    tol = dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    out = np.asarray(spec.fn(*args))
    with_grad = spec.diff and out.dtype.kind == "f"
    nums = tuple(range(len(args)))
    vg = td.value_and_grad(_scalarized(spec.fn, args), argnums=nums) if with_grad else None

    def both(*a):  # forward and value_and_grad in one program: one compile
        return (spec.fn(*a), vg(*a)) if with_grad else (spec.fn(*a),)

    want = td.jit(both, target="interpret")(*args)
    got = td.jit(both, target="cpu")(*args)
    assert np.asarray(got[0]).dtype == np.asarray(want[0]).dtype
    np.testing.assert_allclose(got[0], want[0], **tol)
    if not with_grad:
        return
    (got_v, got_g), (want_v, want_g) = got[1], want[1]
    assert np.asarray(got_v).dtype == np.asarray(want_v).dtype
    np.testing.assert_allclose(got_v, want_v, **tol)
    for g, w in zip(got_g, want_g):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, **tol)
