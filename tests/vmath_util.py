"""Shared helpers for the tests of tracediff.backend.vmath: sample sets over
the whole float range, error in ulp against a higher-precision reference,
and a check that a function vectorizes inside a loop."""

from __future__ import annotations

import collections
import re

import numba
import numpy as np

_LOOPS: dict = {}


def loop_of(fn):
    """An njit loop out[i] = fn(x[i]) (one compiled loop per function)."""
    if fn not in _LOOPS:

        @numba.njit(error_model="numpy")
        def apply(x, out):
            for i in range(x.shape[0]):
                out[i] = fn(x[i])

        _LOOPS[fn] = apply
    return _LOOPS[fn]


def apply(fn, x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    loop_of(fn)(x, out)
    return out


def loop2_of(fn):
    key = ("2", fn)
    if key not in _LOOPS:

        @numba.njit(error_model="numpy")
        def apply2(x, y, out):
            for i in range(x.shape[0]):
                out[i] = fn(x[i], y[i])

        _LOOPS[key] = apply2
    return _LOOPS[key]


def apply2(fn, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    loop2_of(fn)(x, y, out)
    return out


def sample_f32(step: int = 1009) -> np.ndarray:
    """Every `step`-th non-negative finite float32 (0, subnormals, ..., max), both signs."""
    x = np.arange(0, 0x7F800000, step, dtype=np.uint32).view(np.float32)
    return np.concatenate([x, -x])


def sample_f64(n: int = 2_000_000, seed: int = 0) -> np.ndarray:
    """n float64 with uniformly random bit patterns over all finite values (both signs),
    so every binade, subnormals included, is sampled equally."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 0x7FF0000000000000, n, dtype=np.int64)
    x = bits.view(np.float64)
    x[1::2] *= -1
    return x


def ulp_error(out: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|out - exact| in units of the last place of the correctly rounded result.

    `exact` is the function in a wider type (float64 for float32 results,
    np.longdouble for float64 results). Where exact is not finite or NaN,
    the error is 0 when `out` matches bit-for-bit in kind (same inf, or NaN),
    else inf.
    """
    dt = out.dtype
    rounded = exact.astype(dt)
    wide = exact.dtype
    finite = np.isfinite(rounded)
    ulp = np.spacing(np.abs(rounded).astype(dt)).astype(wide)
    err = np.abs(out.astype(wide) - exact) / np.where(finite, ulp, 1)
    special = ~finite
    same = (np.isnan(out) & np.isnan(rounded)) | (out == rounded)
    err = np.where(special, np.where(same, 0.0, np.inf), err)
    return np.where(np.isnan(err) & finite, np.inf, err).astype(np.float64)


def worst(err: np.ndarray, x: np.ndarray) -> str:
    i = int(np.argmax(err))
    return f"max error {err[i]:.3g} ulp at x = {x[i]!r}"


def packed_ops(fn, dtype) -> collections.Counter:
    """The vector instructions in the loop over `fn` (packed ps/pd ops)."""
    loop = loop_of(fn)
    x = np.ones(64, dtype)
    loop(x, np.empty_like(x))
    sig = [s for s in loop.signatures if s[0].dtype == numba.from_dtype(np.dtype(dtype))][0]
    asm = loop.inspect_asm(sig)
    return collections.Counter(re.findall(r"\b(v(?:add|mul|fmadd\w*|sub|div)p[sd])\b", asm))


def assert_vectorizes(fn, dtype) -> None:
    ops = packed_ops(fn, dtype)
    assert sum(ops.values()) > 0, f"{fn} does not vectorize for {np.dtype(dtype)}"
