"""np.fft (and scipy.fft) on traced arrays: every transform is one `fft`
primitive over trailing axes, with the user's axes moved there, cropped or
zero-padded to `n`/`s`, and scaled for `norm=`; fftshift and ifftshift are
slices and a concatenation."""

from __future__ import annotations

import math

import numpy as np

from ..control.arrays import register_form
from ..prims.fft import fft as fft_prim
from .common import _fail, _lift, aval_of, strong
from .shapes import concatenate, transpose
from .ufuncs import astype

_COMPLEX = {np.dtype(np.float32): np.dtype(np.complex64), np.dtype(np.complex64): np.dtype(np.complex64)}


def _complex_dtype(dt: np.dtype) -> np.dtype:
    return _COMPLEX.get(dt, np.dtype(np.complex128))


def _real_dtype(dt: np.dtype) -> np.dtype:
    return (
        np.dtype(np.float32) if dt in (np.dtype(np.float32), np.dtype(np.complex64)) else np.dtype(np.float64)
    )


def _resize(x, axis: int, n: int):
    """x cropped or zero-padded to n along axis (as np.fft's n= does)."""
    m = aval_of(x).shape[axis]
    if n == m:
        return x
    if n < m:
        idx = [slice(None)] * aval_of(x).ndim
        idx[axis] = slice(0, n)
        return x[tuple(idx)]
    shape = list(aval_of(x).shape)
    shape[axis] = n - m
    return concatenate([x, np.zeros(tuple(shape), aval_of(x).dtype)], axis=axis)


def _norm_scale(kind: str, norm, n_total: int) -> float:
    if norm in (None, "backward"):
        return 1.0
    inverse = kind in ("ifftn", "irfftn")
    if norm == "ortho":
        return math.sqrt(n_total) if inverse else 1.0 / math.sqrt(n_total)
    if norm == "forward":
        return float(n_total) if inverse else 1.0 / n_total
    _fail(ValueError, f'np.fft: norm must be "backward", "ortho" or "forward", got {norm!r}')


def _transform(kind: str, name: str, a, s, axes, norm):
    a = strong(_lift(a))
    av = aval_of(a)
    nd = av.ndim
    if axes is None:
        axes = tuple(range(nd - len(s), nd)) if s is not None else tuple(range(nd))
    axes = tuple(
        int(ax) % nd if -nd <= ax < nd else _fail(ValueError, f"{name}: axis {ax} out of range for {av}")
        for ax in axes
    )
    if len(set(axes)) != len(axes):
        _fail(NotImplementedError, f"{name}: repeated axes {axes} are not supported")
    if not axes:
        _fail(ValueError, f"{name}: no axes to transform")
    if s is None:
        s = [av.shape[ax] for ax in axes]
        if kind == "irfftn":
            s[-1] = 2 * (s[-1] - 1)
    s = tuple(int(n) for n in s)
    if len(s) != len(axes):
        _fail(ValueError, f"{name}: s={s} and axes={axes} differ in length")
    if any(n < 1 for n in s):
        _fail(ValueError, f"{name}: invalid number of data points {s} specified")
    if kind == "rfftn":
        if av.dtype.kind == "c":
            _fail(TypeError, f"{name}: takes real input, got {av}")
        a = astype(a, _real_dtype(av.dtype))
    else:
        a = astype(a, _complex_dtype(av.dtype))
    rest = [ax for ax in range(nd) if ax not in axes]
    perm = tuple(rest) + axes
    x = transpose(a, perm) if perm != tuple(range(nd)) else a
    k = len(axes)
    for j, n in enumerate(s):
        want = n // 2 + 1 if (kind == "irfftn" and j == k - 1) else n
        x = _resize(x, nd - k + j, want)
    y = fft_prim(x, kind, s)
    scale = _norm_scale(kind, norm, math.prod(s))
    if scale != 1.0:
        y = y * np.asarray(scale, _real_dtype(aval_of(y).dtype))
    inv = tuple(int(i) for i in np.argsort(perm))
    return transpose(y, inv) if perm != tuple(range(nd)) else y


def _one(kind, name):
    def fn(a, n=None, axis=-1, norm=None, out=None, **unused):
        if out is not None:
            _fail(NotImplementedError, f"{name}(..., out=...) is not supported")
        return _transform(kind, name, a, None if n is None else (n,), (axis,), norm)

    fn.__name__ = name.split(".")[-1]
    return fn


def _two(kind, name):
    def fn(a, s=None, axes=(-2, -1), norm=None, out=None, **unused):
        if out is not None:
            _fail(NotImplementedError, f"{name}(..., out=...) is not supported")
        return _transform(kind, name, a, s, axes, norm)

    fn.__name__ = name.split(".")[-1]
    return fn


def _many(kind, name):
    def fn(a, s=None, axes=None, norm=None, out=None, **unused):
        if out is not None:
            _fail(NotImplementedError, f"{name}(..., out=...) is not supported")
        return _transform(kind, name, a, s, axes, norm)

    fn.__name__ = name.split(".")[-1]
    return fn


def _shift(name, sign):
    def fn(x, axes=None):
        x = _lift(x)
        nd = aval_of(x).ndim
        axes = range(nd) if axes is None else ((axes,) if isinstance(axes, int) else axes)
        for ax in axes:
            ax = int(ax) % nd
            n = aval_of(x).shape[ax]
            k = (n // 2) if sign > 0 else (n - n // 2)  # the roll fftshift/ifftshift make
            if n < 2 or k % n == 0:
                continue
            lo = [slice(None)] * nd
            hi = [slice(None)] * nd
            lo[ax], hi[ax] = slice(n - k, n), slice(0, n - k)
            x = concatenate([x[tuple(lo)], x[tuple(hi)]], axis=ax)
        return x

    fn.__name__ = name
    return fn


_KINDS = {"fft": "fftn", "ifft": "ifftn", "rfft": "rfftn", "irfft": "irfftn"}
FUNCTIONS: dict = {}
for _base, _kind in _KINDS.items():
    FUNCTIONS[getattr(np.fft, _base)] = _one(_kind, f"np.fft.{_base}")
    FUNCTIONS[getattr(np.fft, _base + "2")] = _two(_kind, f"np.fft.{_base}2")
    FUNCTIONS[getattr(np.fft, _base + "n")] = _many(_kind, f"np.fft.{_base}n")
FUNCTIONS[np.fft.fftshift] = _shift("fftshift", +1)
FUNCTIONS[np.fft.ifftshift] = _shift("ifftshift", -1)
VIEW_FUNCS: set = set()

# scipy.fft: the same transforms (its extra keywords, overwrite_x and workers, do not
# change the result); SciPy calls np.asarray inside, so they are library forms
for _np_fn, _impl in list(FUNCTIONS.items()):
    register_form(f"scipy.fft.{_np_fn.__name__}", _impl)
