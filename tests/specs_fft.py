"""np.fft in the primitive registry: the four kinds of the `fft` primitive,
through real-valued functions of real arguments."""

from __future__ import annotations

import numpy as np
from spec_util import Spec, normal


def _all_kinds(x, y):
    z = np.fft.fft(x + 1j * y, axis=0)  # fftn
    r = np.fft.irfft(np.fft.rfft(x) * np.fft.ifft(y)[..., : x.shape[-1] // 2 + 1])  # rfftn, ifftn, irfftn
    return np.real(z * np.conj(z)) + np.imag(z) + r * x


SPECS = [Spec("fft", _all_kinds, normal, normal, shapes=((4, 6),))]
