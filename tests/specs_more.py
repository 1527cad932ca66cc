"""Registry specs of the "more" family (sorting, searching, cumulative products and
extremes): each primitive once, grouped with the compositions built on it."""

from __future__ import annotations

import numpy as np
from spec_util import Spec, normal


def ascending(rng, dt, shape):
    """Sorted knots near the integers k - 0.4 n (interpolation nodes)."""
    n = shape[-1]
    return (np.arange(n) - 0.4 * n + rng.uniform(-0.05, 0.05, shape)).astype(dt)


def between(rng, dt, shape):
    """Points halfway between the `ascending` knots (and beyond both ends), at least
    0.25 from any knot: finite differences never cross a knot, whatever the seed."""
    n = shape[-1]
    return (rng.integers(-1, n + 1, shape) - 0.4 * n + 0.5 + rng.uniform(-0.2, 0.2, shape)).astype(dt)


def spread(rng, dt, shape):
    """Distinct values at least 0.25 apart (orders and running extremes stay put under finite differences)."""
    n = int(np.prod(shape))
    x = rng.permutation(n) * 0.3 - 0.15 * n + rng.uniform(0.0, 0.05, n)
    return x.reshape(shape).astype(dt)


def with_zeros(rng, dt, shape):
    """Normal values with exact zeros (cumulative products: derivatives through a zero)."""
    x = rng.standard_normal(shape)
    x.flat[::3] = 0.0
    return x.astype(dt)


SPECS = [
    Spec(
        "argsort",
        lambda x: np.sort(x, axis=0) * np.arange(1.0, 4.0),
        spread,
        shapes=((4, 3),),
    ),
    Spec(
        "searchsorted",
        lambda x, xp, fp: np.interp(x, xp, fp) + np.digitize(x, xp) + np.searchsorted(xp, x, side="right"),
        between,
        ascending,
        normal,
        shapes=((6,),),
    ),
    Spec(
        "linrec", lambda x: np.cumprod(x, axis=1) + np.cumprod(x[::-1], axis=0), with_zeros, shapes=((3, 4),)
    ),
    Spec(
        "cumarg",
        lambda x: np.maximum.accumulate(x, axis=0) * np.fmin.accumulate(x, axis=1),
        spread,
        shapes=((4, 3),),
    ),
]
