"""Matrix products for compiled CPU programs, through the BLAS NumPy itself uses.

Numba's `np.dot` calls the OpenBLAS bundled with SciPy; NumPy's `@` calls the
one bundled with NumPy. A process that uses both (a user's NumPy code around
tracediff's calls, or a benchmark against NumPy) then has two OpenBLAS thread
pools, and the idle threads of one spin while the other computes: on 2 cores
W2's two products took 11-15 ms a call alternating with NumPy's against
5.6-7.2 ms in a process of their own (and SciPy's 0.3.30 was 15 % slower than
NumPy's 0.3.31 at these shapes alone). So the generated code calls NumPy's
library (`scipy_cblas_sgemm64_`, ...: ILP64, found next to NumPy), linked by
symbol name (each process registers the addresses) so that Numba's disk
cache stays valid across processes. Where
NumPy bundles no such library (another platform, a NumPy built against a
system BLAS), the same functions are Numba's `np.dot` (`BLAS` says which).

`gemm(a, b)` and `gemm_into(a, b, out)` take float32/float64 matrices in C or
Fortran order (a transposed view is passed with the transpose flag, not
copied); `gemv(a, x)` a matrix and a contiguous vector.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numba
import numpy as np
from numba import types

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def _numpy_openblas() -> str | None:
    """The path of NumPy's bundled ILP64 OpenBLAS with the symbols used here, or None."""
    here = os.path.dirname(np.__file__)
    for path in sorted(glob.glob(os.path.join(here, os.pardir, "numpy.libs", "libscipy_openblas64_*.so"))):
        try:
            lib = ctypes.CDLL(path)
            for sym in (
                "scipy_cblas_sgemm64_",
                "scipy_cblas_dgemm64_",
                "scipy_cblas_sgemv64_",
                "scipy_cblas_dgemv64_",
            ):
                getattr(lib, sym)
        except (OSError, AttributeError):
            continue
        return os.path.realpath(path)
    return None


def _version(path: str) -> str:
    try:
        get = ctypes.CDLL(path).scipy_openblas_get_config64_
        get.restype = ctypes.c_char_p
        return get().decode().split()[1]
    except (OSError, AttributeError, IndexError, UnicodeDecodeError):
        return "?"


_PATH = None if os.environ.get("TRACEDIFF_NUMBA_BLAS") == "1" else _numpy_openblas()

