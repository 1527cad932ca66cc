"""NumPy functions of the "more" family on traced arrays: values against NumPy (through
the interpreter), derivatives by check_grads, keywords, edge cases and errors; one
grouped compiled check. The primitives themselves run in the registry (specs_more.py)."""

from __future__ import annotations

import numpy as np
import pytest

import tracediff as td

R = np.random.default_rng(0)
A = R.standard_normal((3, 4))
V = R.standard_normal(5)
W = R.uniform(0.5, 2.0, (3, 4))
B = R.standard_normal((2, 3, 4))
N = np.array([[1.0, np.nan, 3.0, -1.0], [np.nan, np.nan, np.nan, np.nan], [np.inf, -np.inf, 0.5, 2.0]])
V3 = R.standard_normal((4, 3))
XP = np.array([-1.0, 0.0, 0.5, 2.0])
FP = np.array([1.0, -2.0, 0.5, 3.0])
MASK = R.random((3, 4)) > 0.3
Z = np.array([[2.0, 0.0, 3.0, 0.0], [1.0, -2.0, 0.0, 4.0], [0.5, 1.5, -1.0, 2.0]])

# (id, function, arguments): each function compared with NumPy on the same arguments
VALUES = [
    ("sort", lambda x: (np.sort(x), np.sort(x, axis=0), np.sort(x, axis=None)), (A,)),
    ("argsort", lambda x: (np.argsort(x), np.argsort(x, axis=0), np.argsort(x, axis=None)), (A,)),
    ("sort-nan", lambda x: (np.sort(x, axis=1), np.argsort(x, axis=1, kind="stable")), (N,)),
    (
        "partition",
        lambda x: (np.partition(x, 2, axis=1)[:, 2], np.sort(x[0][np.argpartition(x[0], 1)])),
        (A,),
    ),
    (
        "searchsorted",
        lambda a, v: (np.searchsorted(a, v), np.searchsorted(a, v, side="right")),
        (XP, np.array([0.0, 0.3, -5, 2.0, 9.0])),
    ),
    (
        "searchsorted-nan",
        lambda a, v: np.searchsorted(a, v),
        (np.array([1.0, 2.0, np.nan]), np.array([np.nan, 1.5, 3.0])),
    ),
    ("searchsorted-sorter", lambda a, v: np.searchsorted(a, v, sorter=np.argsort(a)), (V, A)),
    (
        "digitize",
        lambda x: (np.digitize(x, XP), np.digitize(x, XP, right=True), np.digitize(x, XP[::-1])),
        (A,),
    ),
    (
        "interp",
        lambda x, fp: (np.interp(x, XP, fp), np.interp(x, XP, fp, left=-9.0, right=9.0)),
        (np.array([-3.0, -1.0, 0.2, 0.5, 1.0, 2.0, 5.0]), FP),
    ),
    (
        "quantile",
        lambda x: (
            np.quantile(x, 0.3),
            np.quantile(x, [0.1, 0.9], axis=1),
            np.quantile(x, 0.5, axis=(0, 2), keepdims=True),
        ),
        (B,),
    ),
    (
        "quantile-methods",
        lambda x: tuple(
            np.quantile(x, [0.25, 0.6], axis=0, method=m) for m in ("lower", "higher", "nearest", "midpoint")
        ),
        (A,),
    ),
    (
        "percentile-median",
        lambda x: (np.percentile(x, 30, axis=0), np.median(x, axis=1, keepdims=True), np.median(x)),
        (A,),
    ),
    (
        "quantile-nan",
        lambda x: (np.median(x, axis=1), np.quantile(x, [0.2, 0.5]), np.percentile(x, 50, axis=0)),
        (N,),
    ),
    (
        "empty",
        lambda x: (
            np.sort(x),
            np.cumprod(x, axis=0),
            np.maximum.accumulate(x, axis=1),
            np.argsort(x, axis=0),
        ),
        (np.zeros((0, 3)),),
    ),
    (
        "ints",
        lambda x: (np.sort(x), np.cumprod(x > 0), np.linspace(x[0], 9, 4, dtype=int), np.median(x)),
        (np.array([3, -1, 2]),),
    ),
    ("cumprod", lambda x: (np.cumprod(x), np.cumprod(x, axis=0), np.multiply.accumulate(x, axis=1)), (Z,)),
    ("cumprod-int", lambda x: np.cumprod(x, axis=1), (np.arange(12).reshape(3, 4) - 3,)),
    (
        "accumulate",
        lambda x: (
            np.maximum.accumulate(x),
            np.minimum.accumulate(x, axis=1),
            np.fmax.accumulate(x, axis=1),
            np.fmin.accumulate(x, axis=0),
        ),
        (A,),
    ),
    (
        "accumulate-nan",
        lambda x: (
            np.maximum.accumulate(x, axis=1),
            np.fmax.accumulate(x, axis=1),
            np.fmin.accumulate(x, axis=0),
        ),
        (N,),
    ),
    (
        "cross",
        lambda a, b: (np.cross(a, b), np.cross(a.T, b.T, axisa=0, axisb=0, axisc=0), np.cross(a[0], b)),
        (V3, V3[::-1]),
    ),
    ("kron", lambda a, b: (np.kron(a, b), np.kron(a[0], b), np.kron(a, b[0, :2])), (A[:2, :3], W[:2, :2])),
    ("tri", lambda x: (np.triu(x), np.triu(x, 1), np.tril(x, -1), np.tril(x, 2), np.triu(B * 1.0, -1)), (A,)),
    (
        "diag",
        lambda v, m: (
            np.diag(v),
            np.diag(v, 2),
            np.diag(v, -1),
            np.diag(m),
            np.diag(m, 1),
            np.diagflat(m[:2, :2], -1),
        ),
        (V, A),
    ),
    ("eye", lambda x: x * np.eye(3, 4, dtype=x.dtype) + np.identity(3)[:, :1], (A,)),
    (
        "pad-constant",
        lambda x: (
            np.pad(x, 1),
            np.pad(x, ((1, 0), (2, 3)), constant_values=((1.0, 2.0), (3.0, 4.0))),
            np.pad(x, 2, constant_values=x[0, 0]),
        ),
        (A,),
    ),
    (
        "pad-modes",
        lambda x: tuple(
            np.pad(x, ((1, 2), (5, 3)), mode=m) for m in ("edge", "reflect", "symmetric", "wrap")
        ),
        (A,),
    ),
    (
        "roll",
        lambda x: (
            np.roll(x, 2),
            np.roll(x, -1, axis=1),
            np.roll(x, (1, 2), axis=(0, 1)),
            np.roll(x, 5, axis=0),
        ),
        (A,),
    ),
    (
        "rot90",
        lambda x: (np.rot90(x), np.rot90(x, 2), np.rot90(x, -1), np.rot90(B * 1.0, 1, axes=(2, 0))),
        (A,),
    ),
    (
        "meshgrid",
        lambda a, b: (np.meshgrid(a, b), np.meshgrid(a, b, indexing="ij"), np.meshgrid(a, b, sparse=True)),
        (V, A[0]),
    ),
    (
        "linspace",
        lambda a, b: (
            np.linspace(a, b, 7),
            np.linspace(a, b, 4, endpoint=False),
            np.linspace(a, b, 1),
            np.linspace(a * V[:2], b, 3, axis=1),
        ),
        (np.float64(-1.5), np.float64(2.0)),
    ),
    ("linspace-retstep", lambda a: np.linspace(0.0, a, 5, retstep=True), (np.float64(3.0),)),
    (
        "atleast_3d-stacks",
        lambda v, m: (
            np.atleast_3d(v),
            np.atleast_3d(m),
            np.atleast_3d(v[0]),
            np.column_stack([v[:3], m[:, :2]]),
            np.dstack([m, m]),
        ),
        (V, A),
    ),
    (
        "array_split",
        lambda x: np.array_split(x, 3) + np.array_split(x, [1, 3], axis=1) + np.array_split(x, 2, axis=1),
        (A.T,),
    ),
    (
        "initial-where",
        lambda x, m: (
            np.sum(x, where=m),
            np.sum(x, axis=0, initial=2.0),
            np.prod(x, axis=1, where=m),
            np.max(x, axis=1, where=m, initial=-1.0),
            np.min(x, initial=0.0),
            np.mean(x, axis=0, where=m),
        ),
        (A, MASK),
    ),
    (
        "var-std",
        lambda x, m: (
            np.var(x, ddof=1),
            np.std(x, axis=0, ddof=1),
            np.var(x, axis=1, where=m),
            np.std(x, where=m, ddof=1),
        ),
        (A, MASK),
    ),
    (
        "nan-reductions",
        lambda x: (
            np.nansum(x[0]),
            np.nanprod(x[[0, 2]], axis=1),
            np.nanmax(x[[0, 2]], axis=1),
            np.nanmin(x[0]),
            np.nanmean(x[0]),
            np.nanvar(x[0], ddof=1),
            np.nanstd(x[[0]], axis=1),
        ),
        (N,),
    ),
    (
        "average",
        lambda x, w: (
            np.average(x),
            np.average(x, axis=1, weights=w[0]),
            np.average(x, weights=w),
            np.average(x, axis=0, weights=w, returned=True),
            np.average(x, axis=1, keepdims=True),
            np.average(B * 1.0, axis=(2, 0), weights=w.T[:, :2]),
        ),
        (A, W),
    ),
    (
        "trapezoid",
        lambda y, x: (
            np.trapezoid(y),
            np.trapezoid(y, dx=0.5, axis=0),
            np.trapezoid(y, x[0]),
            np.trapezoid(y, x),
        ),
        (A, np.cumsum(W, axis=1)),
    ),
    (
        "ediff1d-polyval",
        lambda x, p: (
            np.ediff1d(x),
            np.ediff1d(x, to_begin=-1.0, to_end=x[:2]),
            np.polyval(p, x),
            np.polyval(p, 2.0),
        ),
        (A, V),
    ),
    ("nan_to_num", lambda x: (np.nan_to_num(x), np.nan_to_num(x, nan=-1.0, posinf=9.0, neginf=-9.0)), (N,)),
    ("select", lambda x: np.select([x > 0.5, x < -0.5], [x, x * x], default=-1.0), (A,)),
    (
        "piecewise",
        lambda x: (
            np.piecewise(x, [x < 0, x >= 0], [lambda v: -v, lambda v: v * v]),
            np.piecewise(x, [x < -0.5, x > 0.5], [0.0, lambda v: v * 2, 7.0]),
        ),
        (A,),
    ),
    (
        "tensordot",
        lambda a, b: (
            np.tensordot(a, b, 0),
            np.tensordot(a, b.T, 1),
            np.tensordot(a, b, 2),
            np.tensordot(a, b, axes=([0, 1], [0, 1])),
            np.tensordot(a, b, axes=(1, 1)),
            np.tensordot(B * 1.0, a, axes=[[-1, 1], [1, 0]]),
        ),
        (A, W),
    ),
]


