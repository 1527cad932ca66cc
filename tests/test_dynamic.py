"""Dynamic programs: Python control flow on traced values, in-place updates, aliasing,
and lists/dicts changed in the function.

Each program is a plain module-level NumPy function with its own inputs. For every
program and input set the tests check:

1. values: plain NumPy == `td.jit(f, target="interpret")` == `td.jit(f)` (rtol 1e-12);
2. the caller's inputs are unchanged after every call (plain, jit, grad, check_grads);
3. reverse mode: eager `td.value_and_grad` == `td.jit(td.grad(...))`, and
   `td.check_grads(f, args, order=1)`; `order=2` for the smooth ones (ORDER2);
4. the inputs of a program take every branch of it (`test_every_branch_is_taken`
   records which way each conditional jump of the plain function went).

Forward mode and second order go through every loop, a `while` with a traced test
included (a loop's adjoint is a scan, and a scan's adjoint is a scan again).
"""

from __future__ import annotations

import copy
import dis
import functools
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.special as sps

import tracediff as td

# (check, program) or (check, "program-k" for input set k) -> reason; the test is
# xfail(strict=True), so a fix makes it fail until it is removed from here.
# checks: "values", "grads", "forward", "order2", "branches"
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def _known(reason: str, checks: str, *names: str) -> None:
    for check in checks.split():
        for name in names:
            KNOWN_FAILURES[(check, name)] = reason


_known(
    "a view of a NumPy array made in the function, written with traced values: a TracerError "
    "naming the line (the update would have to reach the viewed array)",
    "values grads order2",
    "alias_out_view",
    "alias_view_of_numpy_array",
)
_known(
    "a list/dict changed in a traced `if` branch: a TracerError naming the line",
    "values grads",
    "list_append_in_branch",
    "dict_in_branch",
    "dict_in_loop",
)
_known("(as above)", "order2", "list_append_in_branch", "dict_in_loop")

# programs whose derivatives go through a `while` with a traced test: first-order
# reverse mode is checked; forward mode (and so second order) must raise a clear
# error (a TypeError naming the loop) until it is supported


