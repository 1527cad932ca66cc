"""The workloads of shared/bench/WORKLOADS.md: plain NumPy functions, their
data, and the hand-written *limit* gradient of each (the best a compiler
could emit).

Each `Workload` holds:

- `fn`: the NumPy function exactly as a user writes it;
- `data()`: its arguments, from a fixed seed, with the sizes/dtypes of the table;
- `argnums`: what is differentiated;
- `limit`: a hand-written gradient with `fn`'s signature, returning a tuple
  of arrays, one per argnum.

`verify_limit` checks a limit against tracediff's gradient and against
central finite differences, so a wrong limit is never timed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numba
import numpy as np

SEED = 20261125

# --- W1: elementwise-heavy loss ---------------------------------------------------------


def w1(x, y):
    return np.sum(np.sin(x) * np.exp(-x * x) + np.tanh(x * y) + np.log1p(y * y))


def w1_data():
    rng = np.random.default_rng(SEED + 1)
    x = rng.standard_normal(4_000_000, dtype=np.float32)
    y = rng.standard_normal(4_000_000, dtype=np.float32)
    return (x, y)


_ONE32 = np.float32(1.0)
_TWO32 = np.float32(2.0)
_TENTH32 = np.float32(0.1)


@numba.njit(parallel=True, fastmath=False, cache=True)
def _w1_grad_kernel(x, y, gx, gy):
    for i in numba.prange(x.size):
        a = x[i]
        c = y[i]
        e = np.exp(-a * a)
        t = np.tanh(a * c)
        s = _ONE32 - t * t
        gx[i] = (np.cos(a) - _TWO32 * a * np.sin(a)) * e + s * c
        gy[i] = s * a + _TWO32 * c / (_ONE32 + c * c)


def w1_limit(x, y):
    """One fused parallel loop: reads x, y once, writes gx, gy."""
    gx = np.empty_like(x)
    gy = np.empty_like(y)
    _w1_grad_kernel(x, y, gx, gy)
    return gx, gy


# --- W2: MLP training step ----------------------------------------------------------------


def w2(W1, b1, W2, b2, X, Y):
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    m = np.max(logits, axis=1, keepdims=True)
    z = logits - m
    lse = np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(Y * (z - lse), axis=1))


def w2_data():
    rng = np.random.default_rng(SEED + 2)
    n, d, hdim, k = 512, 784, 512, 10
    X = rng.random((n, d), dtype=np.float32)  # pixel-like inputs in [0, 1)
    Y = np.eye(k, dtype=np.float32)[rng.integers(0, k, n)]  # one-hot labels
    W1 = (rng.standard_normal((d, hdim)) * math.sqrt(1.0 / d)).astype(np.float32)
    b1 = (rng.standard_normal(hdim) * 0.01).astype(np.float32)
    W2 = (rng.standard_normal((hdim, k)) * math.sqrt(1.0 / hdim)).astype(np.float32)
    b2 = (rng.standard_normal(k) * 0.01).astype(np.float32)
    return (W1, b1, W2, b2, X, Y)


def w2_limit(W1, b1, W2, b2, X, Y):
    """Hand-written NumPy forward + backward, float32 throughout, BLAS matmuls."""
    h = X @ W1
    h += b1
    np.tanh(h, out=h)
    logits = h @ W2
    logits += b2
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)  # softmax
    # d loss / d logits = (p * rowsum(Y) - Y) / n; the max shift has zero derivative
    d = p * Y.sum(axis=1, keepdims=True)
    d -= Y
    d *= np.float32(1.0 / X.shape[0])
    gW2 = h.T @ d
    gb2 = d.sum(axis=0)
    da = d @ W2.T
    h *= h
    np.subtract(1, h, out=h)
    da *= h  # tanh' = 1 - h^2
    gW1 = X.T @ da
    gb1 = da.sum(axis=0)
    return gW1, gb1, gW2, gb2


# --- W3: Rosenbrock, tiny ---------------------------------------------------------------------


def w3(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def w3_data():
    rng = np.random.default_rng(SEED + 3)
    return (rng.standard_normal(16),)


@numba.njit(cache=True)
def _w3_grad(x):
    n = x.size
    g = np.zeros_like(x)
    for i in range(n - 1):
        r = x[i + 1] - x[i] * x[i]
        g[i] += -400.0 * x[i] * r - 2.0 * (1.0 - x[i])
        g[i + 1] += 200.0 * r
    return g


def w3_limit(x):
    return (_w3_grad(x),)


# --- W4: long chain, 40 time steps ------------------------------------------------------------

W4_STEPS = 40
_W4_CHUNK = 4096


def w4(x, w, b):
    for _ in range(40):
        x = x + 0.1 * np.tanh(x * w + b)
    return np.sum(x * x)


def w4_data():
    rng = np.random.default_rng(SEED + 4)
    x = rng.standard_normal(1_000_000, dtype=np.float32)
    w = rng.standard_normal(1, dtype=np.float32)
    b = rng.standard_normal(1, dtype=np.float32)
    return (x, w, b)


@numba.njit(parallel=True, fastmath=False, cache=True)
def _w4_grad_kernel(x, wv, bv, gx, pw):
    n = x.size
    for c in numba.prange(pw.size):
        # 40 states per element, in a small per-chunk buffer reused element by element
        xs = np.empty(W4_STEPS, np.float32)
        ts = np.empty(W4_STEPS, np.float32)
        sw = 0.0
        for i in range(c * _W4_CHUNK, min(n, (c + 1) * _W4_CHUNK)):
            v = x[i]
            for k in range(W4_STEPS):
                xs[k] = v
                t = np.tanh(v * wv + bv)
                ts[k] = t
                v = v + _TENTH32 * t
            g = _TWO32 * v
            for k in range(W4_STEPS - 1, -1, -1):
                t = ts[k]
                du = _TENTH32 * g * (_ONE32 - t * t)
                sw += du * xs[k]
                g = g + du * wv
            gx[i] = g
        pw[c] = sw


def w4_limit(x, w, b):
    """Forward and reverse per element, no stored tape; gw by a reduction.
    argnums is (0, 1) as in WORKLOADS.md, so gb is not computed."""
    gx = np.empty_like(x)
    nchunks = (x.size + _W4_CHUNK - 1) // _W4_CHUNK
    pw = np.empty(nchunks, np.float64)  # per-chunk partial sums of gw
    _w4_grad_kernel(x, w[0], b[0], gx, pw)
    return gx, np.array([pw.sum()], np.float32)


# --- W6: logistic regression, full training run ---------------------------------------------

W6_STEPS = 300
W6_LR = 0.1


def w6(w, X, y):
    z = X @ w
    return np.mean(np.log1p(np.exp(z)) - y * z)


def w6_data():
    rng = np.random.default_rng(SEED + 6)
    n, d = 20_000, 100
    X = rng.standard_normal((n, d))
    w_true = rng.standard_normal(d) * 0.3
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-(X @ w_true)))).astype(np.float64)
    w0 = np.zeros(d)
    return (w0, X, y)


def w6_limit(w, X, y):
    """Hand-written NumPy gradient: X.T @ (sigmoid(Xw) - y) / n."""
    e = np.exp(X @ w)
    e /= 1.0 + e
    e -= y
    e *= 1.0 / X.shape[0]
    return (X.T @ e,)


def train(grad_fn, w, X, y, steps=W6_STEPS, lr=W6_LR):
    """Full-batch gradient descent; works for NumPy, JAX and torch arrays."""
    for _ in range(steps):
        w = w - lr * grad_fn(w, X, y)
    return w


# --- W9: dynamic control flow, adaptive time stepping -----------------------------------------

W9_T_END = 5.0


def w9(p0, v0, k):
    p, v, t = p0, v0, 0.0
    while t < 5.0:  # trip count depends on the values
        a = -k * p - 0.1 * v * np.abs(v)  # nonlinear spring with drag
        dt = 0.5 / (1.0 + np.max(np.abs(a)))  # adaptive step
        if t + dt > 5.0:
            dt = 5.0 - t
        v = v + dt * a
        p = p + dt * v
        t = t + dt
    return np.sum(p * p) + 0.5 * np.sum(v * v)


def w9_data():
    rng = np.random.default_rng(SEED + 9)
    p0 = rng.standard_normal(10_000)
    v0 = rng.standard_normal(10_000)
    return (p0, v0, np.array(2.0))


@numba.njit(cache=True)
def _w9_max_abs_a(p, v, k):
    """max_i |a_i| and its (first) index, a = -k p - 0.1 v |v| as NumPy rounds it."""
    amax, j = -1.0, 0
    for i in range(p.size):
        ai = abs(-k * p[i] - 0.1 * v[i] * abs(v[i]))
        if ai > amax:
            amax, j = ai, i
    return amax, j


@numba.njit(cache=True)
def _w9_grad(p0, v0, k, T):
    n = p0.size
    # forward: the tape T[s] = (p, v) at the start of step s (T is grown when a run
    # needs more steps, and returned), dt, the argmax of |a| and whether the step
    # was clamped to end at t = 5
    cap = T.shape[0]
    DT = np.empty(cap)
    J = np.empty(cap, np.int64)
    CL = np.empty(cap, np.bool_)
    T[0, 0] = p0
    T[0, 1] = v0
    amax, j = _w9_max_abs_a(p0, v0, k)
    t = 0.0
    s = 0
    while t < W9_T_END:
        if s + 1 == cap:  # grow the tape
            cap *= 2
            T2 = np.empty((cap, 2, n))
            T2[: s + 1] = T[: s + 1]
            T = T2
            DT2 = np.empty(cap)
            DT2[:s] = DT[:s]
            DT = DT2
            J2 = np.empty(cap, np.int64)
            J2[:s] = J[:s]
            J = J2
            CL2 = np.empty(cap, np.bool_)
            CL2[:s] = CL[:s]
            CL = CL2
        dt = 0.5 / (1.0 + amax)
        clamped = t + dt > W9_T_END
        if clamped:
            dt = W9_T_END - t
        DT[s], J[s], CL[s] = dt, j, clamped
        # the step, fused with the next step's max |a|
        p, v, pn, vn = T[s, 0], T[s, 1], T[s + 1, 0], T[s + 1, 1]
        amax, j = -1.0, 0
        for i in range(n):
            vi = v[i]
            ai = -k * p[i] - 0.1 * vi * abs(vi)
            v1 = vi + dt * ai
            p1 = p[i] + dt * v1
            vn[i] = v1
            pn[i] = p1
            an = abs(-k * p1 - 0.1 * v1 * abs(v1))
            if an > amax:
                amax, j = an, i
        t = t + dt
        s += 1
    steps = s
    # reverse: L = sum(p^2) + 0.5 sum(v^2)
    gp = 2.0 * T[steps, 0]
    gv = T[steps, 1].copy()
    gt = 0.0  # adjoint of t: nonzero once a clamped step (dt = 5 - t) is passed
    gk = 0.0
    for s in range(steps - 1, -1, -1):
        dt = DT[s]
        p, v, v1 = T[s, 0], T[s, 1], T[s + 1, 1]
        # pass 1: adjoint of dt (from p1 = p + dt v1, v1 = v + dt a, t1 = t + dt)
        gdt = gt
        for i in range(n):
            vi = v[i]
            ai = -k * p[i] - 0.1 * vi * abs(vi)
            gdt += gp[i] * v1[i] + (gv[i] + dt * gp[i]) * ai
        # pass 2: adjoints of p, v, k through v1, p1 and a
        for i in range(n):
            vi = v[i]
            gv1 = gv[i] + dt * gp[i]
            ga = dt * gv1
            gk -= ga * p[i]
            gp[i] -= k * ga
            gv[i] = gv1 - 0.2 * abs(vi) * ga
        if CL[s]:  # dt = 5 - t
            gt -= gdt
        else:  # dt = 0.5 / (1 + |a_j|): the argmax element alone
            j = J[s]
            vj = v[j]
            aj = -k * p[j] - 0.1 * vj * abs(vj)
            ga = -0.5 * gdt / (1.0 + abs(aj)) ** 2 * (1.0 if aj > 0.0 else -1.0)
            gk -= ga * p[j]
            gp[j] -= k * ga
            gv[j] -= 0.2 * abs(vj) * ga
    return gp, gv, gk, T


_w9_tapes: dict[int, np.ndarray] = {}  # n -> the tape, kept between calls


def w9_limit(p0, v0, k):
    """@njit forward storing (p, v) at each step, dt, argmax |a| and the clamp,
    then a reverse loop: two passes a step (the adjoint of dt is a reduction),
    plus the argmax element of the max and the clamp's dependence on t.

    The tape (61 steps x 2 x 10000 float64, 10 MB here) is kept between calls:
    allocated afresh, glibc hands it back to the OS after each call, and the
    next call pays ~2400 page faults (2 ms a call becomes 5-10 ms)."""
    n = p0.size
    T = _w9_tapes.get(n)
    if T is None:
        T = np.empty((128, 2, n))
    gp, gv, gk, _w9_tapes[n] = _w9_grad(p0, v0, float(k), T)
    return gp, gv, np.array(gk)


# --- W10: in-place loops, a tridiagonal (Thomas) solve ---------------------------------------


def w10(a, b, c, d):
    n = d.shape[0]
    cp = np.zeros(n)
    dp = np.zeros(n)
    x = np.zeros(n)
    cp[0] = c[0] / b[0]
    dp[0] = d[0] / b[0]
    for i in range(1, n):
        m = b[i] - a[i] * cp[i - 1]
        cp[i] = c[i] / m
        dp[i] = (d[i] - a[i] * dp[i - 1]) / m
    x[n - 1] = dp[n - 1]
    for i in range(n - 2, -1, -1):
        x[i] = dp[i] - cp[i] * x[i + 1]
    return np.sum(x * x)


def w10_data():
    rng = np.random.default_rng(SEED + 10)
    n = 100_000
    a = rng.uniform(-1.0, 1.0, n)
    b = 4.0 + rng.uniform(0.0, 1.0, n)
    c = rng.uniform(-1.0, 1.0, n)
    d = rng.standard_normal(n)
    return (a, b, c, d)


@numba.njit(cache=True)
def _w10_grad(a, b, c, d):
    n = d.size
    cp = np.empty(n)
    dp = np.empty(n)
    x = np.empty(n)
    # forward sweep
    cp[0] = c[0] / b[0]
    dp[0] = d[0] / b[0]
    for i in range(1, n):
        m = b[i] - a[i] * cp[i - 1]
        cp[i] = c[i] / m
        dp[i] = (d[i] - a[i] * dp[i - 1]) / m
    # back substitution
    x[n - 1] = dp[n - 1]
    for i in range(n - 2, -1, -1):
        x[i] = dp[i] - cp[i] * x[i + 1]
    # adjoint of the back substitution (ascending): gx_i = 2 x_i - cp_{i-1} gx_{i-1},
    # and then gdp_i = gx_i, gcp_i = -gx_i x_{i+1} (gcp_{n-1} = 0). gx is kept in gd,
    # whose element i is written below only after gx_i was read.
    ga = np.empty(n)
    gb = np.empty(n)
    gc = np.empty(n)
    gd = np.empty(n)
    g = 2.0 * x[0]
    gd[0] = g
    for i in range(1, n):
        g = 2.0 * x[i] - cp[i - 1] * g
        gd[i] = g
    # adjoint of the forward sweep (descending)
    gdp = gd[n - 1]
    gcp = 0.0
    for i in range(n - 1, 0, -1):
        r = 1.0 / (b[i] - a[i] * cp[i - 1])  # 1 / m_i
        t = gdp * r  # adjoint of the numerator d_i - a_i dp_{i-1}
        gm = -(gdp * dp[i] + gcp * cp[i]) * r
        gd_prev = gd[i - 1]
        gd[i] = t
        gc[i] = gcp * r
        gb[i] = gm
        ga[i] = -t * dp[i - 1] - gm * cp[i - 1]
        gdp = gd_prev - a[i] * t
        gcp = -gd_prev * x[i] - a[i] * gm
    r = 1.0 / b[0]
    ga[0] = 0.0
    gb[0] = -(gcp * cp[0] + gdp * dp[0]) * r
    gc[0] = gcp * r
    gd[0] = gdp * r
    return ga, gb, gc, gd


def w10_limit(a, b, c, d):
    """@njit Thomas forward sweep and back substitution, then their adjoints: O(n), four loops."""
    return _w10_grad(a, b, c, d)


# --- W12: a reduction over a broadcast (pairwise Gaussian kernel) ----------------------------


def w12(P, w):
    d2 = np.sum((P[:, None, :] - P[None, :, :]) ** 2, axis=-1)
    return np.sum(w[:, None] * w[None, :] * np.exp(-d2 / 0.1))


def w12_data():
    rng = np.random.default_rng(SEED + 12)
    P = rng.uniform(0.0, 1.0, (2000, 2)).astype(np.float32)
    w = rng.standard_normal(2000, dtype=np.float32)
    return (P, w)


_W12_H = np.float32(0.1)  # the kernel's width, as the program divides by it


@numba.njit(parallel=True, fastmath=False, cache=True)
def _w12_kernel(P, w, acc):
    """The pairs i < j once each (the kernel matrix is symmetric, bit for bit: NumPy
    computes d2[j, i] from p_j - p_i = -(p_i - p_j) exactly), task t taking the rows
    t, t + T, t + 2T, ... (balanced: row i has n - 1 - i pairs). Row i's sums are
    kept in registers; the j side of each pair goes to the task's own accumulators
    acc[t] (3 x n float64: sum_j w_j E_ij and the two components of
    sum_j w_i w_j E_ij (p_i - p_j)), so no two threads write the same element."""
    n = w.size
    ntasks = acc.shape[0]
    for t in numba.prange(ntasks):
        a0 = acc[t, 0]
        a1 = acc[t, 1]
        a2 = acc[t, 2]
        a0[:] = 0.0
        a1[:] = 0.0
        a2[:] = 0.0
        for i in range(t, n, ntasks):
            xi = P[i, 0]
            yi = P[i, 1]
            wi = w[i]
            s = 0.0
            gx = 0.0
            gy = 0.0
            for j in range(i + 1, n):
                dx = xi - P[j, 0]  # float32, as NumPy rounds it
                dy = yi - P[j, 1]
                e = np.exp(-(dx * dx + dy * dy) / _W12_H)  # E_ij, float32 (libm expf)
                wje = w[j] * e
                cx = wi * wje * dx
                cy = wi * wje * dy
                s += wje  # float64 accumulators from here on
                gx += cx
                gy += cy
                a0[j] += wi * e
                a1[j] -= cx
                a2[j] -= cy
            a0[i] += s
            a1[i] += gx
            a2[i] += gy
    return acc


@numba.njit(parallel=True, fastmath=False, cache=True)
def _w12_rows(P, w, out):
    """Each row i over every j (the double loop of WORKLOADS.md: no symmetry used),
    its three sums in registers, float64, written once: no two threads share a row."""
    n = w.size
    for i in numba.prange(n):
        xi = P[i, 0]
        yi = P[i, 1]
        wi = w[i]
        s = 0.0
        gx = 0.0
        gy = 0.0
        for j in range(n):
            dx = xi - P[j, 0]  # float32, as NumPy rounds it
            dy = yi - P[j, 1]
            e = np.exp(-(dx * dx + dy * dy) / _W12_H)  # E_ij, float32 (libm expf)
            wje = w[j] * e
            if j != i:
                s += wje
            gx += wi * wje * dx
            gy += wi * wje * dy
        out[0, i] = s
        out[1, i] = gx
        out[2, i] = gy
    return out


def _w12_sums(P, w):
    """[3, n] float64: r0_i = sum_{j != i} w_j E_ij, (r1, r2)_i = sum_j w_i w_j E_ij (p_i - p_j)."""
    acc = np.empty((numba.get_num_threads(), 3, w.size))
    return _w12_kernel(P, w, acc).sum(axis=0)


def w12_value_and_grad(P, w):
    """The loss as well (the kernel computes the forward pass anyway): for tests."""
    r = _w12_sums(P, w)
    value = float(np.dot(w, r[0]) + np.dot(w, w))  # E_ii = 1
    return value, _w12_grads(r, w)


def _w12_grads(r, w):
    # L = sum_ij w_i w_j E_ij, E_ij = exp(-|p_i - p_j|^2 / h), symmetric in i, j:
    #   dL/dw_i = 2 sum_j w_j E_ij = 2 (r0_i + w_i)
    #   dL/dp_i = 2 sum_j w_i w_j E_ij (-2 / h) (p_i - p_j) = -(4 / h) (r1, r2)_i
    gw = 2.0 * (r[0] + w)
    gP = (-4.0 / 0.1) * r[1:].T
    return gP.astype(np.float32), gw.astype(np.float32)


def w12_limit(P, w):
    """The hand-written double loop of WORKLOADS.md: a parallel @njit loop over the
    rows i, each over every j, forward and backward fused, no N x N array; the pair
    terms in float32 exactly as the program rounds them (p_i - p_j, d2, -d2 / 0.1,
    exp), their sums in float64 (NumPy's float32 sums are pairwise, so float64
    accumulation is the fair match; it costs nothing next to the exp). exp is
    Numba's (scalar libm expf), as in the W1/W4 limits."""
    return _w12_grads(_w12_rows(P, w, np.empty((3, w.size))), w)