def _flat(r):
    return [np.asarray(v) for v in td.pytree.flatten(r)[0]]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # (NumPy's own, on NaN)
@pytest.mark.parametrize("fn,args", [pytest.param(f, a, id=i) for i, f, a in VALUES])
def test_values_match_numpy(fn, args):
    want = _flat(fn(*args))
    got = _flat(td.jit(fn, target="interpret")(*args))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, w.shape, g.dtype, w.dtype)
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-14)


def _total(fn):
    """One scalar of every float output (weights fixed): a loss for check_grads."""

    def loss(*args):
        outs = [o for o in td.pytree.flatten(fn(*args))[0] if o.dtype.kind == "f"]
        return sum(np.sum(o * np.linspace(0.5, 1.5, o.size).reshape(o.shape)) for o in outs)

    return loss


P = np.array([0.5, -1.0, 2.0, 0.3])
S = np.array([[0.1, 1.3, -0.7, 2.2], [-1.9, 0.6, 1.1, -0.4], [0.9, -1.2, 2.9, 0.35]])  # distinct, apart

# (id, function, arguments): check_grads to order 2 in both modes
GRADS = [
    (
        "sort-quantile",
        lambda x: (np.sort(x, axis=None), np.quantile(x, [0.2, 0.7], axis=1), np.median(x, axis=0)),
        (S,),
    ),
    ("interp", lambda x, xp, fp: np.interp(x, xp, fp), (np.array([-3.0, -0.7, 0.2, 0.8, 1.4, 5.0]), XP, FP)),
    ("cumprod-zeros", lambda x: (np.cumprod(x, axis=1), np.cumprod(x)), (Z,)),
    ("running-extremes", lambda x: (np.maximum.accumulate(x, axis=1), np.fmin.accumulate(x, axis=0)), (S,)),
    (
        "build",
        lambda x, v: (
            np.cross(x[:, :3], v[:3]),
            np.kron(x[:2, :2], x[1:, 2:]),
            np.triu(x, 1),
            np.diag(v, 1),
            np.diag(x),
            np.rot90(x),
        ),
        (A, V),
    ),
    (
        "pad-roll",
        lambda x, c: (
            np.pad(x, ((1, 2), (4, 1)), mode="reflect"),
            np.pad(x, 1, mode="wrap"),
            np.pad(x, 2, constant_values=c),
            np.roll(x, (1, -1), axis=(0, 1)),
        ),
        (A, np.float64(0.7)),
    ),
    (
        "linspace-meshgrid",
        lambda a, b: (np.linspace(a, b, 5), np.meshgrid(np.linspace(a, b, 3), np.linspace(b, a * b, 2))),
        (np.float64(-0.5), np.float64(1.5)),
    ),
    (
        "reductions",
        lambda x, w: (
            np.max(x, axis=1, where=MASK, initial=-5.0),
            np.mean(x, axis=0, where=MASK),
            np.std(x, axis=1, where=MASK, ddof=1),
            np.average(x, axis=1, weights=w[0]),
            np.trapezoid(x, np.cumsum(w, axis=1)),
        ),
        (S, W),
    ),
    (
        "nan-reductions",
        lambda x: (
            np.nansum(x, axis=1),
            np.nanmean(x, axis=0),
            np.nanvar(x),
            np.nanmax(x, axis=1),
            np.nan_to_num(x),
        ),
        (np.where(MASK, S, np.nan),),
    ),
    (
        "polyval-select-piecewise",
        lambda x, p: (
            np.polyval(p, x),
            np.select([x > 1.0, x < 0], [x * x, np.sin(x)], default=x),
            np.piecewise(x, [x < 0], [lambda v: v**3, lambda v: np.exp(v)]),
        ),
        (S, P),
    ),
]