def _r(seed: int, *shape: int, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(lo, hi, shape)


@dataclass(frozen=True)
class Case:
    category: str
    fn: Callable
    inputs: tuple[tuple, ...]  # input sets; together they take every branch
    argnums: tuple[int, ...]  # the float arguments
    order2: bool = False  # smooth at every input set: check_grads(order=2) too


CASES: dict[str, Case] = {}


def program(category: str, *inputs: tuple, argnums: tuple[int, ...], order2: bool = False):
    def register(fn):
        CASES[fn.__name__] = Case(category, fn, inputs, argnums, order2)
        return fn

    return register


F = np.float64


# --- 1. value-dependent `if` ------------------------------------------------------------


@program("if", (F(-2.0),), (F(0.3),), (F(1.7),), argnums=(0,), order2=True)
def if_piecewise(x):
    if x < -1.0:
        y = -x - 0.5
    elif x < 1.0:
        y = 0.5 * x * x
    else:
        y = x - 0.5
    return y * np.exp(0.1 * x)


@program(
    "if",
    (_r(1, 4, lo=2.5, hi=3.5), 1.5),
    (_r(2, 4, lo=0.5, hi=1.5), 1.5),
    (_r(3, 4, lo=-1.5, hi=-0.5), 1.5),
    (_r(4, 4, lo=-3.5, hi=-2.5), 1.5),
    argnums=(0, 1),
    order2=True,
)
def if_elif_chain(x, a):
    m = np.mean(x)
    if m > 2.0:
        r = np.sum(x * a)
    elif m > 0.0:
        r = np.sum(np.sin(x) * a)
    elif m > -2.0:
        r = np.sum(x**2) * a
    else:
        r = -np.sum(np.exp(x / 4))
    return r


@program(
    "if",
    (F(1.0), F(2.0)),
    (F(1.0), F(-1.0)),
    (F(-1.0), F(0.5)),
    (F(-1.0), F(-2.0)),
    argnums=(0, 1),
    order2=True,
)
def if_nested(x, y):
    if x > 0:
        if y > 0:
            z = x * y
        else:
            z = x - y * y
    else:
        if y > x:
            z = np.sin(x) + y
        else:
            z = np.cos(y) * x
    return z + 1.0


@program(
    "if",
    (np.array([-1.0, -2.0, 0.5]),),
    (np.array([2.0, 3.0, 1.0]),),
    (np.array([0.5, 0.2, 1.0]),),
    argnums=(0,),
    order2=True,
)
def if_early_return(x):
    s = np.sum(x)
    if s < 0.0:
        return -s * 2.0
    t = np.sum(x * x)
    if t > 10.0:
        return np.sqrt(t)
    return t + s


@program(
    "if",
    (np.array([1.0, 2.0, 3.0]), np.array([0.5, -0.2, 0.1])),
    (np.array([-1.0, 0.2, 0.3]), np.array([0.5, 0.7, 0.9])),
    (np.array([1.0, 0.2, -3.0]), np.array([-0.5, 0.7, 0.9])),
    argnums=(0, 1),
)
def if_expression(x, y):
    a = x * 2.0 if np.sum(x) > np.sum(y) else y * 3.0
    b = np.max(a) if a[0] > 0 else np.min(a)
    return b + np.sum(a * a)


@program(
    "if",
    (F(1.0), F(1.0)),
    (F(1.0), F(-1.0)),
    (F(-0.5), F(2.0)),
    (F(-2.0), F(0.5)),
    (F(-0.5), F(0.5)),
    argnums=(0, 1),
    order2=True,
)
def if_and_or_not(x, y):
    if x > 0 and y > 0:
        r = x * y
    elif x > 0 or y > 1.0:
        r = x + y * y
    elif not (x > -1.0):
        r = x * x
    else:
        r = y * y - x
    return r


@program(
    "if",
    (np.array([1.0, 2.0, -0.5]), np.array([0.3, 0.2, 0.1])),
    (np.array([-1.0, 2.0, -0.5]), np.array([0.9, 0.2, 0.1])),
    argnums=(0, 1),
    order2=True,
)
def if_defines_after(x, w):
    if np.dot(x, w) > 0:
        scale = 2.0 * np.sum(w)
        shift = x * 0.5
    else:
        scale = np.sum(x * x)
        shift = -w
    return np.sum(scale * x + shift)


@program(
    "if", (np.array([0.5, 2.0, -1.0, 3.0]),), (np.array([4.0, 2.0, -1.0, 3.0]),), argnums=(0,), order2=True
)
def if_swap_ends(x):
    y = x.copy()
    if y[0] < y[-1]:
        y[0], y[-1] = y[-1], y[0]
    return y * np.arange(1.0, 5.0)


@program("if", (_r(5, 3), np.int64(2)), (_r(5, 3), np.int64(3)), argnums=(0,), order2=True)
def if_int_condition(x, k):
    if k % 2 == 0:
        y = x * k
    else:
        y = x / k
    return np.sum(y**2)


@program("if", (np.array([3.0, -4.0, 1.0]), 2.0), (np.array([0.3, -0.4, 0.1]), 2.0), argnums=(0, 1))
def if_clip_norm(g, max_norm):
    n = np.sqrt(np.sum(g * g))
    if n > max_norm:
        g = g * (max_norm / n)
    return g, n


@program(
    "if",
    (np.array([0.5, 1.0, 2.0]),),
    (np.array([-0.5, -1.0, -2.0]),),
    (np.array([-0.5, 1.0, 2.0]),),
    argnums=(0,),
)
def if_any_all(x):
    if np.all(x > 0):
        r = np.sum(np.log(x))
    elif not np.any(x > 0):
        r = np.sum(x) * 2.0
    else:
        r = np.sum(np.abs(x))
    return r


@program(
    "if",
    (np.array([-2.0, 0.5]),),
    (np.array([0.5, 0.5]),),
    (np.array([2.0, 0.5]),),
    argnums=(0,),
    order2=True,
)
def if_store_in_nested_branch(x):
    h = x * 1.0
    if x[0] < -1.0:
        h[0] = -1.0
    else:
        if x[0] > 1.0:
            h[0] = x[0] * x[1]
    return h


# --- 2. value-dependent `while` ------------------------------------------------------------


@program("while", (F(2.0),), (F(50.0),), argnums=(0,), order2=True)
def while_newton_sqrt(c):
    x = c
    while np.abs(x * x - c) > 1e-12 * c:
        x = 0.5 * (x + c / x)
    return x


@program("while", (_r(6, 4, lo=0.5, hi=3.0),), argnums=(0,), order2=True)
def while_newton_cubic(a):
    x = np.ones_like(a)
    r = x**3 + a * x - 1.0
    while np.max(np.abs(r)) > 1e-13:
        x = x - r / (3 * x * x + a)
        r = x**3 + a * x - 1.0
    return x


# not order2: a finite difference of a second derivative flips the last bisection steps
@program("while", (F(5.0), F(0.0), F(4.0)), (F(0.3), F(-1.0), F(2.0)), argnums=(0, 1, 2))
def while_bisection(c, lo, hi):
    while hi - lo > 1e-10:
        mid = 0.5 * (lo + hi)
        if mid * mid * mid > c:
            hi = mid
        else:
            lo = mid
    x = 0.5 * (lo + hi)
    return x - (x * x * x - c) / (3.0 * x * x)  # a Newton step: the root's derivative in c


@program("while", (np.array([0.5, 0.7, 0.9]),), argnums=(0,), order2=True)
def while_fixed_point(a):
    x = np.zeros_like(a)
    dx = np.ones_like(a)
    while np.max(np.abs(dx)) > 1e-12:
        new = np.cos(a * x)
        dx = new - x
        x = new
    return x


@program("while", (np.array([0.0, 1.0, 3.0]),), (np.array([2.0, 2.0005, 1.9996]),), argnums=(0,), order2=True)
def while_true_break(x):
    s = x * 1.0
    n = 0
    while True:
        s = s * 0.5 + 1.0
        n += 1
        if np.max(np.abs(s - 2.0)) < 1e-3:
            break
    return s, n


@program("while", (np.array([0.1, 0.2]),), (np.array([1e20, 1.0]),), argnums=(0,), order2=True)
def while_and_limit(x):
    i = 0
    err = np.sum(x * x)
    while err > 1e-6 and i < 50:
        x = x * 0.5
        err = np.sum(x * x)
        i += 1
    return x, err, i


@program("while", (np.int64(84), np.int64(36), _r(7, 3)), (np.int64(5), np.int64(0), _r(7, 3)), argnums=(2,))
def while_euclid_ints(a, b, x):
    # the loop carries integers only: nothing to differentiate through it
    while b != 0:
        a, b = b, a % b
    return x * a


@program("while", (np.array([0.3, -0.5, 0.8]),), argnums=(0,), order2=True)
def while_descent(a):
    x = np.zeros_like(a)
    g = 2 * (x - a) + 4 * x**3
    while np.sqrt(np.sum(g * g)) > 1e-10:
        x = x - 0.1 * g
        g = 2 * (x - a) + 4 * x**3
    return np.sum(x**2)


@program("while", (np.array([0.5, -1.5, 2.0]),), argnums=(0,), order2=True)
def while_series_exp(x):
    term = np.ones_like(x)
    total = np.ones_like(x)
    k = 1.0
    while np.max(np.abs(term)) > 1e-17 * np.max(np.abs(total)):
        term = term * x / k
        total = total + term
        k = k + 1.0
    return total


@program("while", (np.array([4.0, 0.25, 2.0]),), argnums=(0,), order2=True)
def while_in_for(c):
    out = np.zeros_like(c)
    for i in range(c.shape[0]):
        x = 1.0
        while abs(x * x - c[i]) > 1e-12:
            x = 0.5 * (x + c[i] / x)
        out[i] = x
    return out


@program("while", (np.array([0.5, -1.0, 2.0]),), (np.array([30.0, -1.0, 2.0]),), argnums=(0,), order2=True)
def while_zero_trip(x):
    y = x * 1.0
    while np.sum(y * y) > 100.0:
        y = y * 0.75
    return y * np.sum(x)


# --- 3. value-dependent branches inside static loops ---------------------------------------


@program("loop", (F(1.0), F(0.0), F(0.05)), (F(3.0), F(1.0), F(0.04)), argnums=(0, 1, 2), order2=True)
def loop_bouncing_ball(p0, v0, dt):
    p, v = p0, v0
    for _ in range(12):
        v = v - 9.81 * dt
        p = p + v * dt
        if p < 0.0:
            p = -p
            v = -0.9 * v
    return p, v


@program("loop", (_r(8, 10, 3), _r(9, 4, 3), _r(10, 4, 4)), argnums=(0, 1, 2), order2=True)
def loop_rnn_gate(xs, W, U):
    h = np.zeros(W.shape[0])
    for t in range(xs.shape[0]):
        a = W @ xs[t] + U @ h
        if np.sum(a) > 0.0:
            h = np.tanh(a)
        else:
            h = 0.5 * h + 0.1 * np.sin(a)
    return np.sum(h * h)


@program("loop", (_r(11, 6), 0.5), (_r(11, 6), 5.0), argnums=(0, 1), order2=True)
def loop_break(x, limit):
    total = 0.0
    for i in range(x.shape[0]):
        total = total + x[i] * x[i]
        if total > limit:
            break
    return total


@program("loop", (np.array([0.5, -1.0, 2.0, -0.3, 0.7]),), argnums=(0,), order2=True)
def loop_continue(x):
    acc = 1.0
    for v in x:
        if v < 0.0:
            continue
        acc = acc * (1.0 + v)
    return acc


@program("loop", (np.array([1.0, -0.5, 2.0]), np.array([0.5, 0.5, -1.0])), argnums=(0, 1), order2=True)
def loop_enumerate_zip(x, w):
    s = 0.0
    for i, (a, b) in enumerate(zip(x, w)):
        if a > b:
            s = s + (a - b) * (i + 1)
        else:
            s = s - np.sin(a * b)
    return s


@program("loop", (np.array([0.3, 1.2, -0.5, 2.5, 2.0, 0.1]),), argnums=(0,))
def loop_argmax(x):
    best = x[0]
    idx = 0
    for i in range(1, x.shape[0]):
        if x[i] > best:
            best = x[i]
            idx = i
    return best * idx, idx


@program("loop", (F(0.2), F(3.0)), (F(0.2), F(0.3)), argnums=(0, 1), order2=True)
def loop_clamped_euler(y0, k):
    y = y0
    for _ in range(10):
        y = y + 0.1 * k * y * (2.0 - y)
        if y > 1.5:
            y = 1.5
    return y


@program("loop", (np.array([0.4, -1.0, 2.0, 0.1]),), argnums=(0,), order2=True)
def loop_bubble_sort(x):
    y = x.copy()
    n = y.shape[0]
    for i in range(n):
        for j in range(n - 1 - i):
            if y[j] > y[j + 1]:
                y[j], y[j + 1] = y[j + 1], y[j]
    return y * np.arange(1.0, n + 1)


@program("loop", (np.array([0.1, 0.2, 0.9, 0.3]), 0.5), (np.array([0.1, 0.2, 0.4, 0.3]), 0.5), argnums=(0, 1))
def loop_return_first(x, thr):
    for i in range(x.shape[0]):
        if x[i] > thr:
            return x[i] * i
    return np.sum(x)


@program("loop", (np.linspace(-2.3, 2.2, 12), 0.45), argnums=(0, 1))
def loop_soft_threshold(x, lam):
    out = x.copy()
    for i in range(x.shape[0]):
        if out[i] > lam:
            out[i] -= lam
        elif out[i] < -lam:
            out[i] += lam
        else:
            out[i] = 0.0
    return out


@program("loop", (np.array([-2.0, 0.5, 1.5, -0.2, 3.0, 0.9]),), argnums=(0,))
def loop_elementwise_elif(x):
    h = np.zeros_like(x)
    for i in range(x.shape[0]):
        v = x[i]
        if v < -1.0:
            h[i] = -1.0
        elif v > 1.0:
            h[i] = 1.0 + 0.1 * (v - 1.0)
        else:
            h[i] = v
    return h


# --- 4. in-place updates -----------------------------------------------------------------------


@program(
    "inplace",
    (_r(12, 10, lo=-1, hi=1), _r(13, 10, lo=4, hi=5), _r(14, 10, lo=-1, hi=1), _r(15, 10)),
    argnums=(0, 1, 2, 3),
    order2=True,
)
def inplace_thomas(a, b, c, d):
    n = d.shape[0]
    cp = np.zeros(n)
    dp = np.zeros(n)
    cp[0] = c[0] / b[0]
    dp[0] = d[0] / b[0]
    for i in range(1, n):
        m = b[i] - a[i] * cp[i - 1]
        cp[i] = c[i] / m
        dp[i] = (d[i] - a[i] * dp[i - 1]) / m
    x = np.zeros(n)
    x[n - 1] = dp[n - 1]
    for i in range(n - 2, -1, -1):
        x[i] = dp[i] - cp[i] * x[i + 1]
    return x


@program("inplace", (_r(16, 8), 0.2), argnums=(0, 1), order2=True)
def inplace_heat(u0, alpha):
    u = u0.copy()
    for _ in range(3):
        u[1:-1] = u[1:-1] + alpha * (u[2:] - 2.0 * u[1:-1] + u[:-2])
    return u


@program("inplace", (_r(17, 8), 0.2), argnums=(0, 1), order2=True)
def inplace_heat_neumann(u0, alpha):
    u = u0 * 1.0
    for _ in range(3):
        u[1:-1] += alpha * (u[2:] - 2.0 * u[1:-1] + u[:-2])
        u[0] = u[1]
        u[-1] = u[-2]
    return u


@program("inplace", (_r(18, 5),), argnums=(0,), order2=True)
def inplace_fill(x):
    n = x.shape[0]
    h = np.zeros(n + 1)
    h[0] = 1.0
    for i in range(n):
        h[i + 1] = h[i] * x[i] + 0.5
    return h


@program("inplace", (_r(19, 7), np.array([0, 2, 2, 3, 0, 1, 2])), argnums=(0,), order2=True)
def inplace_add_at(w, idx):
    h = np.zeros(4)
    np.add.at(h, idx, w)
    np.add.at(h, idx[::2], w[::2] * w[::2])
    return h * np.arange(1.0, 5.0)


@program("inplace", (_r(20, 2, 3), _r(21, 3)), argnums=(0, 1), order2=True)
def inplace_column_scale(X, s):
    Y = X.copy()
    for j in range(Y.shape[1]):
        Y[:, j] *= s[j]
    Y[0] -= 1.0
    return Y


@program("inplace", (_r(22, 5), _r(23, 5)), argnums=(0, 1), order2=True)
def inplace_ufunc_out(x, y):
    buf = np.empty_like(x)
    np.multiply(x, y, out=buf)
    np.add(buf, 1.0, out=buf)
    np.exp(buf, out=buf)
    return np.sum(buf)


@program("inplace", (_r(24, 4), _r(25, 4)), argnums=(0, 1), order2=True)
def inplace_augmented(x, y):
    z = x.copy()
    z += y
    z *= 2.0
    z -= np.sum(y)
    z /= 3.0
    z **= 2
    return z


@program("inplace", (_r(26, 6), _r(27, 3), np.array([4, 0, 2])), argnums=(0, 1), order2=True)
def inplace_fancy_index(x, y, idx):
    z = x.copy()
    z[idx] = y * 2.0
    z[idx[:2]] += x[:2]
    z[z.shape[0] - 1] = np.sum(z[:3])
    return z


@program("inplace", (_r(28, 3, 3) + 4 * np.eye(3), _r(29, 3)), argnums=(0, 1), order2=True)
def inplace_lu_solve(A, b):
    M = A.copy()
    x = b.copy()
    n = M.shape[0]
    for k in range(n - 1):
        for i in range(k + 1, n):
            f = M[i, k] / M[k, k]
            M[i, k:] -= f * M[k, k:]
            x[i] -= f * x[k]
    for i in range(n - 1, -1, -1):
        x[i] = (x[i] - np.dot(M[i, i + 1 :], x[i + 1 :])) / M[i, i]
    return x


@program("inplace", (_r(30, 10, 2),), argnums=(0,), order2=True)
def inplace_prefix_rows(X):
    Y = X * 1.0
    for i in range(1, Y.shape[0]):
        Y[i] += Y[i - 1]
    Y[:, 0] = 0.0
    return np.sum(Y * Y)


@program("inplace", (np.array([-0.5, 0.3, 1.7, -2.0, 0.9, 1.2]),), argnums=(0,))
def inplace_mask_set(x):
    z = x * 1.0
    z[z < 0] = 0.0
    z[z > 1] *= 0.5
    return z


@program("inplace", (_r(50, 2, 3),), argnums=(0,), order2=True)
def inplace_store_into_transposed(A):
    M = A.T * 2.0
    M[0] = A[:, 0] ** 2
    return M


@program("inplace", (_r(51, 3, 3),), argnums=(0,), order2=True)
def inplace_overwrite_then_transpose(A):
    M = A + 0.0
    M[0] = 1.0
    return np.sum(M.T * A)


# --- 5. aliasing --------------------------------------------------------------------------------


@program("alias", (_r(31, 4),), argnums=(0,), order2=True)
def alias_rebound_name(x):
    z = x * 1.0
    y = z
    y += 1.0
    return z + y


@program("alias", (_r(32, 3, 3),), argnums=(0,), order2=True)
def alias_row_view(X):
    Y = X.copy()
    v = Y[0]
    v += 1.0
    v *= Y[1]
    return Y


@program("alias", (_r(33, 3, 3),), argnums=(0,), order2=True)
def alias_transpose(B):
    b = B.copy()
    a = b.T
    a[0] += 1.0
    b[1] *= 2.0
    a[:, 2] = a[:, 0] * 3.0
    return b, np.sum(a * np.arange(3.0))


@program("alias", (_r(34, 6),), argnums=(0,), order2=True)
def alias_reshape(x):
    y = x.copy()
    m = y.reshape(2, 3)
    m[1] *= 2.0
    m[:, 0] = np.sum(m, axis=1)
    return y


@program("alias", (_r(35, 3),), argnums=(0,), order2=True)
def alias_view_before_update(x):
    y = x.copy()
    head = y[:2]
    tail = y[1:]
    s0 = np.sum(head)
    y *= 3.0
    tail[0] += 1.0
    return s0, head * tail, y


@program("alias", (_r(36, 7),), argnums=(0,), order2=True)
def alias_nested_views(x):
    y = x.copy()
    a = y[1:]
    b = a[::2]
    b += np.sin(a[: b.shape[0]])
    return y, a


@program("alias", (_r(37, 4),), argnums=(0,), order2=True)
def alias_out_view(x):
    z = np.zeros(x.shape[0] + 2)
    v = z[1:-1]
    np.sin(x, out=v)
    np.multiply(v, x, out=v)
    return z


@program("alias", (_r(38, 4),), argnums=(0,), order2=True)
def alias_view_of_numpy_array(x):
    z = np.ones(6)
    v = z[2:]
    v[0] = x[0]
    v[1:] += x[1:] * x[1:]
    return z


@program("alias", (_r(39, 5),), argnums=(0,), order2=True)
def alias_overlap(x):
    y = x.copy()
    y[1:] += y[:-1]
    y[:-1] = y[1:]
    return y


@program("alias", (_r(40, 2, 3), F(0.5)), (_r(40, 2, 3), F(-0.5)), argnums=(0, 1), order2=True)
def alias_view_in_branch(X, t):
    Y = X.copy()
    r = Y[1]
    if t > 0.0:
        r *= t
    else:
        r[0] = -t
    return Y


@program("alias", (_r(41, 3, 3),), argnums=(0,), order2=True)
def alias_diagonal_view(A):
    M = A.copy()
    d = M.reshape(-1)[:: M.shape[0] + 1]
    d += 10.0
    return M @ M


# --- 6. lists and dicts changed in the function ---------------------------------------------------


@program("containers", (_r(42, 3),), argnums=(0,), order2=True)
def list_append_stack(x):
    rows = []
    h = x
    for _ in range(4):
        h = np.tanh(h * 1.5 + 0.1)
        rows.append(h)
    return np.stack(rows)


@program("containers", (np.array([0.5, -0.3, 0.8]),), argnums=(0,), order2=True)
def list_append_in_branch(x):
    out = []
    for i in range(3):
        if x[i] > 0:
            out.append(x * x[i])
        else:
            out.append(x - x[i])
    return np.stack(out).sum(axis=0)


@program("containers", (_r(43, 5),), argnums=(0,), order2=True)
def list_append_long_loop(x):
    acc = []
    s = 0.0
    for i in range(12):
        s = s + x[i % x.shape[0]] * i
        acc.append(s)
    return np.stack(acc)


@program("containers", ({"a": _r(44, 3, 3), "b": _r(45, 3, 3)}, _r(46, 3)), argnums=(0, 1), order2=True)
def dict_params(p, x):
    state = {"h": x.copy(), "n": 0}
    for k in ("a", "b"):
        state["h"] = np.tanh(p[k] @ state["h"])
        state["n"] += 1
    state["out"] = np.sum(state["h"]) * state["n"]
    return state


@program("containers", (np.array([1.0, 2.0, -0.5]),), (np.array([-1.0, 0.2, -0.5]),), argnums=(0,))
def dict_in_branch(x):
    d = {"s": np.sum(x), "m": np.max(x)}
    if d["s"] > 0:
        d["s"] = d["s"] * 2.0
    else:
        d["m"] = d["m"] - 1.0
    return d["s"] + d["m"]


@program("containers", (_r(47, 5),), argnums=(0,), order2=True)
def list_element_inplace(x):
    parts = [x[:2].copy(), x[2:].copy()]
    parts[0] *= 2.0
    parts[1][0] = parts[0][1]
    parts.append(parts[0] + 1.0)
    return np.concatenate(parts)


@program("containers", (_r(48, 4),), argnums=(0,), order2=True)
def list_methods(x):
    vals = [x[i] * (i + 1) for i in range(x.shape[0])]
    last = vals.pop()
    vals.insert(0, last)
    vals.reverse()
    vals.extend([np.sum(x)])
    return np.stack(vals)


@program("containers", (np.array([0.5, -1.0, 2.0, -0.3]),), argnums=(0,), order2=True)
def dict_in_loop(x):
    stats = {"pos": 0.0, "neg": 0.0}
    for v in x:
        if v > 0:
            stats["pos"] += v
        else:
            stats["neg"] -= v
    return stats


@program("containers", (_r(49, 3),), argnums=(0,), order2=True)
def list_of_lists(x):
    grid = [[x[i] * x[j] for j in range(3)] for i in range(3)]
    grid[1][1] = grid[1][1] + 1.0
    return np.stack([np.stack(r) for r in grid])


@program("containers", (np.array([1.0, 0.5, 0.8, 1.3, 0.4]),), argnums=(0,), order2=True)
def tuple_state(x):
    state = (x[0], x[1])
    for i in range(2, x.shape[0]):
        a, b = state
        if a > b:
            state = (b, a + x[i])
        else:
            state = (a * x[i], b)
    return state[0] + 2.0 * state[1]


ORDER2 = [name for name, case in CASES.items() if case.order2]


# --- helpers -------------------------------------------------------------------------------------


def _leaves(tree, path="out"):
    """(path, leaf) pairs of a result, and its structure (containers and their keys)."""
    if isinstance(tree, dict):
        out = []
        for k in sorted(tree):
            out += _leaves(tree[k], f"{path}[{k!r}]")
        return out
    if isinstance(tree, (tuple, list)):
        out = []
        for i, v in enumerate(tree):
            out += _leaves(v, f"{path}[{i}]")
        return out
    return [(path, tree)]


def _structure(tree):
    if isinstance(tree, dict):
        return ("dict", tuple((k, _structure(tree[k])) for k in sorted(tree)))
    if isinstance(tree, (tuple, list)):
        return (type(tree).__name__, tuple(_structure(v) for v in tree))
    return "leaf"


def assert_same(got, want, rtol=1e-12, atol=0.0, what=""):
    """Same structure, shapes, dtypes, scalar-or-array kind, and values within rtol."""
    assert _structure(got) == _structure(want), f"{what}: structure {_structure(got)} != {_structure(want)}"
    for (path, g), (_, w) in zip(_leaves(got), _leaves(want)):
        ga, wa = np.asarray(g), np.asarray(w)
        assert ga.shape == wa.shape, f"{what} {path}: shape {ga.shape} != {wa.shape}"
        assert ga.dtype == wa.dtype, f"{what} {path}: dtype {ga.dtype} != {wa.dtype}"
        assert isinstance(g, np.ndarray) == isinstance(w, np.ndarray), (
            f"{what} {path}: {type(g).__name__} where NumPy gives {type(w).__name__}"
        )
        np.testing.assert_allclose(ga, wa, rtol=rtol, atol=atol, err_msg=f"{what} {path}")


def checked_call(fn, args, what):
    """fn(*args), asserting that it leaves the caller's arguments unchanged."""
    keep = copy.deepcopy(args)
    out = fn(*args)
    for (path, a), (_, k) in zip(_leaves(args, "args"), _leaves(keep, "args")):
        assert np.asarray(a).dtype == np.asarray(k).dtype, f"{what} changed the dtype of {path}"
        np.testing.assert_array_equal(a, k, err_msg=f"{what} changed the caller's {path}")
    return out


def scalar_loss(fn, *args):
    """A fixed linear functional of fn's float results: what td.grad differentiates."""
    total = 0.0
    for _, leaf in _leaves(fn(*args)):
        if np.result_type(leaf).kind == "f":
            w = np.cos(np.arange(np.size(leaf)) + 0.5).reshape(np.shape(leaf))
            total = total + np.sum(leaf * w)
    return total


def _shifted(argnums):
    return tuple(i + 1 for i in argnums)  # scalar_loss takes fn first


@functools.cache
def jitted(name: str, target: str):
    return td.jit(CASES[name].fn, target=target)


@functools.cache
def jitted_grad(name: str):
    return td.jit(td.grad(scalar_loss, argnums=_shifted(CASES[name].argnums)))


def params(check: str, names) -> list:
    """One case per program and input set, except those KNOWN_FAILURES lists: those
    must raise a clear error instead (test_refused_programs_raise_a_clear_error)."""
    out = []
    for name in names:
        for k in range(len(CASES[name].inputs)):
            if (check, name) in KNOWN_FAILURES or (check, f"{name}-{k}") in KNOWN_FAILURES:
                continue
            out.append(pytest.param(name, k, id=f"{name}-{k}"))
    return out


def refused() -> list:
    return [
        pytest.param(name, k, id=f"{name}-{k}")
        for name in CASES
        for k in range(len(CASES[name].inputs))
        if ("values", name) in KNOWN_FAILURES or ("values", f"{name}-{k}") in KNOWN_FAILURES
    ]


# --- the checks --------------------------------------------------------------------------------------


def test_the_table():
    counts: dict[str, int] = {}
    for case in CASES.values():
        counts[case.category] = counts.get(case.category, 0) + 1
    assert len(CASES) >= 60 and min(counts.values()) >= 9, counts
    tested = {
        "values": set(CASES),
        "grads": set(CASES),
        "order2": set(ORDER2),
        "branches": set(CASES),
    }
    for check, key in KNOWN_FAILURES:  # no stale entries
        assert key in tested[check] or key.rsplit("-", 1)[0] in tested[check], (check, key)


@pytest.mark.parametrize("name, k", params("values", CASES))
def test_values(name, k):
    case = CASES[name]
    args = case.inputs[k]
    want = checked_call(case.fn, args, "plain NumPy")
    got = checked_call(jitted(name, "interpret"), args, "td.jit(target='interpret')")
    assert_same(got, want, what="interpret")
    got = checked_call(jitted(name, "cpu"), args, "td.jit")
    assert_same(got, want, what="jit")


# one scalar_loss traced for every program (fn is a static argument): not a retrace by mistake
@pytest.mark.filterwarnings("ignore:tracediff. scalar_loss has been traced and compiled")
@pytest.mark.parametrize("name, k", params("grads", CASES))
def test_grads(name, k):
    case = CASES[name]
    args = (case.fn, *case.inputs[k])
    argnums = _shifted(case.argnums)
    value, grads = checked_call(td.value_and_grad(scalar_loss, argnums=argnums), args, "td.value_and_grad")
    assert_same(value, scalar_loss(*args), what="value_and_grad's value")
    assert_same(checked_call(jitted_grad(name), args, "td.jit(td.grad)"), grads, atol=1e-14, what="jit grad")
    checked_call(lambda *a: td.check_grads(case.fn, a, order=1), case.inputs[k], "check_grads")


@pytest.mark.parametrize("name, k", refused())
def test_refused_programs_raise_a_clear_error(name, k):
    """What tracediff cannot keep NumPy's semantics for raises td.TracerError naming a
    line of the program, eagerly and compiled (never a different value)."""
    case = CASES[name]
    args = case.inputs[k]
    first = case.fn.__code__.co_firstlineno
    last = max(ln for _, _, ln in case.fn.__code__.co_lines() if ln is not None)
    calls = [
        lambda: jitted(name, "interpret")(*args),
        lambda: jitted(name, "cpu")(*args),
        lambda: td.grad(scalar_loss, argnums=_shifted(case.argnums))(case.fn, *args),
    ]
    for call in calls:
        with pytest.raises(td.TracerError) as ei:
            call()
        lines = [int(m) for m in re.findall(r"test_dynamic\.py:(\d+)", str(ei.value))]
        assert any(first <= ln <= last for ln in lines), str(ei.value)


@pytest.mark.parametrize("name, k", params("order2", ORDER2))
def test_second_order(name, k):
    case = CASES[name]
    checked_call(lambda *a: td.check_grads(case.fn, a, order=2), case.inputs[k], "check_grads")


# --- every branch is taken by some input ---------------------------------------------------


def _branch_outcomes(fn, inputs) -> dict:
    """{source position of a conditional jump: the outcomes seen (True/False)} over the
    plain function's runs on `inputs`; a `for` loop's outcome is True for another item."""
    code = fn.__code__
    instrs = list(dis.get_instructions(code))
    jumps = {}
    for i, ins in enumerate(instrs):
        op = ins.opname
        if op == "FOR_ITER":
            jumps[ins.offset] = (ins, instrs[i + 1].offset, False)  # jumping means: exhausted
        elif "IF_" in op and "JUMP" in op:
            # jumping means the test was true for ..._IF_TRUE / ..._IF_NONE, false otherwise
            jumps[ins.offset] = (
                ins,
                instrs[i + 1].offset,
                op.endswith(("IF_TRUE", "IF_NONE", "TRUE_OR_POP")),
            )
    arcs: set = set()

    def global_trace(frame, event, arg):
        if frame.f_code is not code:
            return None
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False
        last = [None]

        def local(frame, event, arg):
            if event == "opcode":
                if last[0] is not None:
                    arcs.add((last[0], frame.f_lasti))
                last[0] = frame.f_lasti
            return local

        return local

    old = sys.gettrace()
    sys.settrace(global_trace)
    try:
        for args in inputs:
            fn(*copy.deepcopy(args))
    finally:
        sys.settrace(old)
    seen: dict = {}
    for off, (ins, fall, jump_means) in jumps.items():
        pos = ins.positions
        key = (pos.lineno, pos.col_offset, pos.end_lineno, pos.end_col_offset)
        outs = seen.setdefault(key, set())
        for src, dst in arcs:
            if src == off:
                outs.add((not jump_means) if dst == fall else jump_means)
    return seen


def _branch_params():
    out = []
    for name in CASES:
        reason = KNOWN_FAILURES.get(("branches", name))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(name, id=name, marks=marks))
    return out


@pytest.mark.skipif(sys.version_info < (3, 11), reason="instruction positions need Python 3.11")
@pytest.mark.parametrize("name", _branch_params())
def test_every_branch_is_taken(name):
    case = CASES[name]
    lines = case.fn.__code__.co_firstlineno
    missing = [
        f"line {key[0]} (+{key[0] - lines}): only {sorted(outs)}"
        for key, outs in _branch_outcomes(case.fn, case.inputs).items()
        if outs != {True, False}
    ]
    assert not missing, f"{name}: a branch no input takes: {missing}"


_LOSSES = {
    "first": lambda v: np.sum(v * 2.0),
    "later": lambda v: np.sum(np.asarray(v) * 7.0) if v[0] > 0 else 0.0,
}
_LATE = (
    0,
    lambda v: sps.logsumexp(v),
)


def test_lambdas_on_later_lines_of_a_statement_are_converted():
    """A lambda on the second line of a dict, tuple or call (its line does not parse
    alone) is found in the whole file and converted like any other."""
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(td.grad(_LOSSES["later"])(x), [7.0, 7.0, 7.0])
    np.testing.assert_allclose(td.grad(_LATE[1])(x), np.exp(x) / np.sum(np.exp(x)))
