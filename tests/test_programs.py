"""A broad table of plain-NumPy programs, tried the way a new user would.

For every program (and each of float32/float64 where meaningful):

* forward: ``td.jit(f, target="interpret")(*args)`` equals ``f(*args)`` on NumPy arrays,
  with the same dtype and structure;
* value_and_grad of the scalarized program: the value equals NumPy's, the gradient has
  exactly the structure/shape/dtype of the argument, and (float64) it matches a
  central-difference gradient; where given, it also matches a closed form;
* ``td.check_grads`` (order 2 reverse mode for float64, order 1 for float32; some programs
  also forward mode).

Then: weak typing, pytrees, argnums/has_aux, higher derivatives, jacobians/hessians against
closed forms, scatter-add counts for gathers, NaN propagation, and user errors (type,
message content, and the user's ``test_programs.py:LINE``).
"""

from __future__ import annotations

import math
import re
import sys
import zlib

import numpy as np
import pytest
import scipy.special

import tracediff as td
from tracediff.testing import GradCheckError  # noqa: F401  (a failure raises this)

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from programs_helpers import (  # noqa: E402
    F32,
    F64,
    FWD_RTOL,
    Program,
    assert_close_tree,
    assert_same_structure,
    away,
    central_diff_grad,
    flatten,
    frac,
    leaves,
    n,
    pos_def,
    sep,
    u,
)

S = (3, 4)
LN2, LN10 = math.log(2.0), math.log(10.0)
PROGRAMS: list[Program] = []


def prog(name, fn, gen, argnums=0, **kw):
    p = Program(name, fn, gen, argnums, **kw)
    PROGRAMS.append(p)
    return p


def f64(x):
    return np.asarray(x, np.float64)


# ======================================================================================
# elementwise unary math: output arrays; ref_grad(args, weights) = w * f'(x)
# ======================================================================================


def _unary(name, op, deriv, dom, **kw):
    prog(
        name,
        lambda x: op(x),
        lambda r, dt: (dom(r, dt, S),),
        ref_grad=lambda a, w: w[0] * deriv(f64(a[0])),
        **kw,
    )


def _dom(lo, hi):
    return lambda r, dt, shape: u(r, dt, shape, lo, hi)


_unary("negative", np.negative, lambda x: -np.ones_like(x), n, fwd=True)
_unary("neg_operator", lambda x: -x, lambda x: -np.ones_like(x), n)
_unary("abs", np.abs, np.sign, away, fwd=True)
_unary("abs_builtin", lambda x: abs(x), np.sign, away)
_unary("sign_times_square", lambda x: np.sign(x) * x**2, lambda x: 2 * np.abs(x), away)
_unary("exp", np.exp, np.exp, _dom(-2, 2), fwd=True)
_unary("exp2", np.exp2, lambda x: LN2 * np.exp2(x), _dom(-2, 2))
_unary("expm1", np.expm1, np.exp, _dom(-2, 2))
_unary("log", np.log, lambda x: 1 / x, _dom(0.1, 3), fwd=True)
_unary("log2", np.log2, lambda x: 1 / (x * LN2), _dom(0.1, 3))
_unary("log10", np.log10, lambda x: 1 / (x * LN10), _dom(0.1, 3))
_unary("log1p", np.log1p, lambda x: 1 / (1 + x), _dom(-0.5, 2))
_unary("sqrt", np.sqrt, lambda x: 0.5 / np.sqrt(x), _dom(0.2, 3), fwd=True)
_unary("cbrt", np.cbrt, lambda x: np.abs(x) ** (-2 / 3) / 3, lambda r, dt, s: away(r, dt, s, 0.3, 3))
_unary("square", np.square, lambda x: 2 * x, n)
_unary("reciprocal", np.reciprocal, lambda x: -1 / x**2, away)
_unary("one_over_x", lambda x: 1.0 / x, lambda x: -1 / x**2, away)
_unary("sin", np.sin, np.cos, _dom(-3, 3), fwd=True)
_unary("cos", np.cos, lambda x: -np.sin(x), _dom(-3, 3))
_unary("tan", np.tan, lambda x: 1 / np.cos(x) ** 2, _dom(-1.2, 1.2))
_unary("arcsin", np.arcsin, lambda x: 1 / np.sqrt(1 - x**2), _dom(-0.8, 0.8))
_unary("arccos", np.arccos, lambda x: -1 / np.sqrt(1 - x**2), _dom(-0.8, 0.8))
_unary("arctan", np.arctan, lambda x: 1 / (1 + x**2), _dom(-3, 3))
_unary("sinh", np.sinh, np.cosh, _dom(-2, 2))
_unary("cosh", np.cosh, np.sinh, _dom(-2, 2))
_unary("tanh", np.tanh, lambda x: 1 - np.tanh(x) ** 2, _dom(-2, 2), fwd=True)
_unary("arcsinh", np.arcsinh, lambda x: 1 / np.sqrt(x**2 + 1), _dom(-3, 3))
_unary("arccosh", np.arccosh, lambda x: 1 / np.sqrt(x**2 - 1), _dom(1.2, 3))
_unary("arctanh", np.arctanh, lambda x: 1 / (1 - x**2), _dom(-0.8, 0.8))
_unary("floor_alone", np.floor, lambda x: np.zeros_like(x), frac)
_unary("floor_times_x", lambda x: np.floor(x) * x, np.floor, frac)
_unary("ceil_plus_sin", lambda x: np.ceil(x) + np.sin(x), np.cos, frac)
_unary(
    "round_times_x",
    lambda x: np.round(x) * x,
    np.round,
    lambda r, dt, s: frac(r, dt, s, 0.1, 0.4),
)
_unary("sigmoid", lambda x: 1 / (1 + np.exp(-x)), lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2, n)
_unary("scipy_expit", lambda x: scipy.special.expit(x), lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2, n)
_unary("relu_maximum", lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(float), away)
_unary("relu_mask_mul", lambda x: x * (x > 0), lambda x: (x > 0).astype(float), away)
_unary("softplus", lambda x: np.logaddexp(0.0, x), lambda x: 1 / (1 + np.exp(-x)), n)

# ======================================================================================
# elementwise binary
# ======================================================================================


def _two(dom_x=n, dom_y=n, sx=S, sy=S):
    return lambda r, dt: (dom_x(r, dt, sx), dom_y(r, dt, sy))


def _gapped_pair(r, dt):
    """x and y with |x - y| >= 0.3 everywhere (no ties for maximum/minimum/where)."""
    x = r.standard_normal(S)
    y = x + away(r, np.float64, S, 0.3, 1.0)
    return x.astype(dt), y.astype(dt)


prog("add", lambda x, y: x + y, _two(), (0, 1), ref_grad=lambda a, w: (w[0], w[0]), fwd=True)
prog("np_add", np.add, _two(), (0, 1), ref_grad=lambda a, w: (w[0], w[0]))
prog("subtract", lambda x, y: x - y, _two(), (0, 1), ref_grad=lambda a, w: (w[0], -w[0]))
prog("np_subtract", np.subtract, _two(), (0, 1))
prog(
    "multiply",
    lambda x, y: x * y,
    _two(),
    (0, 1),
    ref_grad=lambda a, w: (w[0] * f64(a[1]), w[0] * f64(a[0])),
    fwd=True,
)
prog(
    "divide",
    lambda x, y: x / y,
    _two(n, away),
    (0, 1),
    ref_grad=lambda a, w: (w[0] / f64(a[1]), -w[0] * f64(a[0]) / f64(a[1]) ** 2),
)
prog("np_true_divide", np.true_divide, _two(n, away), (0, 1))
prog(
    "power_int_literal",
    lambda x: x**3,
    lambda r, dt: (n(r, dt, S),),
    ref_grad=lambda a, w: w[0] * 3 * f64(a[0]) ** 2,
)
prog(
    "power_frac_literal",
    lambda x: x**2.5,
    lambda r, dt: (u(r, dt, S, 0.2, 2),),
    ref_grad=lambda a, w: w[0] * 2.5 * f64(a[0]) ** 1.5,
)
prog(
    "power_negative_literal",
    lambda x: x**-1.5,
    lambda r, dt: (u(r, dt, S, 0.3, 2),),
    ref_grad=lambda a, w: w[0] * -1.5 * f64(a[0]) ** -2.5,
)
prog(
    "power_array_exponent",
    lambda x, y: x**y,
    _two(_dom(0.2, 2), _dom(-1, 2)),
    (0, 1),
    ref_grad=lambda a, w: (
        w[0] * f64(a[1]) * f64(a[0]) ** (f64(a[1]) - 1),
        w[0] * f64(a[0]) ** f64(a[1]) * np.log(f64(a[0])),
    ),
    fwd=True,
)
prog("np_power_int", lambda x: np.power(x, 2), lambda r, dt: (n(r, dt, S),))
prog(
    "python_float_base_pow",
    lambda x: 2.0**x,
    lambda r, dt: (u(r, dt, S, -2, 2),),
    ref_grad=lambda a, w: w[0] * LN2 * 2.0 ** f64(a[0]),
)
prog(
    "power_static_int_arg",
    lambda x, k: x**k,
    lambda r, dt: (n(r, dt, S), 3),
    ref_grad=lambda a, w: w[0] * 3 * f64(a[0]) ** 2,
)
prog(
    "maximum",
    np.maximum,
    _gapped_pair,
    (0, 1),
    ref_grad=lambda a, w: (w[0] * (a[0] > a[1]), w[0] * (a[1] > a[0])),
)
prog(
    "minimum",
    np.minimum,
    _gapped_pair,
    (0, 1),
    ref_grad=lambda a, w: (w[0] * (a[0] < a[1]), w[0] * (a[1] < a[0])),
)
prog(
    "arctan2",
    np.arctan2,
    _two(n, away),
    (0, 1),
    ref_grad=lambda a, w: (
        w[0] * f64(a[1]) / (f64(a[0]) ** 2 + f64(a[1]) ** 2),
        -w[0] * f64(a[0]) / (f64(a[0]) ** 2 + f64(a[1]) ** 2),
    ),
    fwd=True,
)
prog(
    "hypot",
    np.hypot,
    _two(away, n),
    (0, 1),
    ref_grad=lambda a, w: (
        w[0] * f64(a[0]) / np.hypot(f64(a[0]), f64(a[1])),
        w[0] * f64(a[1]) / np.hypot(f64(a[0]), f64(a[1])),
    ),
)
prog(
    "logaddexp",
    np.logaddexp,
    _two(),
    (0, 1),
    ref_grad=lambda a, w: (
        w[0] / (1 + np.exp(f64(a[1]) - f64(a[0]))),
        w[0] / (1 + np.exp(f64(a[0]) - f64(a[1]))),
    ),
)
prog(
    "where_sign",
    lambda x: np.where(x > 0, x, 2 * x),
    lambda r, dt: (away(r, dt, S),),
    ref_grad=lambda a, w: w[0] * np.where(a[0] > 0, 1.0, 2.0),
)
prog("where_compare_two", lambda x, y: np.where(x > y, x * y, x - y), _gapped_pair, (0, 1))
prog(
    "where_python_float_branch",
    lambda x: np.where(x < 0, 0.0, x**2),
    lambda r, dt: (away(r, dt, S),),
)