@pytest.mark.parametrize("fn,args", [pytest.param(f, a, id=i) for i, f, a in GRADS])
def test_derivatives(fn, args):
    td.check_grads(_total(fn), args, order=2)


def test_library_functions_match_numpy():
    """The Numba functions compiled programs call, on NaN, infinities, ties and zeros
    (called directly: the registry runs them inside compiled programs)."""
    from tracediff.backend.cpu.lib import more as lib

    x = np.array(
        [[1.0, np.nan, 3.0, 1.0, 0.0], [2.0, 2.0, -np.inf, np.nan, np.nan], [np.nan, 0.5, 0.5, np.inf, -1.0]]
    )
    np.testing.assert_array_equal(lib.argsort(x), np.argsort(x, axis=1, kind="stable"))
    a = np.sort(x, axis=None).reshape(1, -1)
    v = np.array([[np.nan, 0.5, 1.0, -np.inf, 7.0, np.inf]])
    for side in ("left", "right"):
        np.testing.assert_array_equal(
            lib.searchsorted(a, v, side == "right"), np.searchsorted(a[0], v[0], side)[None]
        )
    z = np.nan_to_num(x, posinf=2.0, neginf=-3.0)
    np.testing.assert_array_equal(lib.linrec(z, z * (np.arange(5) == 0), False), np.cumprod(z, axis=1))
    np.testing.assert_array_equal(lib.linrec(z, z, True)[:, 0], _rev_linrec(z))
    for op, uf in (("max", np.maximum), ("min", np.minimum), ("fmax", np.fmax), ("fmin", np.fmin)):
        idx = lib.cumarg(x, op)
        np.testing.assert_array_equal(np.take_along_axis(x, idx, axis=1), uf.accumulate(x, axis=1))