if _PATH is not None:
    import llvmlite.binding as llvm

    # the four symbols only, by address, for Numba's linker: loading the library
    # globally (RTLD_GLOBAL) would let SciPy's LP64 LAPACK bind to its ILP64 symbols
    _lib = ctypes.CDLL(_PATH)  # (already loaded by NumPy: its handle, RTLD_LOCAL)
    for _sym in (
        "scipy_cblas_sgemm64_",
        "scipy_cblas_dgemm64_",
        "scipy_cblas_sgemv64_",
        "scipy_cblas_dgemv64_",
    ):
        llvm.add_symbol(_sym, ctypes.cast(getattr(_lib, _sym), ctypes.c_void_p).value)
    BLAS = f"NumPy's OpenBLAS {_version(_PATH)} (ILP64)"
    i32, i64 = types.int32, types.int64
    # pointers are passed as 64-bit integers (`a.ctypes.data`): the same registers
    _sgemm = types.ExternalFunction(
        "scipy_cblas_sgemm64_",
        types.void(i32, i32, i32, i64, i64, i64, types.float32, i64, i64, i64, i64, types.float32, i64, i64),
    )
    _dgemm = types.ExternalFunction(
        "scipy_cblas_dgemm64_",
        types.void(i32, i32, i32, i64, i64, i64, types.float64, i64, i64, i64, i64, types.float64, i64, i64),
    )
    _sgemv = types.ExternalFunction(
        "scipy_cblas_sgemv64_",
        types.void(i32, i32, i64, i64, types.float32, i64, i64, i64, i64, types.float32, i64, i64),
    )
    _dgemv = types.ExternalFunction(
        "scipy_cblas_dgemv64_",
        types.void(i32, i32, i64, i64, types.float64, i64, i64, i64, i64, types.float64, i64, i64),
    )

    @numba.njit(cache=True, nogil=True)
    def _order(a):
        """(transpose flag, leading dimension) of a matrix in C or Fortran order; (0, 0) else."""
        m, n = a.shape
        if a.flags.c_contiguous:
            return NO_TRANS, max(n, 1)
        if a.flags.f_contiguous:
            return TRANS, max(m, 1)
        return 0, 0

    @numba.njit(cache=True, nogil=True)
    def _loops(a, b, out):
        """out = a @ b by plain loops, for operands BLAS cannot take (and k == 0).
        Not `out[...] = np.dot(a, b)`: that broadcasting store compiles Numba's
        shape-error formatting, 3 of the 4.5 s a cold `gemm` took to compile."""
        m, k = a.shape
        n = b.shape[1]
        for i in range(m):
            for j in range(n):
                out[i, j] = 0.0
            for p in range(k):
                aip = a[i, p]
                for j in range(n):
                    out[i, j] += aip * b[p, j]

    @numba.njit(cache=True, nogil=True)
    def gemm_into(a, b, out):
        """out = a @ b (out C-contiguous, of a's dtype)."""
        m, k = a.shape
        n = b.shape[1]
        if m == 0 or n == 0:
            return
        ta, lda = _order(a)
        tb, ldb = _order(b)
        if k == 0 or ta == 0 or tb == 0 or not out.flags.c_contiguous:
            _loops(a, b, out)  # (not reached from generated code: its operands are C or F)
            return
        one, zero = 1.0, 0.0
        pa, pb, po = a.ctypes.data, b.ctypes.data, out.ctypes.data
        if a.itemsize == 4:  # float32 (float64 else)
            _sgemm(ROW_MAJOR, ta, tb, m, n, k, one, pa, lda, pb, ldb, zero, po, max(n, 1))
        else:
            _dgemm(ROW_MAJOR, ta, tb, m, n, k, one, pa, lda, pb, ldb, zero, po, max(n, 1))

    @numba.njit(cache=True, nogil=True)
    def gemm(a, b):
        """a @ b, a new C-contiguous matrix."""
        out = np.empty((a.shape[0], b.shape[1]), a.dtype)
        gemm_into(a, b, out)
        return out

    @numba.njit(cache=True, nogil=True)
    def gemv(a, x):
        """a @ x for a matrix a (C or F order) and a contiguous vector x."""
        m, k = a.shape
        out = np.empty(m, a.dtype)
        if m == 0:
            return out
        t, ld = _order(a)
        if k == 0 or t == 0 or not x.flags.c_contiguous:
            _loops(a, x[:, None], out[:, None])
            return out
        rows, cols = (m, k) if t == NO_TRANS else (k, m)  # the matrix as stored, row-major
        one, zero = 1.0, 0.0
        if a.itemsize == 4:  # float32 (float64 else)
            _sgemv(
                ROW_MAJOR, t, rows, cols, one, a.ctypes.data, ld, x.ctypes.data, 1, zero, out.ctypes.data, 1
            )
        else:
            _dgemv(
                ROW_MAJOR, t, rows, cols, one, a.ctypes.data, ld, x.ctypes.data, 1, zero, out.ctypes.data, 1
            )
        return out

else:
    BLAS = "Numba's (SciPy's OpenBLAS)"

    @numba.njit(cache=True, nogil=True)
    def gemm_into(a, b, out):
        out[...] = np.dot(a, b)

    @numba.njit(cache=True, nogil=True)
    def gemm(a, b):
        return np.dot(a, b)

    @numba.njit(cache=True, nogil=True)
    def gemv(a, x):
        return np.dot(a, x)