def _clip_dom(r, dt, shape):
    s = np.where(r.uniform(size=shape) < 0.5, -1.0, 1.0)
    inner = r.uniform(0, 0.3, shape)
    outer = r.uniform(0.7, 1.5, shape)
    return (s * np.where(r.uniform(size=shape) < 0.5, inner, outer)).astype(dt)


prog(
    "clip",
    lambda x: np.clip(x, -0.5, 0.5),
    lambda r, dt: (_clip_dom(r, dt, S),),
    ref_grad=lambda a, w: w[0] * (np.abs(a[0]) < 0.5),
)
prog("clip_one_sided", lambda x: np.clip(x, None, 0.5) * x, lambda r, dt: (_clip_dom(r, dt, S),))
prog("clip_method", lambda x: x.clip(-0.5, 0.5) ** 2, lambda r, dt: (_clip_dom(r, dt, S),))


def _mask_dom(r, dt):
    pick = r.integers(0, 3, S)
    x = np.choose(pick, [r.uniform(-2, -1.3, S), r.uniform(-0.7, -0.3, S), r.uniform(0.3, 2, S)])
    y = np.where(r.uniform(size=S) < 0.5, r.uniform(-1, 0.2, S), r.uniform(0.8, 1.5, S))
    return x.astype(dt), y.astype(dt)


prog(
    "logical_mask_ops",
    lambda x, y: np.where(((x > 0) & (y < 0.5)) | ~(x < -1.0), x * y, y**2),
    _mask_dom,
    (0, 1),
)
prog(
    "np_logical_funcs_mask",
    lambda x, y: np.where(np.logical_and(x > -1.0, np.logical_not(y >= 0.5)), np.sin(x), x * y),
    _mask_dom,
    (0, 1),
)
prog("mask_astype_mul", lambda x, y: (x >= y).astype(x.dtype) * x + (x != y) * y, _gapped_pair, (0, 1))
prog(
    "mean_of_positives_count",
    lambda x: np.sum(np.where(x > 0, x, 0.0)) / np.sum(x > 0),
    lambda r, dt: (away(r, dt, S),),
)

# ======================================================================================
# broadcasting
# ======================================================================================

prog(
    "bcast_python_scalars",
    lambda x: 2.0 * x + 1.0,
    lambda r, dt: (n(r, dt, S),),
    ref_grad=lambda a, w: 2 * w[0],
)
prog(
    "bcast_row",
    lambda x, b: x + b,
    _two(n, n, S, (4,)),
    (0, 1),
    ref_grad=lambda a, w: (w[0], w[0].sum(0)),
    fwd=True,
)
prog(
    "bcast_column",
    lambda x, c: x * c,
    _two(n, n, S, (3, 1)),
    (0, 1),
    ref_grad=lambda a, w: (w[0] * f64(a[1]), (w[0] * f64(a[0])).sum(1, keepdims=True)),
)
prog(
    "bcast_3x1_plus_1x4",
    lambda a, b: a + b,
    _two(n, n, (3, 1), (1, 4)),
    (0, 1),
    ref_grad=lambda a, w: (w[0].sum(1, keepdims=True), w[0].sum(0, keepdims=True)),
)
prog("bcast_3x1_times_1x4", lambda a, b: a * b, _two(n, n, (3, 1), (1, 4)), (0, 1))
prog("bcast_keepdims_center", lambda x: x - x.mean(axis=1, keepdims=True), lambda r, dt: (n(r, dt, S),))
prog(
    "bcast_keepdims_normalize",
    lambda x: x / np.sum(x, axis=0, keepdims=True),
    lambda r, dt: (u(r, dt, S, 0.5, 2),),
)
prog("bcast_3d_plus_2d", lambda a, b: a * b + b, _two(n, n, (2, 3, 4), (3, 1)), (0, 1))
prog("bcast_0d_array_arg", lambda x, s: x * s + s, _two(n, n, S, ()), (0, 1))
prog("bcast_len1_axis", lambda x, b: x - b, _two(n, n, S, (1,)), (0, 1))
prog(
    "bcast_in_where",
    lambda c, x, y: np.where(c > 0, x, y),
    lambda r, dt: (away(r, dt, (3, 1)), n(r, dt, S), n(r, dt, (4,))),
    (1, 2),
)
prog(
    "python_float_argument",
    lambda x, s: x * s + s**2,
    lambda r, dt: (n(r, dt, S), 0.75),
    (0, 1),
    ref_grad=lambda a, w: (w[0] * a[1], float(np.sum(w[0] * (f64(a[0]) + 2 * a[1])))),
)

# ======================================================================================
# reductions
# ======================================================================================

prog("sum_all", lambda x: np.sum(x**2), lambda r, dt: (n(r, dt, S),), ref_grad=lambda a, w: 2 * f64(a[0]))
prog("sum_axis0_method", lambda x: x.sum(axis=0), lambda r, dt: (n(r, dt, S),), fwd=True)
prog("sum_axis_neg1", lambda x: np.sum(x, axis=-1), lambda r, dt: (n(r, dt, S),))
prog("sum_axis_tuple_3d", lambda x: np.sum(x, axis=(0, 2)), lambda r, dt: (n(r, dt, (2, 3, 4)),))
prog("sum_keepdims", lambda x: np.sum(x * x, axis=1, keepdims=True), lambda r, dt: (n(r, dt, S),))
prog(
    "mean_all",
    lambda x: np.mean(np.sin(x)),
    lambda r, dt: (n(r, dt, S),),
    ref_grad=lambda a, w: np.cos(f64(a[0])) / 12,
)
prog("mean_axis1", lambda x: np.mean(x, axis=1), lambda r, dt: (n(r, dt, S),))
prog("mean_axis_tuple_method", lambda x: x.mean(axis=(0, 1)), lambda r, dt: (n(r, dt, (2, 3, 4)),))
prog(
    "mean_neg_axis_keepdims",
    lambda x: np.mean(x, axis=-2, keepdims=True),
    lambda r, dt: (n(r, dt, (2, 3, 4)),),
)
prog(
    "prod_all",
    lambda x: np.prod(x),
    lambda r, dt: (u(r, dt, S, 0.6, 1.5),),
    ref_grad=lambda a, w: np.prod(f64(a[0])) / f64(a[0]),
    fwd=True,
)
prog("prod_axis1", lambda x: np.prod(x, axis=1), lambda r, dt: (u(r, dt, S, 0.6, 1.5),))
prog("prod_method_axis0", lambda x: x.prod(axis=0), lambda r, dt: (away(r, dt, S, 0.5, 1.5),))
prog(
    "max_all",
    lambda x: np.max(x),
    lambda r, dt: (sep(r, dt, S),),
    ref_grad=lambda a, w: (a[0] == a[0].max()).astype(np.float64),
)
prog("max_axis0", lambda x: np.max(x, axis=0), lambda r, dt: (sep(r, dt, S),))
prog("max_method_keepdims", lambda x: x.max(axis=-1, keepdims=True), lambda r, dt: (sep(r, dt, S),))
prog("max_axis_tuple", lambda x: np.max(x, axis=(0, 2)), lambda r, dt: (sep(r, dt, (2, 3, 4)),))
prog("min_axis1", lambda x: np.min(x, axis=1), lambda r, dt: (sep(r, dt, S),))
prog("min_all_method", lambda x: x.min() * x.sum(), lambda r, dt: (sep(r, dt, S),))
prog("amax_amin", lambda x: np.amax(x, axis=0) - np.amin(x, axis=0), lambda r, dt: (sep(r, dt, S),))
prog(
    "var_all",
    lambda x: np.var(x),
    lambda r, dt: (n(r, dt, S),),
    ref_grad=lambda a, w: 2 * (f64(a[0]) - f64(a[0]).mean()) / 12,
)
prog("var_axis0_ddof1", lambda x: np.var(x, axis=0, ddof=1), lambda r, dt: (n(r, dt, S),))
prog("var_keepdims_method", lambda x: x.var(axis=1, keepdims=True), lambda r, dt: (n(r, dt, S),))
prog("std_axis1", lambda x: np.std(x, axis=1), lambda r, dt: (n(r, dt, S),))
prog("std_all_method", lambda x: x.std(), lambda r, dt: (n(r, dt, S),))
prog("cumsum_axis0", lambda x: np.cumsum(x, axis=0), lambda r, dt: (n(r, dt, S),), fwd=True)
prog("cumsum_flat", lambda x: np.cumsum(x), lambda r, dt: (n(r, dt, S),))
prog("cumsum_method_neg_axis", lambda x: x.cumsum(axis=-1) ** 2, lambda r, dt: (n(r, dt, S),))
prog("norm_fro", lambda x: np.linalg.norm(x), lambda r, dt: (n(r, dt, S),))
prog("norm_axis1", lambda x: np.linalg.norm(x, axis=1), lambda r, dt: (n(r, dt, S),))
prog(
    "argmax_take_along_axis",
    lambda x: np.take_along_axis(x, np.argmax(x, axis=1)[:, None], axis=1) * 2.0,
    lambda r, dt: (sep(r, dt, S),),
)
prog("argmax_flat_index", lambda x: x.ravel()[np.argmax(x)] ** 2, lambda r, dt: (sep(r, dt, S),))
prog(
    "argmin_selects_rows",
    lambda x, y: y[np.argmin(x, axis=1)],
    lambda r, dt: (sep(r, dt, S), n(r, dt, (4, 5))),
    (0, 1),
)