def w12_limit_symmetric(P, w):
    """A cleverer hand-written pass: the pairs i < j once each (the kernel matrix is
    symmetric, bit for bit), per-task float64 partial gradients added at the end.
    Half the pair terms of any program that differentiates the double sum; reported
    beside the limit, not as it."""
    return _w12_grads(_w12_sums(P, w), w)


# --- W13: attention, 4 heads -------------------------------------------------------------------


def w13(Q, K, V, T):
    loss = 0.0
    for h in range(4):
        S = Q[h] @ K[h].T / 8.0
        S = S - S.max(-1, keepdims=True)
        A = np.exp(S)
        A = A / A.sum(-1, keepdims=True)
        O = A @ V[h]  # noqa: E741  (the name of the WORKLOADS.md program)
        loss = loss + np.sum((O - T[h]) ** 2)
    return loss


def w13_data():
    rng = np.random.default_rng(SEED + 13)
    return tuple(rng.standard_normal((4, 256, 64), dtype=np.float32) for _ in range(4))


def w13_limit(Q, K, V, T):
    """Hand-written NumPy forward and backward, float32, the 4 heads at once (stacked
    matmuls: one BLAS gemm a head), in place where it saves a temporary. The max shift
    has zero derivative (softmax is invariant to it), so it is left out of the backward
    pass: dS = A * (dA - sum(dA * A, -1)), then dQ = dS K / 8, dK = dS^T Q / 8."""
    KT = K.transpose(0, 2, 1)
    S = Q @ KT
    S *= np.float32(1.0 / 8.0)
    S -= S.max(-1, keepdims=True)
    A = np.exp(S, out=S)
    A /= A.sum(-1, keepdims=True)
    dO = A @ V
    dO -= T
    dO *= np.float32(2.0)  # d loss / dO = 2 (O - T)
    gV = A.transpose(0, 2, 1) @ dO
    dA = dO @ V.transpose(0, 2, 1)
    dA -= np.sum(dA * A, axis=-1, keepdims=True)
    dA *= A
    dA *= np.float32(1.0 / 8.0)  # dS, with the 1/8 of S = QK^T / 8
    gQ = dA @ K
    gK = dA.transpose(0, 2, 1) @ Q
    return gQ, gK, gV


