"""numpy.fft itself."""

import numpy.fft as _m
from numpy.fft import *  # noqa: F403


def __getattr__(name):
    return getattr(_m, name)