# ======================================================================================
# linear algebra
# ======================================================================================

prog(
    "matmul_1d_1d",
    lambda x, y: x @ y,
    _two(n, n, (4,), (4,)),
    (0, 1),
    ref_grad=lambda a, w: (f64(a[1]), f64(a[0])),
)
prog(
    "matmul_2d_1d",
    lambda A, v: A @ v,
    _two(n, n, S, (4,)),
    (0, 1),
    ref_grad=lambda a, w: (np.outer(w[0], f64(a[1])), f64(a[0]).T @ w[0]),
    fwd=True,
)
prog("matmul_1d_2d", lambda v, A: v @ A, _two(n, n, (3,), S), (0, 1))
prog(
    "matmul_2d_2d",
    lambda A, B: A @ B,
    _two(n, n, S, (4, 5)),
    (0, 1),
    ref_grad=lambda a, w: (w[0] @ f64(a[1]).T, f64(a[0]).T @ w[0]),
    fwd=True,
)
prog("matmul_batched_3d_3d", lambda A, B: A @ B, _two(n, n, (2, 3, 4), (2, 4, 5)), (0, 1))
prog("matmul_bcast_3d_2d", lambda A, B: A @ B, _two(n, n, (2, 3, 4), (4, 5)), (0, 1))
prog("matmul_bcast_2d_3d", lambda A, B: np.matmul(A, B), _two(n, n, S, (2, 4, 5)), (0, 1))
prog("matmul_bcast_batch_dims", lambda A, B: A @ B, _two(n, n, (2, 1, 3, 4), (3, 4, 2)), (0, 1))
prog("dot_2d", np.dot, _two(n, n, S, (4, 2)), (0, 1))
prog("dot_1d", lambda x, y: np.dot(x, y), _two(n, n, (5,), (5,)), (0, 1))
prog("dot_method_2d_1d", lambda A, v: A.dot(v), _two(n, n, S, (4,)), (0, 1))
prog("inner_1d", np.inner, _two(n, n, (4,), (4,)), (0, 1))
prog("inner_2d", np.inner, _two(n, n, S, (5, 4)), (0, 1))
prog(
    "outer",
    np.outer,
    _two(n, n, (3,), (4,)),
    (0, 1),
    ref_grad=lambda a, w: (w[0] @ f64(a[1]), w[0].T @ f64(a[0])),
)
prog("tensordot_int1", lambda a, b: np.tensordot(a, b, axes=1), _two(n, n, S, (4, 5)), (0, 1))
prog("tensordot_int2", lambda a, b: np.tensordot(a, b, axes=2), _two(n, n, (2, 3, 4), (3, 4)), (0, 1))
prog(
    "tensordot_pair_axes",
    lambda a, b: np.tensordot(a, b, axes=([1, 0], [0, 1])),
    _two(n, n, S, (4, 3, 2)),
    (0, 1),
)
prog("tensordot_pair_single", lambda a, b: np.tensordot(a, b, axes=([0], [1])), _two(n, n, S, (2, 3)), (0, 1))
prog("einsum_ij_jk_ik", lambda a, b: np.einsum("ij,jk->ik", a, b), _two(n, n, S, (4, 5)), (0, 1), fwd=True)
prog(
    "einsum_bij_bjk_bik",
    lambda a, b: np.einsum("bij,bjk->bik", a, b),
    _two(n, n, (2, 3, 4), (2, 4, 2)),
    (0, 1),
)
prog(
    "einsum_trace_ii",
    lambda a: np.einsum("ii->", a),
    lambda r, dt: (n(r, dt, (4, 4)),),
    ref_grad=lambda a, w: np.eye(4),
)
prog("einsum_diag_ii_i", lambda a: np.einsum("ii->i", a), lambda r, dt: (n(r, dt, (4, 4)),))
prog("einsum_transpose", lambda a: np.einsum("ij->ji", a), lambda r, dt: (n(r, dt, S),))
prog("einsum_dot_i_i", lambda x, y: np.einsum("i,i->", x, y), _two(n, n, (5,), (5,)), (0, 1))
prog("einsum_rowdot_ij_ij_i", lambda a, b: np.einsum("ij,ij->i", a, b), _two(), (0, 1))
prog("einsum_implicit_ij_jk", lambda a, b: np.einsum("ij,jk", a, b), _two(n, n, S, (4, 2)), (0, 1))
prog("einsum_outer_i_j_ij", lambda x, y: np.einsum("i,j->ij", x, y), _two(n, n, (3,), (4,)), (0, 1))
prog("einsum_sum_all", lambda a: np.einsum("ij->", a) * np.einsum("ij->j", a), lambda r, dt: (n(r, dt, S),))
prog(
    "trace",
    lambda a: np.trace(a @ a.T),
    lambda r, dt: (n(r, dt, S),),
    ref_grad=lambda a, w: 2 * f64(a[0]),
)
prog("trace_square", lambda a: np.trace(a) * a, lambda r, dt: (n(r, dt, (4, 4)),))
prog("gram_xT_x", lambda x: x.T @ x, lambda r, dt: (n(r, dt, S),))
prog(
    "quadratic_form",
    lambda x, A: 0.5 * x @ A @ x,
    lambda r, dt: (n(r, dt, (4,)), n(r, dt, (4, 4))),
    (0, 1),
    ref_grad=lambda a, w: (
        0.5 * (f64(a[1]) + f64(a[1]).T) @ f64(a[0]),
        0.5 * np.outer(f64(a[0]), f64(a[0])),
    ),
)
prog("diagonal", lambda a: np.diagonal(a) * 3.0, lambda r, dt: (n(r, dt, (4, 4)),))

# ======================================================================================
# shapes
# ======================================================================================

_W12 = np.linspace(-1, 1, 12)
prog("reshape_minus1", lambda x: x.reshape(-1, 2) * np.arange(2.0), lambda r, dt: (n(r, dt, S),))
prog("np_reshape_tuple", lambda x: np.reshape(x, (4, 3)) ** 2, lambda r, dt: (n(r, dt, S),))
prog("reshape_varargs", lambda x: x.reshape(2, 6).sum(axis=0), lambda r, dt: (n(r, dt, S),))
prog(
    "reshape_3d_to_2d",
    lambda x: np.reshape(x, (-1, 4)) @ np.ones(4, x.dtype),
    lambda r, dt: (n(r, dt, (2, 3, 4)),),
)
prog("ravel", lambda x: np.ravel(x) * np.sin(np.ravel(x)), lambda r, dt: (n(r, dt, S),))
prog("ravel_method_flatten", lambda x: x.ravel() + x.flatten() ** 2, lambda r, dt: (n(r, dt, S),))
prog("transpose_T", lambda x: x.T * np.arange(3.0), lambda r, dt: (n(r, dt, S),), fwd=True)
prog("transpose_axes_3d", lambda x: np.transpose(x, (1, 2, 0)), lambda r, dt: (n(r, dt, (2, 3, 4)),))
prog("transpose_method_axes", lambda x: x.transpose(2, 0, 1) ** 2, lambda r, dt: (n(r, dt, (2, 3, 4)),))
prog("swapaxes", lambda x: np.swapaxes(x, 0, 2) * 2.0, lambda r, dt: (n(r, dt, (2, 3, 4)),))
prog("moveaxis", lambda x: np.moveaxis(x, 0, -1) ** 2, lambda r, dt: (n(r, dt, (2, 3, 4)),))
prog("expand_dims", lambda x: np.expand_dims(x, 1) * np.ones((1, 2, 1)), lambda r, dt: (n(r, dt, S),))
prog("squeeze", lambda x: np.squeeze(x) ** 2, lambda r, dt: (n(r, dt, (3, 1, 4)),))
prog(
    "squeeze_axis_method",
    lambda x: x.squeeze(axis=1) @ np.ones(4, x.dtype),
    lambda r, dt: (n(r, dt, (3, 1, 4)),),
)
prog(
    "broadcast_to",
    lambda x: np.broadcast_to(x, (3, 4)) * np.arange(3.0)[:, None],
    lambda r, dt: (n(r, dt, (4,)),),
    ref_grad=lambda a, w: (w[0] * np.arange(3.0)[:, None]).sum(0),
)
prog("concatenate_axis0", lambda a, b: np.concatenate([a, b]) ** 2, _two(n, n, S, (2, 4)), (0, 1), fwd=True)
prog("concatenate_axis1", lambda a, b: np.concatenate((a, b, a), axis=1), _two(n, n, S, (3, 2)), (0, 1))
prog(
    "concatenate_neg_axis", lambda a, b: np.concatenate([a, b], axis=-1) * 2.0, _two(n, n, S, (3, 1)), (0, 1)
)
prog("stack_axis0", lambda a, b: np.stack([a, b * 2.0]), _two(), (0, 1))
prog("stack_axis1", lambda a, b: np.stack((a, b), axis=1) ** 2, _two(n, n, (4,), (4,)), (0, 1))
prog("hstack_1d", lambda a, b: np.hstack([a, b, a]), _two(n, n, (3,), (2,)), (0, 1))
prog("hstack_2d", lambda a, b: np.hstack((a, b)), _two(n, n, S, (3, 2)), (0, 1))
prog("vstack", lambda a, b: np.vstack([a, b]) ** 2, _two(n, n, S, (4,)), (0, 1))
prog("flip_all", lambda x: np.flip(x) * np.arange(12.0).reshape(S), lambda r, dt: (n(r, dt, S),))
prog("flip_axis1", lambda x: np.flip(x, axis=1) * x, lambda r, dt: (n(r, dt, S),))
prog("tile_2d", lambda x: np.tile(x, (2, 1)) * np.arange(24.0).reshape(6, 4), lambda r, dt: (n(r, dt, S),))
prog(
    "tile_1d",
    lambda x: np.tile(x, 3),
    lambda r, dt: (n(r, dt, (4,)),),
)
prog(
    "repeat_axis0", lambda x: np.repeat(x, 2, axis=0) * np.arange(6.0)[:, None], lambda r, dt: (n(r, dt, S),)
)
prog("repeat_array_counts", lambda x: np.repeat(x, [1, 2, 3], axis=0) ** 2, lambda r, dt: (n(r, dt, S),))
prog("repeat_flat_method", lambda x: x.repeat(2) * np.arange(24.0), lambda r, dt: (n(r, dt, S),))

