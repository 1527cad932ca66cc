"""scipy.integrate itself."""

import scipy.integrate as _m
from scipy.integrate import *  # noqa: F403


def __getattr__(name):
    return getattr(_m, name)
