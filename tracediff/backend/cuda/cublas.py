"""Matrix products on Numba CUDA device arrays through cuBLAS (nvmath-python's low-level bindings).

cuBLAS is column-major. A row-major C-contiguous matrix read column-major is its transpose, so the
row-major product ``out = x @ y`` is computed as the column-major ``out^T = y^T @ x^T``: cuBLAS's
operand A is ``y``, B is ``x``, and its (m, n, k) is our (n, m, k). An operand that is the transpose
view of a C-contiguous matrix (unit stride on its rows) is the plain column-major matrix, so cuBLAS
transposes it itself (``Operation.T``) instead of us copying it. Batches go to the strided batched
gemm; a batch stride of 0 broadcasts an operand over the batch.

nvmath is imported lazily: importing this module never needs it. Under the CUDA simulator nothing
of cuBLAS is touched and the product is computed with NumPy on the host.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np

__all__ = ["GemmParams", "available", "gemm_params", "matmul"]

_MISSING = "target='cuda' needs cuBLAS for matrix products: pip install 'tracediff[cuda]' (nvmath-python)"
_INT32_MAX = 2**31 - 1
_PREFIX = {np.dtype(np.float32): "s", np.dtype(np.float64): "d"}
# alpha = 1, beta = 0 as host memory (host pointer mode): cuBLAS reads them before the call returns
_SCALARS = {dt: (np.ones((), dt), np.zeros((), dt)) for dt in _PREFIX}
_LOCK = threading.Lock()


class GemmParams(NamedTuple):
    """cuBLAS's arguments for a row-major ``x @ y`` (A = y, B = x; m, n, k are cuBLAS's, i.e. our n, m, k).

    ``transa``/``transb`` are "N" or "T"; lengths, leading dimensions and batch strides count elements.
    """

    transa: str
    transb: str
    m: int
    n: int
    k: int
    lda: int
    ldb: int
    ldc: int
    stride_a: int
    stride_b: int
    stride_c: int
    batch: int


def _elements(strides, itemsize: int, what: str) -> list[int]:
    if any(s % itemsize for s in strides):
        raise ValueError(f"matmul: {what}'s strides {tuple(strides)} are not multiples of its item size")
    return [s // itemsize for s in strides]


def _operand(shape, strides, what: str) -> tuple[str, int]:
    """("N", ld) for a matrix with unit stride along its rows (C order), ("T", ld) for unit stride down
    its columns (a transpose view); a size-1 axis's stride does not matter."""
    r, c = shape
    s0, s1 = strides
    if r == 0 or c == 0:  # nothing is read
        return "N", max(1, c)
    if (c <= 1 or s1 == 1) and (r <= 1 or s0 >= max(1, c)):
        return "N", s0 if r > 1 else max(1, c)
    if (r <= 1 or s0 == 1) and (c <= 1 or s1 >= max(1, r)):
        return "T", s1 if c > 1 else max(1, r)
    raise ValueError(
        f"matmul: {what} of shape {tuple(shape)} and element strides {tuple(strides)} is neither "
        "C-contiguous nor the transpose of a C-contiguous matrix; copy it first"
    )


def _batch_stride(shape, strides, batch: int, what: str) -> int:
    if len(shape) == 2 or shape[0] == 1:
        return 0
    if shape[0] != batch:
        raise ValueError(f"matmul: {what}'s batch of {shape[0]} does not match the output's {batch}")
    if strides[0] < 0:
        raise ValueError(f"matmul: {what} has a negative batch stride; copy it first")
    return strides[0]


def gemm_params(x_shape, x_strides, y_shape, y_strides, out_shape, out_strides, itemsize: int) -> GemmParams:
    """cuBLAS gemm arguments for ``out = x @ y``; shapes and strides (bytes) as NumPy/Numba give them.

    x is (m, k) or (b, m, k), y is (k, n) or (b, k, n), out is (m, n) or (b, m, n) and C-contiguous.
    Raises ValueError for mismatched shapes or a layout cuBLAS cannot read directly.
    """
    x_shape, y_shape, out_shape = tuple(x_shape), tuple(y_shape), tuple(out_shape)
    if len(out_shape) not in (2, 3) or len(x_shape) not in (2, len(out_shape)):
        raise ValueError(f"matmul: unsupported ranks {x_shape} @ {y_shape} -> {out_shape}")
    if len(y_shape) not in (2, len(out_shape)):
        raise ValueError(f"matmul: unsupported ranks {x_shape} @ {y_shape} -> {out_shape}")
    (m, k), (k2, n) = x_shape[-2:], y_shape[-2:]
    if k != k2 or out_shape[-2:] != (m, n):
        raise ValueError(f"matmul: shapes {x_shape} @ {y_shape} do not give {out_shape}")
    xs = _elements(x_strides, itemsize, "x")
    ys = _elements(y_strides, itemsize, "y")
    os_ = _elements(out_strides, itemsize, "out")
    c_strides = [int(np.prod(out_shape[i + 1 :])) for i in range(len(out_shape))]
    if 0 not in out_shape and any(d > 1 and s != cs for d, s, cs in zip(out_shape, os_, c_strides)):
        raise ValueError("matmul: out must be C-contiguous")
    batch = out_shape[0] if len(out_shape) == 3 else 1
    transb, ldb = _operand(x_shape[-2:], xs[-2:], "x")
    transa, lda = _operand(y_shape[-2:], ys[-2:], "y")
    return GemmParams(
        transa=transa,
        transb=transb,
        m=n,
        n=m,
        k=k,
        lda=lda,
        ldb=ldb,
        ldc=max(1, n),
        stride_a=_batch_stride(y_shape, ys, batch, "y"),
        stride_b=_batch_stride(x_shape, xs, batch, "x"),
        stride_c=m * n,
        batch=batch,
    )