# ======================================================================================
# indexing
# ======================================================================================

V6 = (6,)
prog("slice_step", lambda x: x[1:5:2] * 3.0, lambda r, dt: (n(r, dt, V6),))
prog("slice_reverse", lambda x: x[::-1] * np.arange(6.0), lambda r, dt: (n(r, dt, V6),))
prog("slice_2d_neg_step", lambda x: x[::-2, 1:] ** 2, lambda r, dt: (n(r, dt, (5, 4)),), fwd=True)
prog("negative_index_row", lambda x: x[-1] * x[0], lambda r, dt: (n(r, dt, S),))
prog("negative_slice_and_index", lambda x: x[-2:, -3] ** 2, lambda r, dt: (n(r, dt, S),))
prog("none_leading", lambda x: x[None] * np.ones((2, 1, 1)), lambda r, dt: (n(r, dt, S),))
prog("none_middle", lambda x: x[:, None, :] - x[None, :, :], lambda r, dt: (n(r, dt, S),))
prog("ellipsis_last", lambda x: x[..., 1] ** 2, lambda r, dt: (n(r, dt, (2, 3, 4)),))
prog("ellipsis_none", lambda x: x[..., None] * np.ones(2), lambda r, dt: (n(r, dt, S),))
prog("slice_then_none", lambda x: x[1:, None] * x[:-1, None], lambda r, dt: (n(r, dt, S),))
prog("scalar_element", lambda x: x[1, 2] * x[2, -1] + x[0, 0], lambda r, dt: (n(r, dt, S),))
prog(
    "gather_repeated_const",
    lambda x: np.sum(x[np.array([0, 2, 2, 1, 0, 0])]),
    lambda r, dt: (n(r, dt, (4,)),),
    ref_grad=lambda a, w: np.array([3.0, 1.0, 2.0, 0.0]),
)
prog("gather_list_index", lambda x: x[[0, 2, 2, -1]] ** 2, lambda r, dt: (n(r, dt, (4,)),))
prog(
    "gather_int_array_arg",
    lambda x, idx: x[idx] * np.arange(1.0, 8.0),
    lambda r, dt: (n(r, dt, (5,)), np.array([4, 0, 4, 4, 1, 0, 2])),
    fwd=True,
)
prog(
    "gather_rows_repeated",
    lambda x, idx: x[idx] ** 2,
    lambda r, dt: (n(r, dt, S), np.array([2, 0, 2, 2])),
)
prog("gather_columns", lambda x: x[:, [3, 0, 3]] * 2.0, lambda r, dt: (n(r, dt, S),))
prog(
    "fancy_2d_pairs_repeated",
    lambda x: x[np.array([0, 1, 1, 0, 1]), np.array([2, 3, 3, 2, 3])],
    lambda r, dt: (n(r, dt, S),),
)


def _log_softmax(z):
    m = np.max(z, axis=1, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=1, keepdims=True))


prog(
    "fancy_logp_arange_labels",
    lambda z, labels: _log_softmax(z)[np.arange(z.shape[0]), labels],
    lambda r, dt: (n(r, dt, (5, 4)), np.array([1, 3, 3, 0, 1])),
)
_MASK = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, False]])
prog("const_bool_mask", lambda x: x[_MASK] ** 2, lambda r, dt: (n(r, dt, S),))
prog("const_bool_mask_rows", lambda x: x[np.array([True, False, True])] * 2.0, lambda r, dt: (n(r, dt, S),))
prog(
    "np_take_flat",
    lambda x: np.take(x, np.array([5, 0, 5, 11])) * 2.0,
    lambda r, dt: (n(r, dt, S),),
)
prog(
    "np_take_axis1",
    lambda x, idx: np.take(x, idx, axis=1) ** 2,
    lambda r, dt: (n(r, dt, S), np.array([0, 3, 3])),
)
prog(
    "take_along_axis",
    lambda x, idx: np.take_along_axis(x, idx, axis=1) * 2.0,
    lambda r, dt: (n(r, dt, S), np.array([[0, 0], [3, 1], [2, 2]])),
)
prog("gather_then_slice", lambda x: x[[0, 2]][:, 1:3] ** 2, lambda r, dt: (n(r, dt, S),))
prog("take_method", lambda x: x.take(np.array([1, 1, 0])) * 3.0, lambda r, dt: (n(r, dt, (4,)),))

# ======================================================================================
# creation and constants
# ======================================================================================

_C = np.random.default_rng(7).standard_normal(S)
prog("zeros_like", lambda x: np.zeros_like(x) + x**2, lambda r, dt: (n(r, dt, S),))
prog("ones_like", lambda x: np.ones_like(x) * x - np.ones_like(x), lambda r, dt: (n(r, dt, S),))
prog("full_like", lambda x: np.full_like(x, 3.0) * x, lambda r, dt: (n(r, dt, S),))
prog(
    "np_zeros_concrete_shape", lambda x: np.zeros(x.shape, x.dtype) + np.sin(x), lambda r, dt: (n(r, dt, S),)
)
prog("const_f64_array_promotes", lambda x: x * _C, lambda r, dt: (n(r, dt, S),))
prog("const_cast_to_x_dtype", lambda x: x * _C.astype(x.dtype), lambda r, dt: (n(r, dt, S),))
prog("const_int_arange_promotes", lambda x: np.arange(4) * x, lambda r, dt: (n(r, dt, S),))
prog("const_eye_matmul", lambda x: np.eye(3) @ x + x, lambda r, dt: (n(r, dt, S),))

# ======================================================================================
# pytrees, argnums
# ======================================================================================


def _mlp_params(r, dt):
    return {"w": n(r, dt, (4, 3)), "b": n(r, dt, (3,))}


def _mlp(p, x):
    return np.sum(np.tanh(x @ p["w"] + p["b"]) ** 2)


prog("pytree_dict_params", _mlp, lambda r, dt: (_mlp_params(r, dt), n(r, dt, (5, 4))), fwd=True)
prog("pytree_list_arg", lambda ab: np.sum(ab[0] * ab[1] ** 2), lambda r, dt: ([n(r, dt, S), n(r, dt, S)],))
prog("pytree_tuple_arg", lambda ab: np.sum(ab[0] @ ab[1]), lambda r, dt: ((n(r, dt, S), n(r, dt, (4, 2))),))


def _nested(params, x):
    h = x
    for layer in params["layers"]:
        h = np.tanh(h @ layer["w"] + layer["b"])
    return params["scale"] * np.sum(h**2)


prog(
    "pytree_nested_dict_list_float",
    _nested,
    lambda r, dt: (
        {
            "layers": [
                {"w": n(r, dt, (4, 3)), "b": n(r, dt, (3,))},
                {"w": n(r, dt, (3, 2)), "b": n(r, dt, (2,))},
            ],
            "scale": 0.5,
        },
        n(r, dt, (5, 4)),
    ),
)
prog(
    "pytree_none_leaf",
    lambda p: np.sum(p["w"] ** 2) + (0.0 if p["extra"] is None else 1.0),
    lambda r, dt: ({"w": n(r, dt, S), "extra": None},),
)
prog("pytree_argnums_tuple_dict_array", _mlp, lambda r, dt: (_mlp_params(r, dt), n(r, dt, (5, 4))), (0, 1))
prog(
    "argnums_negative",
    lambda x, y: np.sum(np.sin(x) * y),
    _two(),
    -1,
    ref_grad=lambda a, w: np.sin(f64(a[0])),
)
prog("argnums_tuple_negative", lambda x, y, z: np.sum(x * y * z), lambda r, dt: (n(r, dt, S),) * 3, (0, -1))
prog(
    "pytree_dict_output",
    lambda x: {"double": 2.0 * x, "total": np.sum(x**2), "pair": (x[0], x[1] * x[2])},
    lambda r, dt: (n(r, dt, S),),
)
prog("pytree_tuple_output", lambda x, y: (x * y, x - y), _two(), (0, 1))

# ======================================================================================
# numerically delicate losses and models
# ======================================================================================


def _lse(z):
    m = np.max(z, axis=-1, keepdims=True)
    return np.squeeze(m, -1) + np.log(np.sum(np.exp(z - m), axis=-1))


def _softmax(z):
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


prog(
    "logsumexp_max_sub",
    _lse,
    lambda r, dt: (n(r, dt, (4, 5)),),
    ref_grad=lambda a, w: w[0][:, None] * _softmax(f64(a[0])),
    fwd=True,
)
prog(
    "logsumexp_large_inputs",
    lambda z: np.sum(_lse(z)),
    lambda r, dt: ((n(r, np.float64, (3, 4)) * 3 + 95).astype(dt),),
    ref_grad=lambda a, w: _softmax(f64(a[0])),
)
prog(
    "logsumexp_stopgrad_max",
    lambda z: np.sum(
        td.stop_gradient(np.max(z, axis=1))
        + np.log(np.sum(np.exp(z - td.stop_gradient(np.max(z, axis=1, keepdims=True))), axis=1))
    ),
    lambda r, dt: (n(r, dt, (3, 5)),),
    ref_grad=lambda a, w: _softmax(f64(a[0])),
)
prog("softmax", _softmax, lambda r, dt: (n(r, dt, (3, 5)),))


def _xent(z, labels):
    logp = _log_softmax(z)
    return -np.mean(logp[np.arange(z.shape[0]), labels])


def _xent_ref(a, w):
    z, labels = f64(a[0]), a[1]
    oh = np.zeros_like(z)
    oh[np.arange(z.shape[0]), labels] = 1
    return (_softmax(z) - oh) / z.shape[0]


