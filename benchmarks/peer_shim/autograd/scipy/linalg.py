"""scipy.linalg itself."""

import scipy.linalg as _m
from scipy.linalg import *  # noqa: F403


def __getattr__(name):
    return getattr(_m, name)