# --- the table --------------------------------------------------------------------------------


@dataclass
class Workload:
    id: str
    title: str
    fn: Callable
    data: Callable[[], tuple]
    argnums: int | tuple[int, ...]
    limit: Callable[..., tuple]
    rounds: int  # default number of interleaved rounds
    sample_s: float = 0.0  # time each sample batches calls up to (tiny workloads)
    training: bool = False  # W6: a variant is timed on a whole training run
    memory: bool = False  # W4: also report memory kept for the backward pass
    peak_memory: bool = False  # W12: also each variant's peak memory in a call, in a fresh process
    peak_target_mb: float | None = None  # W12: what tracediff's compiled gradient should stay under
    notes: list[str] = field(default_factory=list)

    @property
    def nums(self) -> tuple[int, ...]:
        return (self.argnums,) if isinstance(self.argnums, int) else tuple(self.argnums)


WORKLOADS: dict[str, Workload] = {
    w.id: w
    for w in [
        Workload("W1", "elementwise-heavy loss, 2 x 4M float32", w1, w1_data, (0, 1), w1_limit, rounds=20),
        Workload(
            "W2",
            "MLP step, 512 x 784 -> 512 -> 10, float32",
            w2,
            w2_data,
            (0, 1, 2, 3),
            w2_limit,
            rounds=30,
            sample_s=0.02,
        ),
        Workload("W3", "Rosenbrock, 16 float64", w3, w3_data, 0, w3_limit, rounds=30, sample_s=0.02),
        Workload("W4", "40-step chain, 1M float32", w4, w4_data, (0, 1), w4_limit, rounds=12, memory=True),
        Workload(
            "W6",
            "logistic regression, 20000 x 100 float64, 300 steps",
            w6,
            w6_data,
            0,
            w6_limit,
            rounds=7,
            training=True,
        ),
        Workload(
            "W9",
            "adaptive time stepping (value-dependent while), 2 x 10000 float64",
            w9,
            w9_data,
            (0, 1, 2),
            w9_limit,
            rounds=15,
        ),
        Workload(
            "W10",
            "tridiagonal (Thomas) solve with in-place loops, n = 100000 float64",
            w10,
            w10_data,
            (0, 1, 2, 3),
            w10_limit,
            rounds=5,
        ),
        Workload(
            "W12",
            "pairwise Gaussian kernel (reduction over a broadcast), 2000 x 2 float32",
            w12,
            w12_data,
            (0, 1),
            w12_limit,
            rounds=15,
            memory=True,
            peak_memory=True,
            peak_target_mb=16.0,  # the target; one 2000 x 2000 float32 array is 16 MB
        ),
        Workload(
            "W13",
            "attention, 4 heads of 256 x 64 float32",
            w13,
            w13_data,
            (0, 1, 2),
            w13_limit,
            rounds=30,
            sample_s=0.02,
        ),
    ]
}