prog(
    "softmax_cross_entropy",
    _xent,
    lambda r, dt: (n(r, dt, (6, 4)) * 3, np.array([0, 3, 1, 1, 2, 3])),
    ref_grad=_xent_ref,
    fwd=True,
)
prog(
    "softmax_xent_onehot",
    lambda z, y: -np.sum(y * _log_softmax(z)) / z.shape[0],
    lambda r, dt: (n(r, dt, (5, 3)), np.eye(3, dtype=dt)[[0, 2, 1, 1, 0]]),
)
prog(
    "logistic_loss_logaddexp",
    lambda z, y: np.mean(np.logaddexp(0.0, -y * z)),
    lambda r, dt: (n(r, dt, (6,)) * 4, np.where(r.uniform(size=6) < 0.5, -1.0, 1.0).astype(dt)),
    ref_grad=lambda a, w: -f64(a[1]) / (1 + np.exp(f64(a[1]) * f64(a[0]))) / 6,
)
prog(
    "bce_with_logits_log1p_abs",
    lambda z, y: np.mean(np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))),
    lambda r, dt: (away(r, dt, (6,), 0.3, 5), (r.uniform(size=6) < 0.5).astype(dt)),
    ref_grad=lambda a, w: (1 / (1 + np.exp(-f64(a[0]))) - f64(a[1])) / 6,
)


def _logreg(w, x, y):
    p = 1 / (1 + np.exp(-(x @ w)))
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


prog(
    "logistic_regression_api_example",
    _logreg,
    lambda r, dt: (n(r, dt, (3,)) * 0.5, n(r, dt, (6, 3)), (r.uniform(size=6) < 0.5).astype(dt)),
    ref_grad=lambda a, w: f64(a[1]).T @ (1 / (1 + np.exp(-(f64(a[1]) @ f64(a[0])))) - f64(a[2])) / 6,
)
prog(
    "ridge_regression",
    lambda w, X, y: np.mean((X @ w - y) ** 2) + 0.1 * np.sum(w**2),
    lambda r, dt: (n(r, dt, (3,)), n(r, dt, (6, 3)), n(r, dt, (6,))),
    ref_grad=lambda a, w: 2 * f64(a[1]).T @ (f64(a[1]) @ f64(a[0]) - f64(a[2])) / 6 + 0.2 * f64(a[0]),
)


def _huber_dom(r, dt):
    z = np.where(r.uniform(size=S) < 0.5, r.uniform(-0.8, 0.8, S), away(r, np.float64, S, 1.2, 3))
    return (z.astype(dt),)


prog(
    "huber_where",
    lambda z: np.sum(np.where(np.abs(z) < 1.0, 0.5 * z**2, np.abs(z) - 0.5)),
    _huber_dom,
    ref_grad=lambda a, w: np.clip(f64(a[0]), -1, 1),
)


def _mlp2(params, x, y):
    h = np.tanh(x @ params[0] + params[1])
    out = h @ params[2] + params[3]
    return np.mean((out - y) ** 2)


prog(
    "mlp_two_layer_list_params",
    _mlp2,
    lambda r, dt: (
        [n(r, dt, (3, 5)), n(r, dt, (5,)), n(r, dt, (5, 2)), n(r, dt, (2,))],
        n(r, dt, (6, 3)),
        n(r, dt, (6, 2)),
    ),
)
prog(
    "stop_gradient_product",
    lambda x: np.sum(x * td.stop_gradient(x)),
    lambda r, dt: (n(r, dt, S),),
    ref_grad=lambda a, w: f64(a[0]),
    extra={"fd": False},  # finite differences see x*x: the derivative differs by design
)
prog(
    "stop_gradient_target",
    lambda w, x: np.mean((x @ w - td.stop_gradient(x @ w * 0.5)) ** 2),
    lambda r, dt: (n(r, dt, (3,)), n(r, dt, (5, 3))),
    ref_grad=lambda a, w: 2 * f64(a[1]).T @ (0.5 * f64(a[1]) @ f64(a[0])) / 5,
    extra={"fd": False},
)

_A_CLOSURE = np.random.default_rng(11).standard_normal((5, 4))
prog(
    "closure_over_numpy_array",
    lambda x: np.sum(np.tanh(_A_CLOSURE @ x)),
    lambda r, dt: (n(r, dt, (4,)),),
    ref_grad=lambda a, w: _A_CLOSURE.T @ (1 - np.tanh(_A_CLOSURE @ f64(a[0])) ** 2),
)


def _make_closure():
    scale = np.array([1.0, -2.0, 0.5, 3.0])

    def f(x):
        return np.sum(np.sin(x * scale))

    return f


prog("closure_inner_function", _make_closure(), lambda r, dt: (n(r, dt, (4,)),))


def _oscillator(x0, v0, k):
    dt_ = 0.1
    x, v = x0, v0
    for _ in range(10):
        v = v - dt_ * k * x
        x = x + dt_ * v
    return np.sum(x**2) + np.sum(v**2)


prog(
    "time_stepped_10_steps",
    _oscillator,
    lambda r, dt: (n(r, dt, (4,)), n(r, dt, (4,)), u(r, dt, (4,), 0.5, 2)),
    (0, 1, 2),
    fwd=True,
)


def _n_steps(x, steps):
    for _ in range(steps):
        x = x + 0.1 * np.sin(x)
    return x


prog("static_int_steps_arg", _n_steps, lambda r, dt: (n(r, dt, (5,)), 7))


def _rnn(W, U, xs):
    h = np.zeros(W.shape[0], W.dtype)
    for t in range(xs.shape[0]):
        h = np.tanh(W @ h + U @ xs[t])
    return np.sum(h)


prog(
    "rnn_loop_over_time",
    _rnn,
    lambda r, dt: (n(r, dt, (4, 4)) * 0.5, n(r, dt, (4, 3)), n(r, dt, (5, 3))),
    (0, 1, 2),
)


def _newton_sqrt(a, iters):
    x = a
    for _ in range(iters):
        x = 0.5 * (x + a / x)
    return x


prog(
    "newton_sqrt_static_iters",
    _newton_sqrt,
    lambda r, dt: (u(r, dt, (5,), 0.5, 3), 6),
    ref_grad=lambda a, w: w[0] * 0.5 / np.sqrt(f64(a[0])),
)
prog(
    "gaussian_nll",
    lambda mu, log_sigma, x: np.sum(
        0.5 * ((x - mu) / np.exp(log_sigma)) ** 2 + log_sigma + 0.5 * np.log(2 * np.pi)
    ),
    lambda r, dt: (n(r, dt, (4,)), n(r, dt, (4,)) * 0.3, n(r, dt, (6, 4))),
    (0, 1),
)
prog(
    "layer_norm",
    lambda x, g, b: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * g + b,
    lambda r, dt: (n(r, dt, (3, 5)), n(r, dt, (5,)), n(r, dt, (5,))),
    (0, 1, 2),
)
prog(
    "attention_single_head",
    lambda q, k, v: _softmax(q @ k.T / np.sqrt(q.shape[-1])) @ v,
    lambda r, dt: (n(r, dt, (3, 4)), n(r, dt, (5, 4)), n(r, dt, (5, 2))),
    (0, 1, 2),
)
prog(
    "pairwise_sq_dists",
    lambda x: np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1),
    lambda r, dt: (n(r, dt, (4, 3)),),
)
prog(
    "polynomial_horner",
    lambda c, x: c[0] + x * (c[1] + x * (c[2] + x * c[3])),
    lambda r, dt: (n(r, dt, (4,)), n(r, dt, (6,))),
    (0, 1),
)


# ======================================================================================
# more things new users write: Python ints/bools/NumPy scalars, iteration, misc functions
# ======================================================================================

prog("python_int_arithmetic", lambda x: x * 3 / 2 + x.shape[0] - x**2, lambda r, dt: (n(r, dt, S),))
prog("len_and_size", lambda x: np.sum(x) / len(x) + x.size * x, lambda r, dt: (n(r, dt, S),))
prog("division_by_int", lambda x: x / 4, lambda r, dt: (n(r, dt, S),), ref_grad=lambda a, w: w[0] / 4)
prog("numpy_f64_scalar_constant", lambda x: x * np.float64(2.0), lambda r, dt: (n(r, dt, S),))
prog("numpy_f32_scalar_argument", lambda x, s: x * s, lambda r, dt: (n(r, dt, S), dt.type(1.5)), (0, 1))
prog(
    "int_array_argument_times_float",
    lambda x, i: x * i,
    lambda r, dt: (n(r, dt, S), np.arange(12).reshape(S)),
)
prog(
    "bool_mask_argument",
    lambda x, m: np.where(m, x**2, -x),
    lambda r, dt: (n(r, dt, S), r.uniform(size=S) < 0.5),
)


def _flagged(x, flag):
    if flag:
        return np.sum(x**2)
    return np.sum(np.sin(x))


prog("static_bool_true", _flagged, lambda r, dt: (n(r, dt, S), True), ref_grad=lambda a, w: 2 * f64(a[0]))
prog(
    "static_bool_false", _flagged, lambda r, dt: (n(r, dt, S), False), ref_grad=lambda a, w: np.cos(f64(a[0]))
)
prog("builtin_sum_iterates_rows", lambda x: sum(x) * 2.0, lambda r, dt: (n(r, dt, S),))
prog(
    "stack_list_comprehension",
    lambda x: np.stack([x[i] * (i + 1) for i in range(3)]),
    lambda r, dt: (n(r, dt, S),),
)


def _accumulate(x):
    acc = 0.0
    for i in range(x.shape[0]):
        acc = acc + x[i] @ x[i]
    return acc


