"""autograd.scipy.stats: SciPy's distribution objects themselves."""

import scipy.stats as _m
from scipy.stats import *  # noqa: F403


def __getattr__(name):
    return getattr(_m, name)
