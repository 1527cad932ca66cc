"""Complex numbers in the primitive registry: real-valued functions of real
arguments that compute through complex values, so every registry test
(forward, order-2 derivatives, compiled against interpreted, batching) runs
through the complex primitives and the holomorphic rules of the others."""

from __future__ import annotations

import numpy as np
from spec_util import Spec, normal, pos


def _through_real(x, y):
    z = x + 1j * y
    return np.real(z * z * np.exp(1j * x) + np.log(z + 3.0) - np.sqrt(z + 4.0))


def _through_imag(x, y):
    z = x + 1j * y
    return np.imag(np.sin(z) / (2.0 + x * 1j) + np.cosh(z) * np.tan(0.3 * z) - z**3)


def _through_conj(x, y):
    z = x - 0.5j * y
    return np.abs(np.conj(z) * np.tanh(z) + 1.0) + np.angle(z * 1j + 2.0) + np.real(np.sum(z * np.conj(z)))


SPECS = [
    Spec("real", _through_real, normal, normal, shapes=((3, 4),)),
    Spec("imag", _through_imag, normal, normal, shapes=((5,),)),
    Spec("conj", _through_conj, normal, pos, shapes=((3, 4),)),
    # its own forward is in the derivatives of real and imag
    Spec(
        "complex",
        lambda x, y: np.real((x + 1j * y) ** 2) * np.imag(np.exp(1j * y)),
        normal,
        normal,
        shapes=((5,),),
    ),
]