prog(
    "accumulate_from_python_zero",
    _accumulate,
    lambda r, dt: (n(r, dt, S),),
    ref_grad=lambda a, w: 2 * f64(a[0]),
)
prog("reverse_columns", lambda x: x[:, ::-1] * np.arange(4.0), lambda r, dt: (n(r, dt, S),))
prog("einsum_ij_kj_ik", lambda a, b: np.einsum("ij,kj->ik", a, b), _two(n, n, S, (5, 4)), (0, 1))
prog("sum_keepdims_all", lambda x: x * np.sum(x, keepdims=True), lambda r, dt: (n(r, dt, S),))
prog("mean_keepdims_all_method", lambda x: x - x.mean(keepdims=True), lambda r, dt: (n(r, dt, S),))
prog("var_axis_tuple", lambda x: np.var(x, axis=(0, 2)), lambda r, dt: (n(r, dt, (2, 3, 4)),))
prog(
    "cumsum_then_index",
    lambda x: np.cumsum(x, axis=1)[:, -1] * np.cumsum(x, axis=1)[:, 0],
    lambda r, dt: (n(r, dt, S),),
)
prog("abs_pow_1_5", lambda x: np.abs(x) ** 1.5, lambda r, dt: (away(r, dt, S),))
prog("row_norms_sqrt", lambda x: np.sqrt(np.sum(x**2, axis=1)), lambda r, dt: (n(r, dt, S),))
prog(
    "rbf_kernel",
    lambda x, y: np.exp(-np.sum((x[:, None] - y[None]) ** 2, -1)),
    _two(n, n, (3, 2), (4, 2)),
    (0, 1),
)
prog("np_diff", lambda x: np.diff(x, axis=1) ** 2, lambda r, dt: (n(r, dt, S),))
prog(
    "np_split", lambda x: np.split(x, 2, axis=1)[0] * np.split(x, 2, axis=1)[1], lambda r, dt: (n(r, dt, S),)
)
prog("vdot", np.vdot, _two(n, n, (4,), (4,)), (0, 1))
prog("atleast_2d", lambda x: np.atleast_2d(x).T @ np.atleast_2d(x), lambda r, dt: (n(r, dt, (3,)),))
prog("fliplr_flipud", lambda x: np.fliplr(x) * np.flipud(x), lambda r, dt: (n(r, dt, S),))


def _zeros_in(r, dt):
    x = r.standard_normal(S)
    x[0, :2] = 0.0
    x[2, 3] = 0.0
    return (x.astype(dt),)


prog(
    "integer_powers_with_zeros",
    lambda x: 3 * x**2 + x**3 + x**1,
    _zeros_in,
    ref_grad=lambda a, w: w[0] * (6 * f64(a[0]) + 3 * f64(a[0]) ** 2 + 1),
)

# ======================================================================================
# the table-driven tests
# ======================================================================================

CASES = [pytest.param(p, dt, id=f"{p.name}-{dt.name}") for p in PROGRAMS for dt in p.dtypes]
# stop_gradient programs: finite differences see a different function by design (checked by ref_grad)
FD_CASES = [
    pytest.param(p, dt, id=f"{p.name}-{dt.name}")
    for p in PROGRAMS
    for dt in p.dtypes
    if p.extra.get("fd", True)
]


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _nums(p: Program, nargs: int) -> tuple[int, ...]:
    nums = (p.argnums,) if isinstance(p.argnums, int) else tuple(p.argnums)
    return tuple(a % nargs for a in nums)


def _scalarize(p: Program, args):
    """(f_scalar, weights): f itself if it returns a scalar, else sum_i <out_i, W_i>."""
    out = p.fn(*args)
    if not isinstance(out, (dict, list, tuple)) and np.ndim(out) == 0:
        return p.fn, None
    r = np.random.default_rng(1234)
    ws = [r.uniform(0.5, 1.5, np.shape(o)).astype(np.asarray(o).dtype) for o in leaves(out)]

    def f_scalar(*a):
        total = None
        for o, w in zip(leaves(p.fn(*a)), ws):
            t = np.sum(o * w)
            total = t if total is None else total + t
        return total

    f_scalar.__name__ = f"scalarized_{p.name}"
    return f_scalar, [w.astype(np.float64) for w in ws]


def _sub(f, args, nums):
    """f as a function of the differentiated arguments only (others closed over)."""

    def sub(*wrt):
        full = list(args)
        for i, w in zip(nums, wrt):
            full[i] = w
        return f(*full)

    return sub, [args[i] for i in nums]


def test_table_is_broad():
    assert len(PROGRAMS) >= 120
    assert len({p.name for p in PROGRAMS}) == len(PROGRAMS)


@pytest.mark.parametrize("p,dt", CASES)
def test_forward_matches_numpy(p, dt):
    args = p.gen(_rng(p.name), dt)
    with np.errstate(all="raise"):
        want = p.fn(*args)
    got = td.jit(p.fn, target="interpret")(*args)
    assert_close_tree(got, want, p.fwd_rtol or FWD_RTOL[dt], what=f"{p.name} forward")
    # same container structure as NumPy's result
    assert_same_structure(got, want, "output")


@pytest.mark.parametrize("p,dt", CASES)
def test_value_and_grad(p, dt):
    args = p.gen(_rng(p.name), dt)
    fs, ws = _scalarize(p, args)
    val, g = td.value_and_grad(fs, argnums=p.argnums)(*args)
    want = fs(*args)
    assert_close_tree(val, want, FWD_RTOL[dt], what=f"{p.name} value")
    nums = _nums(p, len(args))
    gs = (g,) if isinstance(p.argnums, int) else g
    if not isinstance(p.argnums, int):
        assert type(g) is tuple and len(g) == len(nums)
    for gi, i in zip(gs, nums):
        assert_same_structure(gi, args[i], f"grad wrt arg {i}")
    if p.ref_grad is not None:
        ref = p.ref_grad(args, ws)
        refs = (ref,) if isinstance(p.argnums, int) else ref
        tol = 1e-5 if dt == F32 else 1e-10
        assert_close_tree(gs, tuple(refs), tol, what=f"{p.name} grad vs closed form", check_dtype=False)
    if dt == F64 and p.extra.get("fd", True):
        sub, wrt = _sub(fs, args, nums)
        flat, rebuilds = [], []
        for w in wrt:
            lv, rb = flatten(w)
            flat.append(lv)
            rebuilds.append(rb)
        sizes = [len(lv) for lv in flat]

        def f_flat(*ls):
            parts, pos = [], 0
            for k, rb in zip(sizes, rebuilds):
                parts.append(rb(ls[pos : pos + k]))
                pos += k
            return sub(*parts)

        num = central_diff_grad(f_flat, [x for lv in flat for x in lv])
        got = [x for gi in gs for x in flatten(gi)[0]]
        assert_close_tree(got, num, 1e-6, what=f"{p.name} grad vs central differences", check_dtype=False)


@pytest.mark.parametrize("p,dt", FD_CASES)
def test_check_grads(p, dt):
    args = p.gen(_rng(p.name), dt)
    fs, _ = _scalarize(p, args)
    sub, wrt = _sub(fs, args, _nums(p, len(args)))
    order = p.order if dt == F64 else 1
    modes = ("fwd", "rev") if p.fwd else ("rev",)
    td.check_grads(sub, wrt, order=order, modes=modes)


# ======================================================================================
# weak typing and dtypes
# ======================================================================================


def test_f32_times_python_float_stays_f32():
    x = np.linspace(-1, 1, 6, dtype=np.float32)
    out = td.jit(lambda x: x * 2.0 + 0.5, target="interpret")(x)
    assert out.dtype == np.float32
    val, g = td.value_and_grad(lambda x: np.sum(x * 2.0) / 3.0)(x)
    assert np.asarray(val).dtype == np.float32 and g.dtype == np.float32
    np.testing.assert_allclose(g, np.full(6, 2.0 / 3.0, np.float32), rtol=1e-6)


def test_python_float_argument_stays_weak():
    x = np.linspace(-1, 1, 6, dtype=np.float32)
    out = td.jit(lambda x, s: x * s, target="interpret")(x, 0.25)
    assert out.dtype == np.float32
    gx, gs = td.grad(lambda x, s: np.sum(x * s), argnums=(0, 1))(x, 0.25)
    assert gx.dtype == np.float32
    assert type(gs) is float
    assert gs == pytest.approx(float(np.sum(x)), rel=1e-6)


def test_grad_of_python_float_returns_float():
    g = td.grad(lambda s: s**3 + np.sin(s))(2.0)
    assert type(g) is float
    assert g == pytest.approx(12.0 + math.cos(2.0), rel=1e-12)


def test_value_of_python_float_function_is_float():
    v, g = td.value_and_grad(lambda s: s * s)(3.0)
    assert isinstance(v, float) and v == 9.0
    assert type(g) is float and g == 6.0


def test_float32_grads_of_float32_params():
    r = np.random.default_rng(0)
    p = {"w": r.standard_normal((4, 3)).astype(np.float32), "b": np.zeros(3, np.float32)}
    x = r.standard_normal((5, 4)).astype(np.float32)
    g = td.grad(_mlp)(p, x)
    assert g["w"].dtype == np.float32 and g["b"].dtype == np.float32


def test_mixed_f32_f64_promotes_like_numpy():
    x32 = np.ones(3, np.float32)
    x64 = np.ones(3, np.float64)
    out = td.jit(lambda a, b: a * b, target="interpret")(x32, x64)
    assert out.dtype == np.float64
    ga, gb = td.grad(lambda a, b: np.sum(a * b), argnums=(0, 1))(x32, x64)
    assert ga.dtype == np.float32 and gb.dtype == np.float64


def test_jit_cache_reuses_with_new_values():
    f = td.jit(lambda x: np.sum(x**2), target="interpret")
    a = np.arange(4.0)
    assert f(a) == pytest.approx(14.0)
    assert f(a + 1) == pytest.approx(30.0)
    assert f(np.arange(3.0)) == pytest.approx(5.0)


def test_static_int_argument_changes_program():
    f = td.grad(lambda x, k: np.sum(x**k))
    x = np.array([1.5, -2.0])
    np.testing.assert_allclose(f(x, 2), 2 * x)
    np.testing.assert_allclose(f(x, 3), 3 * x**2)


# ======================================================================================
# pytrees, argnums, has_aux
# ======================================================================================


def test_grad_structure_nested_pytree():
    r = np.random.default_rng(3)
    params = {
        "enc": [r.standard_normal((3, 2)), (r.standard_normal(2), None)],
        "dec": {"w": r.standard_normal((2, 3))},
        "temp": 0.5,
    }

    def f(p):
        h = np.tanh(np.ones(3) @ p["enc"][0] + p["enc"][1][0])
        return p["temp"] * np.sum(h @ p["dec"]["w"])

    g = td.grad(f)(params)
    assert_same_structure(g, params, "params")
    assert g["enc"][1][1] is None


