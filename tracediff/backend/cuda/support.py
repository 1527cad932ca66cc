"""What generated CUDA host functions call at run time: a device memory pool,
fills and copies, and reading a device scalar on the host.

A program's host function takes a `Pool`: each intermediate array is taken
from it and given back when the program reads it for the last time (the
writer knows when), so a training loop's step reuses the same device memory
instead of allocating on every call.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from numba import cuda

from .devicelib import SIMULATOR


class Pool:
    """Free device arrays by (shape, dtype): `take` reuses one or allocates."""

    def __init__(self):
        self.free: defaultdict[tuple, list] = defaultdict(list)

    def take(self, shape: tuple, dtype) -> object:
        stack = self.free.get((shape, dtype))
        if stack:
            return stack.pop()
        return cuda.device_array(shape, dtype)

    def give(self, a) -> None:
        self.free[(a.shape, a.dtype)].append(a)


@cuda.jit
def _fill(a, v):
    for f in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        a[f] = v


@cuda.jit
def _copy(dst, src):
    for f in range(cuda.grid(1), dst.size, cuda.gridsize(1)):
        dst[f] = src[f]


def blocks(n: int) -> int:
    """Blocks of THREADS for a grid-stride loop over n items (at least one, at most MAX_BLOCKS)."""
    return max(1, min(-(-n // THREADS), MAX_BLOCKS))


# threads per block and the most blocks of a grid-stride launch; the simulator runs
# each thread as a Python thread: few and small blocks (still several, so every
# kernel's grid-stride and multi-block paths run in tests)
THREADS, MAX_BLOCKS = (8, 2) if SIMULATOR else (256, 1024)


def fill(pool: Pool, shape: tuple, dtype, value) -> object:
    """A device array of `shape` filled with `value` (shape () is stored as (1,))."""
    a = pool.take(shape or (1,), np.dtype(dtype))
    flat = a.reshape(a.size)
    _fill[blocks(a.size), THREADS](flat, np.dtype(dtype).type(value))
    return a


def copy(pool: Pool, x) -> object:
    """A fresh C-contiguous device copy of the C-contiguous device array x."""
    a = pool.take(x.shape, x.dtype)
    if x.size:
        _copy[blocks(x.size), THREADS](a.reshape(a.size), x.reshape(x.size))
    return a


if SIMULATOR:
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    def is_device(a) -> bool:
        return isinstance(a, FakeCUDAArray)

    def as_device(a):
        return a

else:

    def is_device(a) -> bool:
        return type(a) is not np.ndarray and cuda.is_cuda_array(a)

    def as_device(a):
        return cuda.as_cuda_array(a)


def host(x):
    """The host value of a 0-d program value: a device (1,) array is read back."""
    if is_device(x):
        return x.copy_to_host()[0]
    return x