def _simulator() -> bool:
    try:
        from numba.cuda.core import config  # numba-cuda
    except ImportError:  # numba's bundled CUDA target
        from numba import config
    return bool(getattr(config, "ENABLE_CUDASIM", 0))


def _cublas():
    try:
        from nvmath.bindings import cublas
    except ImportError as e:
        raise ImportError(_MISSING) from e
    return cublas


def available() -> str | None:
    """None if cuBLAS can be used here, else a one-line reason."""
    if _simulator():
        return "the CUDA simulator is active (NUMBA_ENABLE_CUDASIM=1): no cuBLAS, products run on the host"
    try:
        _cublas()
    except ImportError:
        return "nvmath-python is not installed: " + _MISSING
    return None


def _handle(cublas) -> int:
    """This thread's cuBLAS handle for the current CUDA context (created on first use, host pointer mode).

    Handles live in the numba Context's ``extras``, so a context numba re-creates (cuda.close())
    gets fresh ones instead of handles bound to the destroyed context.
    """
    from numba import cuda

    ctx = cuda.current_context()
    with _LOCK:
        handles = ctx.extras.setdefault("tracediff.cublas", {})
    tid = threading.get_ident()
    h = handles.get(tid)
    if h is None:
        h = cublas.create()
        cublas.set_pointer_mode(h, cublas.PointerMode.HOST)
        handles[tid] = h
    return h


def _stream_ptr(stream) -> int:
    if not stream:
        return 0
    if isinstance(stream, int):
        return stream
    if hasattr(stream, "__cuda_stream__"):  # numba-cuda and cuda.core streams
        return int(stream.__cuda_stream__()[1])
    return int(stream.handle.value or 0)  # older numba streams: handle is a ctypes c_void_p


def _dtype(x, y, out) -> np.dtype:
    dt = np.dtype(out.dtype)
    if np.dtype(x.dtype) != dt or np.dtype(y.dtype) != dt:
        raise TypeError(f"matmul: operands and output must share a dtype, got {x.dtype}, {y.dtype} -> {dt}")
    if dt not in _PREFIX:
        raise TypeError(f"matmul through cuBLAS supports float32 and float64, not {dt}")
    return dt


def matmul(x, y, out, stream=0) -> None:
    """out[...] = x @ y for Numba device arrays (see ``gemm_params`` for the shapes and layouts).

    float32 or float64 only (TypeError otherwise); an operand that is neither C-contiguous nor the
    transpose of a C-contiguous matrix raises ValueError, and the caller copies it first.
    """
    dt = _dtype(x, y, out)
    p = gemm_params(x.shape, x.strides, y.shape, y.strides, out.shape, out.strides, dt.itemsize)
    if p.m == 0 or p.n == 0 or p.batch == 0:
        return
    if _simulator():
        # (the simulator's copy_to_host of a reshaped view may give the base's shape)
        r = np.matmul(x.copy_to_host().reshape(x.shape), y.copy_to_host().reshape(y.shape))
        # through flat views: the simulator's copy mishandles unit axes
        flat = np.ascontiguousarray(np.broadcast_to(r, out.shape)).reshape(-1)
        out.reshape(out.size).copy_to_device(flat, stream=stream)
        return
    if p.k == 0:  # an empty sum; cuBLAS would also want valid lda/ldb for nothing
        out.copy_to_device(np.zeros(out.shape, dt), stream=stream)
        return
    cublas = _cublas()
    h = _handle(cublas)
    cublas.set_stream(h, _stream_ptr(stream))
    op = {"N": cublas.Operation.N, "T": cublas.Operation.T}
    alpha, beta = _SCALARS[dt]
    a, b, c = (arr.__cuda_array_interface__["data"][0] for arr in (y, x, out))
    big = max(p.m, p.n, p.k, p.lda, p.ldb, p.ldc, p.batch) > _INT32_MAX
    suffix = "_64" if big else ""
    head = (h, op[p.transa], op[p.transb], p.m, p.n, p.k, alpha.ctypes.data)
    if p.batch == 1:
        gemm = getattr(cublas, f"{_PREFIX[dt]}gemm{suffix}")
        gemm(*head, a, p.lda, b, p.ldb, beta.ctypes.data, c, p.ldc)
    else:
        gemm = getattr(cublas, f"{_PREFIX[dt]}gemm_strided_batched{suffix}")
        gemm(
            *head, a, p.lda, p.stride_a, b, p.ldb, p.stride_b, beta.ctypes.data, c, p.ldc, p.stride_c, p.batch
        )