def test_argnums_int_tuple_negative():
    x, y, z = np.array([1.0, 2.0]), np.array([3.0, -1.0]), np.array([0.5, 4.0])

    def f(x, y, z):
        return np.sum(x * y**2 * z**3)

    gx = td.grad(f)(x, y, z)
    np.testing.assert_allclose(gx, y**2 * z**3)
    gy = td.grad(f, argnums=1)(x, y, z)
    np.testing.assert_allclose(gy, 2 * x * y * z**3)
    gz = td.grad(f, argnums=-1)(x, y, z)
    np.testing.assert_allclose(gz, 3 * x * y**2 * z**2)
    g = td.grad(f, argnums=(2, 0))(x, y, z)
    assert type(g) is tuple and len(g) == 2
    np.testing.assert_allclose(g[0], 3 * x * y**2 * z**2)
    np.testing.assert_allclose(g[1], y**2 * z**3)
    g1 = td.grad(f, argnums=(1,))(x, y, z)
    assert type(g1) is tuple and len(g1) == 1


def test_has_aux_value_and_grad():
    def loss(w, x):
        pred = x @ w
        return np.mean(pred**2), {"pred": pred, "n": x.shape[0]}

    w, x = np.array([1.0, -2.0]), np.array([[1.0, 2.0], [3.0, 4.0], [0.5, 0.0]])
    (val, aux), g = td.value_and_grad(loss, has_aux=True)(w, x)
    pred = x @ w
    assert val == pytest.approx(np.mean(pred**2))
    np.testing.assert_allclose(aux["pred"], pred)
    assert aux["n"] == 3
    np.testing.assert_allclose(g, 2 * x.T @ pred / 3)
    g2, aux2 = td.grad(loss, has_aux=True)(w, x)
    np.testing.assert_allclose(g2, g)
    np.testing.assert_allclose(aux2["pred"], pred)


def test_vjp_returns_tuple_per_primal():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    out, f_vjp = td.vjp(lambda x, y: x * np.sin(y), x, y)
    np.testing.assert_allclose(out, x * np.sin(y))
    ct = np.array([1.0, 2.0, -1.0])
    gx, gy = f_vjp(ct)
    np.testing.assert_allclose(gx, ct * np.sin(y))
    np.testing.assert_allclose(gy, ct * x * np.cos(y))


def test_jvp_closed_form():
    x, t = np.array([0.3, -1.2, 2.0]), np.array([1.0, 0.5, -2.0])
    out, tout = td.jvp(lambda x: np.tanh(x) * x, (x,), (t,))
    np.testing.assert_allclose(out, np.tanh(x) * x)
    np.testing.assert_allclose(tout, ((1 - np.tanh(x) ** 2) * x + np.tanh(x)) * t, rtol=1e-12)


def test_jit_grad_and_grad_jit_agree():
    def f(x):
        return np.sum(np.exp(-(x**2)) * np.cos(x))

    x = np.linspace(-2, 2, 5)
    want = np.exp(-(x**2)) * (-2 * x * np.cos(x) - np.sin(x))
    np.testing.assert_allclose(td.grad(f)(x), want, rtol=1e-12)
    np.testing.assert_allclose(td.jit(td.grad(f), target="interpret")(x), want, rtol=1e-12)
    np.testing.assert_allclose(td.grad(td.jit(f, target="interpret"))(x), want, rtol=1e-12)


# ======================================================================================
# higher derivatives
# ======================================================================================


@pytest.mark.parametrize(
    "name,f,d1,d2,d3",
    [
        ("sin", np.sin, np.cos, lambda x: -np.sin(x), lambda x: -np.cos(x)),
        (
            "exp2x",
            lambda x: np.exp(2 * x),
            lambda x: 2 * np.exp(2 * x),
            lambda x: 4 * np.exp(2 * x),
            lambda x: 8 * np.exp(2 * x),
        ),
        ("x4", lambda x: x**4, lambda x: 4 * x**3, lambda x: 12 * x**2, lambda x: 24 * x),
        ("log", np.log, lambda x: 1 / x, lambda x: -1 / x**2, lambda x: 2 / x**3),
        (
            "tanh",
            np.tanh,
            lambda x: 1 - np.tanh(x) ** 2,
            lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2),
            lambda x: -2 * (1 - np.tanh(x) ** 2) * (1 - 3 * np.tanh(x) ** 2),
        ),
        ("sqrt", np.sqrt, lambda x: 0.5 * x**-0.5, lambda x: -0.25 * x**-1.5, lambda x: 0.375 * x**-2.5),
        (
            "x_sin_x",
            lambda x: x * np.sin(x),
            lambda x: np.sin(x) + x * np.cos(x),
            lambda x: 2 * np.cos(x) - x * np.sin(x),
            lambda x: -3 * np.sin(x) - x * np.cos(x),
        ),
    ],
)
@pytest.mark.parametrize("kind", ["python_float", "0d_array"])
def test_third_derivatives_closed_form(name, f, d1, d2, d3, kind):
    x = 0.7
    arg = x if kind == "python_float" else np.array(x)
    g1 = td.grad(f)
    g2 = td.grad(g1)
    g3 = td.grad(g2)
    assert float(g1(arg)) == pytest.approx(float(d1(x)), rel=1e-12)
    assert float(g2(arg)) == pytest.approx(float(d2(x)), rel=1e-12)
    assert float(g3(arg)) == pytest.approx(float(d3(x)), rel=1e-11)


@pytest.mark.parametrize(
    "name,f,k,want",
    [
        ("d3_x2", lambda x: x**2, 3, 0.0),
        ("d2_x1", lambda x: x**1, 2, 0.0),
        ("d4_x3", lambda x: x**3, 4, 0.0),
        ("d2_x2", lambda x: x**2, 2, 2.0),
        ("d3_x3", lambda x: x**3, 3, 6.0),
    ],
)
def test_higher_derivatives_of_integer_powers_at_zero(name, f, k, want):
    g = f
    for _ in range(k):
        g = td.grad(g)
    assert float(g(0.0)) == want


def test_grad_of_grad_python_float_returns_float():
    assert type(td.grad(td.grad(lambda s: s**3))(2.0)) is float


def test_max_and_maximum_ties_give_a_subgradient():
    g = td.grad(lambda x: np.max(x))(np.array([1.0, 3.0, 3.0]))
    assert g[0] == 0 and g.sum() == pytest.approx(1.0) and np.all(g >= 0)
    gx, gy = td.grad(lambda x, y: np.sum(np.maximum(x, y)), argnums=(0, 1))(
        np.array([1.0, 2.0]), np.array([1.0, 0.0])
    )
    np.testing.assert_allclose(gx + gy, [1.0, 1.0])
    g2 = td.grad(lambda x: np.sum(np.min(x, axis=1)))(np.array([[1.0, 1.0], [2.0, 0.0]]))
    np.testing.assert_allclose(g2.sum(axis=1), [1.0, 1.0])


def test_grad_of_grad_of_sum_function():
    # d/dx_i of sum_j d/dx_j (sum x^3) = d/dx_i sum 3 x_j^2 = 6 x_i
    def f(x):
        return np.sum(x**3)

    def h(x):
        return np.sum(td.grad(f)(x))

    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(td.grad(h)(x), 6 * x, rtol=1e-12)


def test_grad_through_closure_of_outer_tracer():
    # d/dy [ d/dx (x*y)^2 at x ] = d/dy [2 x y^2] = 4 x y
    def inner(y):
        return td.grad(lambda x: (x * y) ** 2)(1.5)

    assert td.grad(inner)(2.0) == pytest.approx(4 * 1.5 * 2.0)


# ======================================================================================
# jacobians / hessians
# ======================================================================================


def test_jacobian_elementwise_is_diagonal():
    x = np.array([0.1, -0.7, 1.3])
    want = np.diag(np.cos(x) * x + np.sin(x))
    for jac in (td.jacobian, td.jacrev, td.jacfwd):
        np.testing.assert_allclose(jac(lambda x: np.sin(x) * x)(x), want, rtol=1e-12, atol=1e-15)


def test_jacobian_linear_map():
    A = np.arange(12.0).reshape(3, 4) / 7
    x = np.array([1.0, -1.0, 2.0, 0.5])
    np.testing.assert_allclose(td.jacobian(lambda x: A @ x)(x), A, rtol=1e-12)
    np.testing.assert_allclose(td.jacfwd(lambda x: A @ x)(x), A, rtol=1e-12)


def test_jacobian_matrix_input_shape():
    X = np.arange(6.0).reshape(2, 3) / 5
    J = td.jacobian(lambda X: np.sum(X**2, axis=1))(X)
    assert J.shape == (2, 2, 3)
    want = np.zeros((2, 2, 3))
    for i in range(2):
        want[i, i] = 2 * X[i]
    np.testing.assert_allclose(J, want, rtol=1e-12)


def test_jacobian_softmax_closed_form():
    z = np.array([0.2, -1.0, 1.5, 0.3])
    s = np.exp(z) / np.exp(z).sum()
    want = np.diag(s) - np.outer(s, s)
    np.testing.assert_allclose(td.jacrev(_softmax)(z), want, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(td.jacfwd(_softmax)(z), want, rtol=1e-10, atol=1e-14)


def test_jacobian_argnums_tuple():
    x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0, 0.5])
    jx, jy = td.jacobian(lambda x, y: np.outer(x, y).ravel(), argnums=(0, 1))(x, y)
    assert jx.shape == (6, 2) and jy.shape == (6, 3)
    np.testing.assert_allclose(jx, np.kron(np.eye(2), y[:, None]), rtol=1e-12)
    np.testing.assert_allclose(jy, np.kron(x[:, None], np.eye(3)), rtol=1e-12)


def test_hessian_quadratic():
    r = np.random.default_rng(5)
    A = r.standard_normal((4, 4))
    b = r.standard_normal(4)
    x = r.standard_normal(4)
    H = td.hessian(lambda x: 0.5 * x @ A @ x + b @ x)(x)
    np.testing.assert_allclose(H, 0.5 * (A + A.T), rtol=1e-12, atol=1e-14)


