"""np.fft and scipy.fft on traced arrays: values against NumPy, derivatives
against finite differences (complex inputs and outputs: JAX's convention),
compiled against interpreted (one program for every case), batching."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft

import tracediff as td

RNG = np.random.default_rng(0)
X = RNG.standard_normal((4, 6))
Z = X + 1j * RNG.standard_normal((4, 6))
ZH = np.fft.rfft(X)  # a half spectrum (irfft's input)


def _scipy_fft(a):
    return scipy.fft.fft(a, axis=0, workers=1)


def _scipy_irfft(a):
    return scipy.fft.irfft(a, n=6)


CASES = {
    "fft": (lambda a: np.fft.fft(a), Z),
    "fft_real_input": (lambda a: np.fft.fft(a, axis=0), X),
    "ifft_pad": (lambda a: np.fft.ifft(a, n=8, axis=0), Z),
    "fft_crop_ortho": (lambda a: np.fft.fft(a, n=3, norm="ortho"), Z),
    "rfft": (lambda a: np.fft.rfft(a), X),
    "rfft_odd_forward": (lambda a: np.fft.rfft(a, n=5, norm="forward"), X),
    "irfft": (lambda a: np.fft.irfft(a), ZH),
    "irfft_odd_axis0": (lambda a: np.fft.irfft(a, n=7, axis=0), Z),
    "fft2_ortho": (lambda a: np.fft.fft2(a, norm="ortho"), X),
    "ifft2": (lambda a: np.fft.ifft2(a, s=(3, 8)), Z),
    "rfftn": (lambda a: np.fft.rfftn(a, s=(5, 4), axes=(0, 1)), X),
    "rfft2_swapped": (lambda a: np.fft.rfft2(a, axes=(1, 0)), X),
    "irfftn_forward": (lambda a: np.fft.irfftn(a, norm="forward"), Z),
    "irfft2": (lambda a: np.fft.irfft2(a, s=(4, 5)), Z),
    "ifftn_axes": (lambda a: np.fft.ifftn(a, axes=(1, 0)), Z),
    "fftshift": (lambda a: np.fft.fftshift(a), X),
    "ifftshift_axis": (lambda a: np.fft.ifftshift(a, axes=1), Z),
    # (SciPy's functions call np.asarray: converted code calls tracediff's instead)
    "scipy_fft": (_scipy_fft, Z),
    "scipy_irfft": (_scipy_irfft, ZH),
}
IDS = sorted(CASES)


@pytest.mark.parametrize("name", IDS)
def test_values_and_derivatives(name):
    f, a = CASES[name]
    want = f(a)
    got = td.jit(f, target="interpret")(a)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    td.check_grads(f, (a,), order=2)


@pytest.mark.parametrize("dt", [np.float32, np.complex64])
def test_single_precision(dt):
    a = (Z if np.dtype(dt).kind == "c" else X).astype(dt)
    f = lambda a: np.fft.fft2(a) * 2.0  # noqa: E731
    got = td.jit(f)(a)
    assert got.dtype == np.complex64
    np.testing.assert_allclose(got, f(a), rtol=1e-5, atol=1e-5)
    td.check_grads(lambda a: np.fft.irfft(np.fft.rfft(np.real(a)) * 1j), (a,), order=1)


def test_compiled_matches_interpreted():
    """Every case's values and the gradient of a real loss of it, in one program
    (the scipy.fft cases are np.fft's functions once traced)."""
    ids = [n for n in IDS if not n.startswith("scipy")]
    weights = {n: RNG.standard_normal(CASES[n][0](CASES[n][1]).shape) for n in ids}

    def everything(*args):
        outs = []
        for n, a in zip(ids, args):
            f = CASES[n][0]
            outs.append(f(a))
            outs.append(td.grad(lambda b: np.sum(np.abs(f(b)) ** 2 * weights[n]))(a))  # noqa: B023  (called at once)
        return tuple(outs)

    args = [CASES[n][1] for n in ids]
    got = td.jit(everything)(*args)
    want = td.jit(everything, target="interpret")(*args)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10)


def test_vmap_and_jax_convention():
    f = lambda a: np.sum(np.abs(np.fft.fft(a)) ** 2)  # noqa: E731
    batch = np.stack([Z, 2 * Z])
    got = td.vmap(td.grad(f))(batch)
    np.testing.assert_allclose(got[1], td.grad(f)(2 * Z), rtol=1e-12)
    # Parseval: sum |fft(z)|^2 = n sum |z|^2, whose JAX-convention gradient is 2 n conj(z)
    np.testing.assert_allclose(td.grad(f)(Z), 2 * Z.shape[-1] * np.conj(Z), rtol=1e-12)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda a: np.fft.rfft(a), TypeError, "real input"),
        (lambda a: np.fft.fft(a, n=0), ValueError, "data points"),
        (lambda a: np.fft.fftn(a, axes=(0, 0)), NotImplementedError, "repeated axes"),
        (lambda a: np.fft.fft(a, norm="bogus"), ValueError, "norm"),
        (lambda a: np.fft.fft(a, axis=3), ValueError, "axis 3"),
    ],
)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        td.jit(call, target="interpret")(Z)
