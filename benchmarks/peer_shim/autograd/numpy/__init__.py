"""autograd.numpy is NumPy itself: users write plain NumPy."""

import numpy as _numpy
from numpy import *  # noqa: F403

from . import fft, linalg, random  # noqa: F401


def __getattr__(name):
    return getattr(_numpy, name)
