"""What the primitive registry tests share: argument makers and `Spec`.

A family of primitives (linear algebra, special functions, ...) lists its
specs in a module `tests/specs_<family>.py` (a list `SPECS`); `test_prims.py`
collects them, so every registry test (forward, order-2 derivatives, compiled
against interpreted, batching) runs over them too.
"""

from __future__ import annotations

import numpy as np

# --- argument makers: (rng, dtype, shape) -> array ------------------------------


def normal(rng, dt, shape):
    return rng.standard_normal(shape).astype(dt)


def pos(rng, dt, shape):
    return rng.uniform(0.5, 2.0, shape).astype(dt)


def unit(rng, dt, shape):
    return rng.uniform(-0.8, 0.8, shape).astype(dt)


def gt1(rng, dt, shape):
    return rng.uniform(1.3, 3.0, shape).astype(dt)


def away0(rng, dt, shape):
    """Away from the integers and half-integers (kinks of abs/sign/floor/round...)."""
    frac = rng.uniform(0.15, 0.35, shape) + rng.choice([0.0, 0.5], shape)  # not near k or k + 1/2
    x = frac + rng.integers(-2, 2, shape)
    return x.astype(dt)


def small(rng, dt, shape):
    return rng.uniform(-0.4, 0.4, shape).astype(dt)


def pm1(rng, dt, shape):
    """±1 plus noise: never within 0.4 of a `small` value (no ties for FD to cross)."""
    return (rng.choice([-1.0, 1.0], shape) + 0.1 * rng.standard_normal(shape)).astype(dt)


def big_pos(rng, dt, shape):
    return rng.uniform(2.5, 3.0, shape).astype(dt)


def ints(rng, dt, shape):
    return rng.integers(-3, 4, shape).astype(np.int64)


class Spec:
    def __init__(
        self,
        prim,
        fn,
        *makers,
        shapes=((3, 4), (5,), ()),
        diff=True,
        fwd=True,
        tol32=None,
        order=2,
        modes=None,
        also=(),
    ):
        # `also`: further primitives `fn` exercises (one spec can test a group)
        self.also = tuple(also)
        self.prim, self.fn, self.makers, self.shapes = prim, fn, makers, shapes
        self.diff, self.fwd, self.tol32 = diff, fwd, tol32
        self.order, self.modes = order, modes or ("rev", "fwd")

    def args(self, rng, dt, shape):
        return tuple(m(rng, dt, shape) for m in self.makers)
