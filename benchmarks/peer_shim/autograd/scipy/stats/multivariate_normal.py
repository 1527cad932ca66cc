"""scipy.stats.multivariate_normal itself, as a module of its methods."""

import scipy.stats as _s

_d = _s.multivariate_normal


def __getattr__(name):
    return getattr(_d, name)