def _rev_linrec(z):
    """The first column of the reverse recurrence y[i] = z[i] * y[i+1] + z[i], by a loop."""
    out = np.zeros(z.shape[0])
    for i in reversed(range(z.shape[1])):
        out = z[:, i] * out + z[:, i]
    return out


def test_vmap_of_compositions():
    f = lambda x: (np.sort(x), np.interp(x, XP, FP), np.cumprod(x), np.maximum.accumulate(x), np.median(x))  # noqa: E731
    got = td.vmap(f)(A)
    for k, w in enumerate(zip(*[f(a) for a in A])):
        np.testing.assert_allclose(got[k], np.stack(w), rtol=1e-13)


def test_full_and_index_tricks_take_traced_values():
    def f(x, v):
        return np.full((2, 3), x) * np.full(3, 2.0), np.r_[v, x, 0:2], np.c_[v[:2], v[1:] * x]

    x, v = np.float64(1.5), np.array([1.0, -2.0, 3.0])
    for g, w in zip(td.jit(f)(x, v), f(x, v)):
        np.testing.assert_array_equal(g, w)
    assert td.grad(lambda x: np.sum(np.full(4, x) * np.r_[x, x, 1.0, 2.0]))(x) == 4 * x + 3


ERRORS = [
    (lambda x: np.sort(x[0, 0]), np.exceptions.AxisError, "np.sort"),
    (lambda x: np.sort(x, axis=2), np.exceptions.AxisError, "np.sort"),
    (lambda x: np.sort(x, kind="bogus"), ValueError, "unknown kind"),
    (lambda x: np.partition(x, 9), ValueError, "kth"),
    (lambda x: np.searchsorted(x, x[0]), ValueError, "one-dimensional"),
    (lambda x: np.searchsorted(x[0], x[0], side="middle"), ValueError, "side"),
    (lambda x: np.interp(x, XP, FP[:3]), ValueError, "np.interp"),
    (lambda x: np.quantile(x, 1.5), ValueError, "range"),
    (lambda x: np.quantile(x, 0.5, method="weibull"), NotImplementedError, "method"),
    (lambda x: np.cumprod(x, axis=3), np.exceptions.AxisError, "np.cumprod"),
    (lambda x: np.maximum.accumulate(x[0, 0]), TypeError, "accumulate"),
    (lambda x: np.cross(x, x), ValueError, "3-vectors"),
    (lambda x: np.arange(x[0, 0]), TypeError, "np.arange"),
    (lambda x: np.triu(x[0]), ValueError, "np.triu"),
    (lambda x: np.diag(x[None]), ValueError, "np.diag"),
    (lambda x: np.pad(x, 1, mode="mean"), NotImplementedError, "mode"),
    (lambda x: np.pad(x, -1), ValueError, "pad_width"),
    (lambda x: np.pad(x, 1, mode="reflect", reflect_type="odd"), NotImplementedError, "odd"),
    (lambda x: np.rot90(x, axes=(1, 1)), ValueError, "np.rot90"),
    (lambda x: np.meshgrid(x, indexing="ji"), ValueError, "indexing"),
    (lambda x: np.max(x, where=x > 0), ValueError, "initial"),
    (lambda x: np.sum(x, where=np.ones(7, bool)), ValueError, "where="),
    (lambda x: np.average(x, weights=x[0]), TypeError, "axis must be specified"),
    (lambda x: np.average(x, axis=1, weights=x[:, 0]), ValueError, "shape of weights"),
    (lambda x: np.select([x > 0], [x, x]), ValueError, "same length"),
    (lambda x: np.piecewise(x, [x > 0, x < 0], [1.0]), ValueError, "np.piecewise"),
    (lambda x: np.polyval(x, x), ValueError, "1-D"),
    (lambda x: np.array_split(x, 0), ValueError, "sections"),
]


