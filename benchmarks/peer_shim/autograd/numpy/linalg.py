"""numpy.linalg itself."""

import numpy.linalg as _m
from numpy.linalg import *  # noqa: F403


def __getattr__(name):
    return getattr(_m, name)
