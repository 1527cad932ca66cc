"""numpy.random itself."""

import numpy.random as _m
from numpy.random import *  # noqa: F403


def __getattr__(name):
    return getattr(_m, name)