# W5 (first-call latency) times these in fresh processes
LATENCY_WORKLOADS = ("W2", "W4")


# --- checking gradients ---------------------------------------------------------------------


def as_tuple(g) -> tuple:
    return tuple(g) if isinstance(g, (tuple, list)) else (g,)


def tolerance(args, nums) -> float:
    f32 = any(np.asarray(args[i]).dtype == np.float32 for i in nums)
    return 2e-4 if f32 else 1e-9


def max_rel_err(got, want) -> float:
    """Largest |got - want| relative to the largest |want|, worst over the gradient arrays."""
    got, want = as_tuple(got), as_tuple(want)
    if len(got) != len(want):
        return math.inf
    worst = 0.0
    for a, b in zip(got, want):
        a = np.asarray(a, np.float64)
        b = np.asarray(b, np.float64)
        if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
            return math.inf  # (a NaN where the limit has a number is wrong, not 0 error)
        err = float(np.nanmax(np.abs(a - b), initial=0.0))
        worst = max(worst, err / max(float(np.nanmax(np.abs(b), initial=0.0)), 1e-300))
    return worst


def fd_check(w: Workload, args, grads, n_dirs=2) -> float:
    """Relative error of <grad, v> against a central difference of `fn` in float64."""
    rng = np.random.default_rng(0)
    a64 = [np.asarray(a, np.float64) if np.asarray(a).dtype.kind == "f" else a for a in args]
    worst = 0.0
    for _ in range(n_dirs):
        vs = [rng.standard_normal(np.shape(a64[i])) for i in w.nums]
        scale = max(float(np.max(np.abs(a64[i]), initial=0.0)) for i in w.nums)
        eps = 1e-5 * max(scale, 1.0)

        def at(s, vs=vs):
            shifted = list(a64)
            for i, v in zip(w.nums, vs):
                shifted[i] = a64[i] + s * v
            return float(w.fn(*shifted))

        fd = (at(eps) - at(-eps)) / (2 * eps)
        an = sum(float(np.sum(np.asarray(g, np.float64) * v)) for g, v in zip(as_tuple(grads), vs))
        worst = max(worst, abs(fd - an) / max(abs(fd), abs(an), 1e-12))
    return worst


def verify_limit(w: Workload, args, td_grads=None, td_error: str | None = None) -> tuple[bool, str]:
    """(ok, note). The limit must agree with tracediff's gradient; where they
    disagree, or tracediff fails, central differences decide."""
    lim = as_tuple(w.limit(*args))
    tol = tolerance(args, w.nums)
    fd_err = fd_check(w, args, lim)
    fd_ok = fd_err < (1e-3 if tol > 1e-6 else 1e-6)
    if td_grads is not None:
        err = max_rel_err(lim, td_grads)
        if err <= tol:
            return True, f"matches td.grad (rel err {err:.1e}), finite diff {fd_err:.1e}"
        if fd_ok:
            return True, f"differs from td.grad (rel err {err:.1e}) but finite diff agrees ({fd_err:.1e})"
        return False, f"limit disagrees with td.grad (rel err {err:.1e}) and finite diff ({fd_err:.1e})"
    if fd_ok:
        return True, f"td.grad failed ({td_error}); finite diff agrees ({fd_err:.1e})"
    return False, f"td.grad failed ({td_error}) and finite diff disagrees ({fd_err:.1e})"
