"""Shared helpers for tests/test_programs.py: program specs, input generators, tree checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)

# forward-value tolerances (relative; absolute part is scaled by the output's magnitude)
FWD_RTOL = {F32: 1e-6, F64: 1e-12}


@dataclass
class Program:
    """One user program: `fn(*gen(rng, dtype))`, differentiated w.r.t. `argnums`."""

    name: str
    fn: Callable
    gen: Callable[[np.random.Generator, np.dtype], tuple]
    argnums: int | tuple[int, ...] = 0
    dtypes: tuple = (F32, F64)
    order: int = 2  # check_grads order for float64 (float32 always uses order 1)
    fwd: bool = False  # also check forward mode in check_grads
    ref_grad: Callable | None = None  # closed form: args -> gradient of the scalarized fn
    fwd_rtol: float | None = None  # forward tolerance override (e.g. long float32 chains)
    extra: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return self.name


# --- input generators ----------------------------------------------------------------


def u(r, dt, shape, lo=-1.0, hi=1.0):
    return r.uniform(lo, hi, shape).astype(dt)


def n(r, dt, shape):
    return r.standard_normal(shape).astype(dt)


def away(r, dt, shape, lo=0.3, hi=2.0):
    """Values with |x| in [lo, hi]: away from 0 (abs, sign, reciprocal, cbrt...)."""
    s = np.where(r.uniform(size=shape) < 0.5, -1.0, 1.0)
    return (s * r.uniform(lo, hi, shape)).astype(dt)


def sep(r, dt, shape, gap=0.5):
    """Distinct values at least `gap` apart (no ties for max/min/argmax)."""
    size = int(np.prod(shape)) if shape else 1
    v = (r.permutation(size) - size / 2) * gap + r.uniform(-0.05, 0.05, size)
    return v.reshape(shape).astype(dt)


def frac(r, dt, shape, lo=0.2, hi=0.8):
    """Integers plus a fraction in [lo, hi]: away from floor/ceil/round steps."""
    k = r.integers(-3, 4, shape)
    return (k + r.uniform(lo, hi, shape)).astype(dt)


def pos_def(r, dt, k):
    a = r.standard_normal((k, k))
    return (a @ a.T / k + np.eye(k)).astype(dt)


# --- pytree helpers -------------------------------------------------------------------


def leaves(tree) -> list:
    if tree is None:
        return []
    if isinstance(tree, dict):
        return [x for k in sorted(tree) for x in leaves(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [x for t in tree for x in leaves(t)]
    return [tree]


def assert_same_structure(got, want, path="arg"):
    """`got` has exactly the container structure of `want`; array leaves match shape/dtype."""
    if want is None:
        assert got is None, f"{path}: expected None, got {type(got).__name__}"
        return
    if isinstance(want, dict):
        assert type(got) is dict, f"{path}: expected dict, got {type(got).__name__}"
        assert set(got) == set(want), f"{path}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            assert_same_structure(got[k], want[k], f"{path}[{k!r}]")
        return
    if isinstance(want, (list, tuple)):
        assert type(got) is type(want), f"{path}: expected {type(want).__name__}, got {type(got).__name__}"
        assert len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same_structure(g, w, f"{path}[{i}]")
        return
    if isinstance(want, float):
        assert isinstance(got, float), f"{path}: Python float argument, gradient is {type(got).__name__}"
        return
    want = np.asarray(want)
    assert np.shape(got) == want.shape, f"{path}: shape {np.shape(got)} != {want.shape}"
    assert np.asarray(got).dtype == want.dtype, f"{path}: dtype {np.asarray(got).dtype} != {want.dtype}"


def assert_close_tree(got, want, rtol, what="value", check_dtype=True):
    """Same structure, dtypes (when asked), and values (rtol, atol scaled to the output)."""
    gl, wl = leaves(got), leaves(want)
    assert len(gl) == len(wl), f"{what}: {len(gl)} leaves vs {len(wl)}"
    for i, (g, w) in enumerate(zip(gl, wl)):
        g_, w_ = np.asarray(g), np.asarray(w)
        assert g_.shape == w_.shape, f"{what}[{i}]: shape {g_.shape} != {w_.shape}"
        if check_dtype:
            assert g_.dtype == w_.dtype, f"{what}[{i}]: dtype {g_.dtype} != NumPy's {w_.dtype}"
        if w_.dtype.kind in "fc":
            finite = np.isfinite(w_)
            scale = max(1.0, float(np.max(np.abs(w_[finite]), initial=0.0)))
            np.testing.assert_allclose(
                g_.astype(np.float64), w_.astype(np.float64), rtol=rtol, atol=rtol * scale, err_msg=what
            )
        else:
            np.testing.assert_array_equal(g_, w_, err_msg=what)


def central_diff_grad(f: Callable, wrt: list, eps=1e-6) -> list:
    """Central-difference gradient of scalar `f(*wrt)` w.r.t. each (float64) leaf array/float."""
    out = []
    for i, a in enumerate(wrt):
        if isinstance(a, float):
            lo = list(wrt)
            hi = list(wrt)
            lo[i], hi[i] = a - eps, a + eps
            out.append((float(f(*hi)) - float(f(*lo))) / (2 * eps))
            continue
        a = np.asarray(a, np.float64)
        g = np.zeros_like(a)
        for j in np.ndindex(a.shape):
            hi, lo = a.copy(), a.copy()
            hi[j] += eps
            lo[j] -= eps
            wh, wl = list(wrt), list(wrt)
            wh[i], wl[i] = hi, lo
            g[j] = (float(f(*wh)) - float(f(*wl))) / (2 * eps)
        out.append(g)
    return out


def flatten(tree):
    """(leaves, rebuild) for dict/list/tuple/None trees; rebuild(new_leaves) -> same structure."""
    if tree is None:
        return [], lambda it: None
    if isinstance(tree, dict):
        keys = sorted(tree)
        parts = [flatten(tree[k]) for k in keys]

        def rebuild_d(ls):
            ls = list(ls)
            res, pos = {}, 0
            for k, (lv, rb) in zip(keys, parts):
                res[k] = rb(ls[pos : pos + len(lv)])
                pos += len(lv)
            return res

        return [x for lv, _ in parts for x in lv], rebuild_d
    if isinstance(tree, (list, tuple)):
        parts = [flatten(t) for t in tree]
        kind = type(tree)

        def rebuild_s(ls):
            ls = list(ls)
            res, pos = [], 0
            for lv, rb in parts:
                res.append(rb(ls[pos : pos + len(lv)]))
                pos += len(lv)
            return kind(res)

        return [x for lv, _ in parts for x in lv], rebuild_s
    return [tree], lambda ls: list(ls)[0]
