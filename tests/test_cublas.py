"""tracediff.backend.cuda.cublas: the cuBLAS argument logic (checked against a NumPy emulation of column-major
gemm, no GPU needed) and matmul under Numba's CUDA simulator (in a subprocess)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tracediff.backend.cuda.cublas import _cublas, gemm_params

as_strided = np.lib.stride_tricks.as_strided


def _col(flat, base, rows, cols, ld):
    """The column-major (rows, cols) matrix at flat[base:] with leading dimension ld."""
    return flat[base + np.arange(rows)[:, None] + np.arange(cols)[None, :] * ld]


def _emulate(x, y, out_shape):
    """Run cuBLAS's (strided batched) gemm, as gemm_params configures it, on x's and y's memory."""
    dt = x.dtype
    p = gemm_params(x.shape, x.strides, y.shape, y.strides, out_shape, _c_strides(out_shape, dt), dt.itemsize)
    bufs = []
    for arr in (y, x):  # cuBLAS's A is y, B is x: flat element view from the array's first element
        base = arr.__array_interface__["data"][0]
        owner = arr.base if arr.base is not None else arr
        while owner.base is not None:
            owner = owner.base
        start = (base - owner.__array_interface__["data"][0]) // dt.itemsize
        bufs.append((owner.reshape(-1), start))
    (fa, sa), (fb, sb) = bufs
    flat_c = np.full(int(np.prod(out_shape)), np.nan, dt)
    rows_a, cols_a = (p.m, p.k) if p.transa == "N" else (p.k, p.m)
    rows_b, cols_b = (p.k, p.n) if p.transb == "N" else (p.n, p.k)
    for i in range(p.batch):
        a = _col(fa, sa + i * p.stride_a, rows_a, cols_a, p.lda)
        b = _col(fb, sb + i * p.stride_b, rows_b, cols_b, p.ldb)
        c = (a if p.transa == "N" else a.T) @ (b if p.transb == "N" else b.T)
        idx = i * p.stride_c + np.arange(p.m)[:, None] + np.arange(p.n)[None, :] * p.ldc
        flat_c[idx] = c
    return flat_c.reshape(out_shape)


def _c_strides(shape, dt):
    return np.empty(shape, dt).strides


def _cases(rng, dt):
    def r(*shape):
        return rng.standard_normal(shape).astype(dt)

    big = r(7, 9)
    yield r(3, 4), r(4, 5)  # C @ C
    yield r(4, 3).T, r(4, 5)  # transpose view @ C
    yield r(3, 4), r(5, 4).T  # C @ transpose view
    yield r(4, 3).T, r(5, 4).T  # both transposed
    yield big[:3, :4], big[2:6, 1:6]  # padded rows: ld > row length
    yield big[:4, :3].T, r(4, 1)  # column vector
    yield r(1, 4), r(4, 6)  # row vector
    yield r(1, 4), r(6, 4).T
    yield r(5, 1), r(1, 3)  # outer product, k = 1
    yield r(1, 1), r(1, 1)
    yield r(2, 3, 4), r(2, 4, 5)  # batched
    yield r(2, 4, 3).transpose(0, 2, 1), r(2, 5, 4).transpose(0, 2, 1)  # batched transpose views
    yield r(3, 4), r(2, 4, 5)  # x broadcast over the batch (stride 0)
    yield r(2, 3, 4), r(1, 4, 5)  # y's batch of 1 broadcast
    yield as_strided(r(3, 4), (3, 3, 4), (0, 4 * dt.itemsize, dt.itemsize)), r(3, 4, 2)  # 0 stride
    yield r(4, 3, 2)[:, :, :1].transpose(0, 2, 1), r(4, 3, 2)  # sliced batch views, m = 1


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_gemm_params_emulated(rng, dt):
    n = 0
    for x, y in _cases(rng, np.dtype(dt)):
        want = np.matmul(x, y)
        got = _emulate(x, y, want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"{x.strides} @ {y.strides}")
        n += 1
    assert n == 16