@pytest.mark.parametrize("fn,exc,text", ERRORS)
def test_errors_name_the_operation(fn, exc, text):
    with pytest.raises(exc, match=text):
        td.jit(fn, target="interpret")(A)


F32 = np.array([1.0, -2.0, 3.0], np.float32)
I32 = np.array([1, -2, 3], np.int32)
U8 = np.array([0, 255], np.uint8)
SEMANTICS = [  # (function, arguments): value, dtype and shape as NumPy's (a bug hunt)
    (lambda x: np.where(x > 0, 1.0, -1.0) + x, (F32,)),  # np.where's result is strong: float64
    (lambda x: np.where(x > 0, 1, -1) + x, (I32,)),
    (lambda x, s: np.where(x > 0, s, -1.0) * x, (F32, 2.0)),
    (lambda x, s: np.asarray(s) + x, (F32, 1.5)),  # a 0-d array of a Python float is strong
    (lambda x: np.select([x > 0, x < -1], [x, 2.0], default=1.0), (F32,)),  # Python numbers weak
    (lambda x: np.select([x > 0], [x], default=np.float64(1.0)), (F32,)),
    (
        lambda x: (np.any(x), np.all(x), np.any(x > 0, axis=0), (x > 0).all(axis=0, keepdims=True)),
        (np.zeros((0, 3)),),
    ),
    (
        lambda x: (np.any(x, where=x > 1), np.all(x, axis=0, where=x < 0)),
        (np.array([[0.0, 2.0], [0.0, 0.0]]),),
    ),
    (lambda x: (x < -1, x == 256, 300 > x, np.less(x, 2**70), x != -1), (U8,)),
    (lambda x: (x > 2**40, -(2**31) - 1 < x), (I32,)),
    (
        lambda x, y: (np.maximum(x, y), np.minimum(x, y), np.maximum(y, x)),
        (np.array([-0.0, 0.0, np.nan]), np.array([0.0, -0.0, 1.0])),
    ),
    (lambda x: (divmod(x, 2.0), divmod(7.0, x), round(x[0] * 1.234, 2)), (np.array([1.5, -2.5, 3.0]),)),
    (
        lambda a, b: (
            np.isclose(a, b),
            np.isclose(a, b, equal_nan=True),
            np.allclose(a[:3], b[:3]),
            np.isclose(a, 1.0),
        ),
        (
            np.array([0.5, 1.0, 2.0, np.inf, np.nan, np.inf]),
            np.array([0.5 + 1e-9, 1.0, 2.1, np.inf, np.nan, -np.inf]),
        ),
    ),
    (
        lambda x, y: (np.isclose(x, y), np.isclose(y, x, rtol=1e-3)),
        (np.array([1.0, 2.0, 3.00001], np.float32), I32),
    ),
    (
        lambda x: (
            np.ptp(x),
            np.ptp(x, axis=0),
            np.count_nonzero(x > 0),
            np.count_nonzero(x, axis=1, keepdims=True),
        ),
        (np.array([[0.0, 1.5, -2.0], [3.0, 0.0, 0.5]]),),
    ),
]