def test_hessian_cubic_and_logsumexp():
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(td.hessian(lambda x: np.sum(x**3))(x), np.diag(6 * x), rtol=1e-12, atol=1e-14)
    s = np.exp(x) / np.exp(x).sum()
    H = td.hessian(lambda x: _lse(x))(x)
    np.testing.assert_allclose(H, np.diag(s) - np.outer(s, s), rtol=1e-10, atol=1e-14)


def test_hessian_matches_jacfwd_of_grad():
    P = pos_def(np.random.default_rng(2), np.float64, 3)
    x = np.array([0.3, -0.2, 0.9])

    def f(x):
        return np.log(1 + x @ P @ x) + np.sum(np.sin(x))

    H1 = td.hessian(f)(x)
    H2 = td.jacfwd(td.grad(f))(x)
    H3 = td.jacrev(td.grad(f))(x)
    q = 1 + x @ P @ x
    g = 2 * P @ x
    want = 2 * P / q - np.outer(g, g) / q**2 - np.diag(np.sin(x))
    for H in (H1, H2, H3):
        np.testing.assert_allclose(H, want, rtol=1e-10, atol=1e-13)


# ======================================================================================
# gathers: the gradient is a scatter-ADD
# ======================================================================================


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_gather_repeated_indices_scatter_add(dt):
    x = np.arange(5, dtype=dt)
    idx = np.array([4, 0, 4, 4, 1, 0, 2])
    g = td.grad(lambda x, idx: np.sum(x[idx]))(x, idx)
    assert g.dtype == dt
    np.testing.assert_array_equal(g, np.bincount(idx, minlength=5).astype(dt))


def test_gather_2d_pairs_scatter_add():
    x = np.zeros((3, 4))
    rows, cols = np.array([0, 1, 1, 0, 1, 2]), np.array([2, 3, 3, 2, 3, 0])
    g = td.grad(lambda x: np.sum(x[rows, cols] * np.arange(1.0, 7.0)))(x)
    want = np.zeros((3, 4))
    np.add.at(want, (rows, cols), np.arange(1.0, 7.0))
    np.testing.assert_array_equal(g, want)


def test_take_and_take_along_axis_scatter_add():
    x = np.zeros((3, 4))
    g = td.grad(lambda x: np.sum(np.take(x, np.array([1, 1, 3]), axis=1)))(x)
    want = np.zeros((3, 4))
    want[:, 1] = 2
    want[:, 3] = 1
    np.testing.assert_array_equal(g, want)
    idx = np.array([[0, 0], [3, 1], [2, 2]])
    g2 = td.grad(lambda x, i: np.sum(np.take_along_axis(x, i, axis=1)))(x, idx)
    want2 = np.zeros((3, 4))
    for rr in range(3):
        for c in idx[rr]:
            want2[rr, c] += 1
    np.testing.assert_array_equal(g2, want2)


def test_xent_labels_gradient_one_hot():
    z = np.zeros((4, 3))
    labels = np.array([2, 2, 0, 1])
    g = td.grad(_xent)(z, labels)
    oh = np.eye(3)[labels]
    np.testing.assert_allclose(g, (np.full((4, 3), 1 / 3) - oh) / 4, rtol=1e-12, atol=1e-15)


# ======================================================================================
# NaN / inf propagate like NumPy
# ======================================================================================


def test_nan_inf_propagate_like_numpy():
    x = np.array([np.nan, np.inf, -np.inf, -1.0, 0.0, 2.0])

    def f(x):
        return np.exp(x) + np.log(x) * 2.0

    with np.errstate(all="ignore"):
        want = f(x)
        got = td.jit(f, target="interpret")(x)
        np.testing.assert_array_equal(got, want)  # NaN positions and infinities equal
        g = td.grad(lambda x: np.sum(x * x))(x)
    np.testing.assert_array_equal(g, 2 * x)


def test_nan_in_one_element_does_not_spread_in_grad():
    x = np.array([1.0, np.nan, 3.0])
    g = td.grad(lambda x: np.sum(np.sin(x)))(x)
    assert np.isnan(g[1])
    np.testing.assert_allclose(g[[0, 2]], np.cos(x[[0, 2]]))


# ======================================================================================
# user errors: type, what the message names, and the user's file:line
# ======================================================================================

_HERE = re.compile(r"test_programs\.py:\d+")


def _line() -> int:
    """The caller's next line number."""
    return sys._getframe(1).f_lineno + 1


def _assert_points_here(msg: str, line: int | None = None):
    assert _HERE.search(msg), f"message does not point at test_programs.py:LINE: {msg!r}"
    if line is not None:
        assert f"test_programs.py:{line}" in msg, f"expected line {line} in {msg!r}"


def _shape_in(msg: str, shape) -> bool:
    m = msg.replace(" ", "")
    return ",".join(map(str, shape)) in m


def test_error_if_on_traced_array():
    lines = []

    def f(x):
        lines.append(_line())
        if x > 0:  # a traced scalar condition is a `cond`; an array one is ambiguous
            return np.sum(x)
        return -np.sum(x)

    with pytest.raises(ValueError) as ei:
        td.grad(f)(np.ones(3))
    msg = str(ei.value)
    assert "ambiguous" in msg and "np.any" in msg
    _assert_points_here(msg, lines[0])


def test_error_float_of_traced_value():
    lines = []

    def f(x):
        lines.append(_line())
        return float(np.sum(x)) * x[0]

    with pytest.raises(TypeError) as ei:
        td.grad(f)(np.ones(3))
    msg = str(ei.value)
    assert "float()" in msg
    _assert_points_here(msg, lines[0])


def test_error_int_of_traced_value():
    lines = []

    def f(x):
        lines.append(_line())
        k = int(x[0])
        return np.sum(x) * k

    with pytest.raises(TypeError) as ei:
        td.grad(f)(np.ones(3))
    msg = str(ei.value)
    assert "int()" in msg
    _assert_points_here(msg, lines[0])


@pytest.mark.parametrize(
    "fn_name,call",
    [
        ("hfft", lambda x: np.fft.hfft(x)),
        ("unique", lambda x: np.unique(x)),
        ("histogram", lambda x: np.histogram(x)[0]),
    ],
)
def test_error_unsupported_numpy_function(fn_name, call):
    lines = []

    def f(x):
        lines.append(_line())
        return np.sum(call(x))

    with pytest.raises((NotImplementedError, td.TracediffError)) as ei:
        td.grad(f)(np.array([3.0, 1.0, 2.0]))
    msg = str(ei.value)
    assert fn_name in msg
    _assert_points_here(msg)


def test_error_grad_of_non_scalar_output():
    def f(x):
        return np.sin(x)

    with pytest.raises(TypeError) as ei:
        td.grad(f)(np.ones((3, 4)))
    msg = str(ei.value)
    assert "scalar" in msg and _shape_in(msg, (3, 4))
    _assert_points_here(msg)


def test_error_elementwise_shape_mismatch():
    lines = []

    def f(x, y):
        lines.append(_line())
        return np.sum(x + y)

    with pytest.raises(ValueError) as ei:
        td.grad(f)(np.ones((3, 4)), np.ones(5))
    msg = str(ei.value)
    assert "add" in msg and _shape_in(msg, (3, 4)) and "5" in msg
    _assert_points_here(msg, lines[0])


def test_error_matmul_shape_mismatch():
    lines = []

    def f(a, b):
        lines.append(_line())
        return np.sum(a @ b)

    with pytest.raises(ValueError) as ei:
        td.grad(f)(np.ones((3, 4)), np.ones((5, 2)))
    msg = str(ei.value)
    assert "matmul" in msg and _shape_in(msg, (3, 4)) and _shape_in(msg, (5, 2))
    _assert_points_here(msg, lines[0])


def test_error_argnums_out_of_range():
    def f(x, y):
        return np.sum(x * y)

    with pytest.raises(ValueError) as ei:
        td.grad(f, argnums=2)(np.ones(3), np.ones(3))
    msg = str(ei.value)
    assert "argnums" in msg and "2" in msg
    _assert_points_here(msg)


def test_error_has_aux_not_a_pair():
    def f(x):
        return np.sum(x**2)

    with pytest.raises(TypeError) as ei:
        td.value_and_grad(f, has_aux=True)(np.ones(3))
    msg = str(ei.value)
    assert "has_aux" in msg and "pair" in msg
    _assert_points_here(msg)


def test_error_grad_wrt_integer_array():
    def loss(z, labels):
        return np.sum(z[np.arange(3), labels])

    with pytest.raises(TypeError) as ei:
        td.grad(loss, argnums=1)(np.ones((3, 4)), np.array([0, 1, 2]))
    msg = str(ei.value)
    assert "labels" in msg and "int" in msg
    _assert_points_here(msg)


def test_error_traced_bool_mask_index():
    lines = []

    def f(x):
        lines.append(_line())
        return np.sum(x[x > 0])

    with pytest.raises((TypeError, IndexError, NotImplementedError, td.TracediffError)) as ei:
        td.grad(f)(np.array([1.0, -2.0, 3.0]))
    msg = str(ei.value)
    assert "bool" in msg.lower() or "mask" in msg.lower()
    _assert_points_here(msg, lines[0])


# ======================================================================================
# compiled: the Numba CPU backend agrees with the NumPy interpreter on every program
# ======================================================================================

CPU_RTOL = {F32: 1e-5, F64: 1e-11}


@pytest.mark.parametrize("p,dt", CASES)
def test_cpu_matches_interpreter(p, dt):
    args = p.gen(_rng(p.name), dt)
    fs, _ = _scalarize(p, args)
    vg = td.value_and_grad(fs, argnums=p.argnums)

    def both(*a):  # forward and value_and_grad in one program: one compile
        return p.fn(*a), vg(*a)

    want, want_vg = td.jit(both, target="interpret")(*args)
    got, got_vg = td.jit(both, target="cpu")(*args)
    assert_close_tree(got, want, CPU_RTOL[dt], what=f"{p.name} compiled forward")
    assert_same_structure(got, want, "output")
    assert_close_tree(got_vg, want_vg, CPU_RTOL[dt], what=f"{p.name} compiled value_and_grad")
