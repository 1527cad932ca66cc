"""Measurements for the report: this machine's rates, call times, and the peak
memory of one call."""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import sys
import time
from collections.abc import Callable

import numpy as np

from .cost import Machine


def median_time(
    fn: Callable[[], object], budget: float = 0.3, least: int = 3, most: int = 200, stat=np.median
) -> float:
    """Median (or `stat`) seconds of `fn()` over as many calls as fit in `budget` seconds."""
    times = []
    start = time.perf_counter()
    while len(times) < most and (len(times) < least or time.perf_counter() - start < budget):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(stat(times))


@functools.cache
def calibrate() -> Machine:
    """Rates measured once per process (about 0.3 s; the fastest of several
    runs, as a shared machine's load only slows them): a 64 MB copy (past the
    last-level cache), matrix products in both float dtypes, vectorized
    additions in cache."""
    src = np.ones(8 << 20)
    dst = np.empty_like(src)
    bandwidth = 2 * src.nbytes / median_time(lambda: np.copyto(dst, src), 0.1, most=10, stat=min)
    gemm = {}
    for dt in ("float32", "float64"):
        a = np.ones((256, 256), dt)
        a @ a  # (the first product wakes BLAS's threads)
        gemm[dt] = 2 * 256**3 / median_time(lambda a=a: a @ a, 0.1, least=10, most=40, stat=min)
    x = np.ones(1 << 14)  # in the second-level cache, and long enough that NumPy's call is nothing
    y = np.empty_like(x)
    elementwise = x.size / median_time(lambda: np.add(x, x, out=y), 0.03, least=10, most=200, stat=min)
    try:
        import numba

        from ..backend.cpu import PARALLEL_MIN_WORK

        threads, par_min = numba.get_num_threads(), float(PARALLEL_MIN_WORK)
    except ImportError:
        threads, par_min = 1, float("inf")
    return Machine(
        bandwidth=bandwidth,
        gemm=gemm,
        elementwise=elementwise,
        call=0.6e-6,  # a compiled call through the fast path, arguments checked
        threads=threads,
        parallel_min_work=par_min,
    )


# --- peak memory ---------------------------------------------------------------------

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt  # noqa: B018 (glibc only)
        return libc
    except (OSError, AttributeError):
        return None


def _hwm() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_memory(fn: Callable[[], object]) -> int | None:
    """Bytes the resident set grows by during `fn()` at its highest (Linux; None
    elsewhere). glibc is told to map every allocation over 64 KB afresh for the
    duration, so arrays freed by earlier calls are not reused unseen. That turns
    off glibc's own adjustment of its thresholds for the rest of the process, so
    they are then set where that adjustment takes them for programs of large
    arrays (32 MB mapped afresh, 64 MB kept when freed): a threshold left at
    128 KB made later NumPy code with 2 MB temporaries 20x slower."""
    libc = _libc()
    if libc is None or _hwm() is None:
        return None
    gc.collect()
    libc.mallopt(_M_MMAP_THRESHOLD, 64 << 10)
    libc.mallopt(_M_TRIM_THRESHOLD, 64 << 10)
    libc.malloc_trim(0)
    try:
        if not _reset_hwm():
            return None
        base = _hwm()
        fn()
        return max(0, _hwm() - base)
    finally:
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20)


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