@pytest.mark.parametrize("k", range(len(SEMANTICS)))
def test_numpy_semantics(k):
    fn, args = SEMANTICS[k]
    want = td.pytree.flatten(fn(*args))[0]
    for target in ("interpret", "cpu"):
        got = td.pytree.flatten(td.jit(fn, target=target, eager_first=False)(*args))[0]
        assert len(got) == len(want)
        for g, w in zip(got, want):
            g, w = np.asarray(g), np.asarray(w)
            assert (g.dtype, g.shape) == (w.dtype, w.shape), (target, g, w)
            np.testing.assert_array_equal(g, w)
            if g.dtype.kind == "f":  # -0.0 and 0.0 too
                np.testing.assert_array_equal(np.signbit(g), np.signbit(w))


@pytest.mark.parametrize("src", ["x << 2", "x >> 1", "round(x[0])"])
def test_unsupported_operators_name_the_line(src):
    fn = eval(f"lambda x: {src}")
    with pytest.raises(
        (NotImplementedError, td.TracerError), match=r"np\.left_shift|np\.right_shift|round\(\)"
    ):
        td.jit(fn, target="interpret")(np.array([1, 2, 3]))


def test_prod_second_derivatives_at_zeros():
    """np.prod's gradient is the product of the others; written with prefix and suffix
    products (no division), its own derivatives are right where entries are 0: the
    Hessian of x0 x1 x2 at (0, 2, 3) is symmetric, at (0, 0, 3) it keeps the 0-0 pair."""
    hess = np.array([[0.0, 3.0, 2.0], [3.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    for h in (td.hessian(np.prod), td.jit(td.hessian(np.prod), eager_first=False)):
        np.testing.assert_allclose(h(np.array([0.0, 2.0, 3.0])), hess)
        np.testing.assert_allclose(h(np.array([0.0, 0.0, 3.0])), [[0, 3, 0], [3, 0, 0], [0, 0, 0]])
    m = np.random.default_rng(0).normal(size=(2, 3, 4))
    m[1, 2, 3] = m[0, 1, 1] = m[1, 1, 0] = 0.0  # one, two and no zeros along the reduced axes
    td.check_grads(lambda m: np.sum(np.prod(m, axis=(0, 2)) * np.arange(3.0)), (m,), order=2)
    np.testing.assert_allclose(
        td.grad(lambda v: np.sum(np.prod(v, axis=0)))(np.zeros((0, 3))), np.zeros((0, 3))
    )


def test_logaddexp_gradient_at_infinities_and_nan_to_num_of_complex():
    """logaddexp's weights never compute inf - inf: 1 for the operand that is the result
    (an infinity against a smaller one), 1/2 each for equal infinities; nan_to_num of a
    complex array replaces in the real and imaginary parts (it returned them unchanged)."""
    x = np.array([np.inf, -np.inf, 0.0, 2.0, np.nan])
    y = np.array([-np.inf, -np.inf, -np.inf, 3.0, 1.0])
    s = 1 / (1 + np.e)
    for g in (td.grad, lambda f, **k: td.jit(td.grad(f, **k), eager_first=False)):
        gx, gy = g(lambda x, y: np.sum(np.logaddexp(x, y)), argnums=(0, 1))(x, y)
        np.testing.assert_allclose(gx, [1.0, 0.5, 1.0, s, np.nan], rtol=1e-15)
        np.testing.assert_allclose(gy, [0.0, 0.5, 0.0, 1 - s, np.nan], rtol=1e-15)
    z = np.array([complex(np.nan, -np.inf), complex(np.inf, np.nan), complex(1, -0.0)])
    for dt in (np.complex128, np.complex64):
        got = td.jit(lambda z: np.nan_to_num(z * 1, nan=2.0), eager_first=False)(z.astype(dt))
        want = np.nan_to_num(z.astype(dt), nan=2.0)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got.imag), np.signbit(want.imag))
