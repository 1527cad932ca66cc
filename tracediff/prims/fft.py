"""Discrete Fourier transforms: one primitive over the trailing axes.

`fft[kind, lengths, axes]`: kind is NumPy's n-dimensional function (`fftn`,
`ifftn`, `rfftn`, `irfftn`, NumPy's default "backward" normalization), applied
over `axes` (the last len(lengths) axes; the front end moves the user's axes
there, crops or pads them, and scales for `norm=`).

Derivatives in JAX's convention (the transpose under Re(sum(a * b))): the DFT
matrix is symmetric, so fftn and ifftn are their own transposes; rfftn is the
first n//2+1 rows of the full DFT of a real input, so its transpose is the real
part of the full DFT of the cotangent padded with zeros; irfftn(t) is
Re(sum_k c_k t_k e^(2 pi i jk/n)) / N with c_k = 2 for the frequencies standing
for a conjugate pair and 1 for the others, so its transpose is
c_k conj(rfftn(u))_k / N.

Compiled CPU code calls rocket-fft (PocketFFT, NumPy's own FFT library) through
its Numba overloads of np.fft.
"""

from __future__ import annotations

import math

import numpy as np

from ..core import OTHER, Aval, Primitive

fft_p = Primitive("fft", OTHER)
fft_p.complex = True
KINDS = ("fftn", "ifftn", "rfftn", "irfftn")
_COMPLEX_OF = {np.dtype(np.float32): np.dtype(np.complex64), np.dtype(np.float64): np.dtype(np.complex128)}
_REAL_OF = {v: k for k, v in _COMPLEX_OF.items()}


@fft_p.def_abstract
def _fft_abstract(x, *, kind, lengths, axes):
    k = len(lengths)
    if kind not in KINDS or axes != tuple(range(x.ndim - k, x.ndim)):
        raise ValueError(f"fft: kind {kind!r} over axes {axes} of {x} (the last {k} axes expected)")
    lead, tail = x.shape[: x.ndim - k], tuple(x.shape[x.ndim - k :])
    if kind == "rfftn":
        if x.dtype not in _COMPLEX_OF or tail != tuple(lengths):
            raise TypeError(f"fft (rfftn): takes a float array with trailing shape {lengths}, got {x}")
        return Aval(lead + tail[:-1] + (lengths[-1] // 2 + 1,), _COMPLEX_OF[x.dtype])
    if x.dtype not in _REAL_OF:
        raise TypeError(f"fft ({kind}): takes a complex array, got {x}")
    if kind == "irfftn":
        if tail != tuple(lengths[:-1]) + (lengths[-1] // 2 + 1,):
            raise ValueError(f"fft (irfftn): trailing shape {tail} does not give lengths {lengths}")
        return Aval(lead + tuple(lengths), _REAL_OF[x.dtype])
    if tail != tuple(lengths):
        raise ValueError(f"fft ({kind}): trailing shape {tail} is not {lengths}")
    return Aval(x.shape, x.dtype)


@fft_p.def_impl
def _fft_impl(x, *, kind, lengths, axes):
    out = getattr(np.fft, kind)(x, s=lengths, axes=axes)
    dt = _COMPLEX_OF.get(x.dtype, x.dtype) if kind != "irfftn" else _REAL_OF[x.dtype]
    return out.astype(dt, copy=False)


def fft(x, kind: str, lengths: tuple):
    """fft_p over the last len(lengths) axes of x."""
    from ..builder import bind

    nd = len(np.shape(x))
    return bind(fft_p, x, kind=kind, lengths=tuple(lengths), axes=tuple(range(nd - len(lengths), nd)))


def _pad_last(x, n: int):
    m = np.shape(x)[-1]
    if m == n:
        return x
    zeros = np.zeros(np.shape(x)[:-1] + (n - m,), x.dtype)
    return np.concatenate([x, zeros], axis=-1)


def _hermitian_weights(lengths) -> np.ndarray:
    """c_k: 2 for a frequency standing for itself and its conjugate, 1 for 0 and n/2."""
    n = lengths[-1]
    c = np.full(n // 2 + 1, 2.0)
    c[0] = 1.0
    if n % 2 == 0:
        c[-1] = 1.0
    return c


@fft_p.def_vjp
def _fft_vjp(ct, ans, x, *, kind, lengths, axes):
    if kind in ("fftn", "ifftn"):
        return [fft(ct, kind, lengths)]
    if kind == "rfftn":
        return [np.real(fft(_pad_last(ct, lengths[-1]), "fftn", lengths))]
    # irfftn: ct is real
    scale = _hermitian_weights(lengths) / float(math.prod(lengths))
    return [np.conjugate(fft(ct, "rfftn", lengths)) * scale.astype(_REAL_OF[x.dtype])]


@fft_p.def_batch
def _fft_batch(args, dims, size, *, kind, lengths, axes):
    from ..batching import to_front

    (x,), (d,) = args, dims
    return [fft(to_front(x, d, size), kind, lengths)], [0]


# rocket-fft gives Numba np.fft (registered when Numba starts, through its entry point)
fft_p.call["cpu"] = "np.fft.{kind}({0}, {lengths}, {axes})"
fft_p.imports["cpu"] = ("import rocket_fft",)
fft_p.cost = 20
