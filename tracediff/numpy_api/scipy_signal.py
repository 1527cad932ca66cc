"""scipy.signal's convolutions on traced arrays (N-D, modes full/valid/same, the
values of method='direct'), registered as library forms.

One gather and one matrix product: the windows of in1 that each output element
sees, [outputs, kernel elements] (zero where a window leaves in1), times the
flipped in2. Exact and differentiable in both inputs (the gather's derivative
is a scatter-add); memory is outputs x kernel size, fine for the small kernels
direct convolution is for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..control.arrays import register_form
from .common import _fail, traced

MODES = ("full", "valid", "same")


def _windows(shape1: tuple, shape2: tuple, mode: str, late: bool) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Flat indices into in1 of every (output, kernel offset) pair, whether each lies
    inside in1, and the output shape: out[k] = sum_j in1[k - (m-1) + j] * flip(in2)[j]
    with k running over the mode's part of the full output (`late`: 'same' starts at m // 2,
    as scipy.signal.correlate2d, instead of (m - 1) // 2)."""
    D = len(shape1)
    pos, ok, out_shape = [], [], []
    for d, (n, m) in enumerate(zip(shape1, shape2)):
        full = n + m - 1
        if mode == "full":
            lo, size = 0, full
        elif mode == "valid":
            lo, size = m - 1, n - m + 1
        else:  # same: centered, the size of in1
            lo, size = (m // 2 if late else (m - 1) // 2), n
        k = np.arange(lo, lo + size).reshape([-1 if a == d else 1 for a in range(2 * D)])
        j = np.arange(m).reshape([-1 if a == D + d else 1 for a in range(2 * D)])
        p = k - (m - 1) + j
        pos.append(p)
        ok.append((p >= 0) & (p < n))
        out_shape.append(size)
    strides = np.cumprod((1,) + tuple(shape1[::-1]))[:-1][::-1]
    flat = sum(np.clip(p, 0, n - 1) * s for p, n, s in zip(pos, shape1, strides))
    inside = np.logical_and.reduce(np.broadcast_arrays(*ok))
    full_shape = tuple(out_shape) + tuple(shape2)
    return np.broadcast_to(flat, full_shape), np.broadcast_to(inside, full_shape), tuple(out_shape)


def _convolve(name: str, in1: Any, in2: Any, mode: str, method: str, flip: bool, late: bool = False) -> Any:
    if mode not in MODES:
        _fail(ValueError, f"{name}: acceptable mode flags are 'valid', 'same', or 'full', got {mode!r}")
    if method not in ("auto", "direct", "fft"):
        _fail(ValueError, f"{name}: acceptable method flags are 'auto', 'direct', or 'fft', got {method!r}")
    in1 = in1 if traced(in1) else np.asarray(in1)
    in2 = in2 if traced(in2) else np.asarray(in2)
    s1, s2 = np.shape(in1), np.shape(in2)
    if len(s1) != len(s2):
        _fail(
            ValueError, f"{name}: in1 and in2 should have the same dimensionality, got shapes {s1} and {s2}"
        )
    if 0 in s1 or 0 in s2:
        _fail(ValueError, f"{name}: empty inputs are not supported (shapes {s1} and {s2})")
    if flip:  # correlation: convolution with the reversed in2
        in2 = np.flip(in2)
    if mode == "valid":
        if all(a >= b for a, b in zip(s1, s2)):
            pass
        elif all(b >= a for a, b in zip(s1, s2)):
            in1, in2, s1, s2 = in2, in1, s2, s1  # convolution commutes; the larger one slides
        else:
            _fail(
                ValueError,
                f"{name}: for 'valid' mode, one input must be at least as large as the other in every "
                f"dimension, got shapes {s1} and {s2}",
            )
    dt = np.result_type(in1.dtype, in2.dtype)
    if len(s1) == 0:
        return in1 * in2
    flat, inside, out_shape = _windows(s1, s2, mode, late)
    win = np.reshape(in1, (-1,))[flat]  # [outputs..., kernel...]
    win = np.where(inside, win, np.zeros((), dt))
    P, M = int(np.prod(out_shape)), int(np.prod(s2))
    kernel = np.reshape(np.flip(in2), (M,))
    out = np.reshape(np.reshape(win, (P, M)) @ kernel, out_shape)
    return out.astype(dt) if out.dtype != dt else out


def convolve(in1: Any, in2: Any, mode: str = "full", method: str = "auto") -> Any:
    """scipy.signal.convolve."""
    return _convolve("scipy.signal.convolve", in1, in2, mode, method, flip=False)


def correlate(in1: Any, in2: Any, mode: str = "full", method: str = "auto") -> Any:
    """scipy.signal.correlate (real inputs)."""
    return _convolve("scipy.signal.correlate", in1, in2, mode, method, flip=True)


def _check_2d(name: str, in1: Any, in2: Any, boundary: str, fillvalue: Any) -> None:
    if np.ndim(in1) != 2 or np.ndim(in2) != 2:
        _fail(
            ValueError,
            f"{name}: in1 and in2 should both be 2-D, got shapes {np.shape(in1)} and {np.shape(in2)}",
        )
    if boundary != "fill" or traced(fillvalue) or fillvalue != 0:
        _fail(NotImplementedError, f"{name}: only boundary='fill' with fillvalue=0 is supported")


def convolve2d(in1: Any, in2: Any, mode: str = "full", boundary: str = "fill", fillvalue: Any = 0) -> Any:
    """scipy.signal.convolve2d (zero fill)."""
    _check_2d("scipy.signal.convolve2d", in1, in2, boundary, fillvalue)
    return _convolve("scipy.signal.convolve2d", in1, in2, mode, "direct", flip=False)


def correlate2d(in1: Any, in2: Any, mode: str = "full", boundary: str = "fill", fillvalue: Any = 0) -> Any:
    """scipy.signal.correlate2d (zero fill)."""
    _check_2d("scipy.signal.correlate2d", in1, in2, boundary, fillvalue)
    return _convolve("scipy.signal.correlate2d", in1, in2, mode, "direct", flip=True, late=True)


for _name, _form in (
    ("convolve", convolve),
    ("correlate", correlate),
    ("convolve2d", convolve2d),
    ("correlate2d", correlate2d),
):
    register_form(f"scipy.signal.{_name}", _form)
