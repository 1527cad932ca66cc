"""scipy.signal itself."""

import scipy.signal as _m
from scipy.signal import *  # noqa: F403


def __getattr__(name):
    return getattr(_m, name)