def test_gemm_params_values():
    p = gemm_params((3, 4), (16, 4), (4, 5), (20, 4), (3, 5), (20, 4), 4)
    assert p == ("N", "N", 5, 3, 4, 5, 4, 5, 0, 0, 15, 1)
    # x a transpose view (F strides): cuBLAS transposes B; batched y with its own stride
    p = gemm_params((3, 4), (8, 24), (2, 4, 5), (160, 40, 8), (2, 3, 5), (120, 40, 8), 8)
    assert (p.transa, p.transb, p.ldb, p.stride_a, p.stride_b, p.stride_c, p.batch) == (
        "N",
        "T",
        3,
        20,
        0,
        15,
        2,
    )


@pytest.mark.parametrize(
    "x, y, out",
    [
        (np.empty((6, 8))[:, ::2], np.empty((4, 2)), (6, 2)),  # no unit stride
        (np.empty((3, 4))[::-1], np.empty((4, 2)), (3, 2)),  # negative stride
        (as_strided(np.empty(4), (3, 4), (0, 8)), np.empty((4, 2)), (3, 2)),  # overlapping rows
        (np.empty((3, 4)), np.empty((5, 2)), (3, 2)),  # k mismatch
        (np.empty((3, 4)), np.empty((4, 2)), (3, 3)),  # wrong output
        (np.empty((2, 3, 4)), np.empty((3, 4, 2)), (2, 3, 2)),  # batch mismatch
        (np.empty((2, 3, 4)), np.empty((4, 2)), (3, 2)),  # batched x, 2-D out
        (np.empty((2, 3, 4))[::-1], np.empty((4, 2)), (2, 3, 2)),  # negative batch stride
    ],
)
def test_gemm_params_rejects(x, y, out):
    with pytest.raises(ValueError):
        gemm_params(x.shape, x.strides, y.shape, y.strides, out, _c_strides(out, x.dtype), 8)


def test_gemm_params_rejects_noncontiguous_out():
    out = np.empty((3, 4)).T
    with pytest.raises(ValueError, match="C-contiguous"):
        gemm_params((4, 2), (16, 8), (2, 3), (24, 8), out.shape, out.strides, 8)


def test_missing_nvmath_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "nvmath.bindings", None)
    with pytest.raises(ImportError, match=r"pip install 'tracediff\[cuda\]' \(nvmath-python\)"):
        _cublas()


SIMULATED = textwrap.dedent(
    """
    import sys
    import numpy as np
    from numba import cuda
    from tracediff.backend.cuda import cublas

    assert "nvmath" not in sys.modules, "importing the module must not import nvmath"
    assert "simulator" in cublas.available()
    rng = np.random.default_rng(1)
    stream = cuda.stream()
    for dt in (np.float32, np.float64):
        def r(*shape):
            return rng.standard_normal(shape).astype(dt)
        cases = [
            (r(3, 4), r(4, 5)),
            (np.asfortranarray(r(3, 4)), r(4, 5)),  # F-ordered = transpose view of a C matrix
            (r(3, 4), np.asfortranarray(r(4, 5))),
            (r(2, 3, 4), r(2, 4, 5)),
            (r(3, 4), r(2, 4, 5)),
            (r(3, 0), r(0, 5)),
        ]
        for x, y in cases:
            want = np.matmul(x, y)
            out = cuda.device_array(want.shape, dt)
            cublas.matmul(cuda.to_device(x), cuda.to_device(y), out, stream=stream)
            tol = 1e-5 if dt == np.float32 else 1e-12
            np.testing.assert_allclose(out.copy_to_host(), want, rtol=tol, atol=tol)
        dx = cuda.to_device(r(4, 3))
        out = cuda.device_array((3, 5), dt)
        cublas.matmul(dx.T, cuda.to_device(r(4, 5)), out)  # numba's .T (a copy or a view) is accepted
    xi = cuda.to_device(np.ones((2, 2), np.int64))
    try:
        cublas.matmul(xi, xi, cuda.device_array((2, 2), np.int64))
        raise AssertionError("int64 accepted")
    except TypeError:
        pass
    try:
        cublas.matmul(cuda.to_device(np.ones((4, 8)))[:, ::2], cuda.to_device(np.ones((4, 2))),
                      cuda.device_array((4, 2)))
        raise AssertionError("a strided operand accepted")
    except ValueError:
        pass
    print("ok")
    """
)


def test_matmul_under_cuda_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    proc = subprocess.run(
        [sys.executable, "-c", SIMULATED], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")
