"""Matrix products of compiled CPU programs (backend/cpu/lib/blas.py): NumPy's own
OpenBLAS called from Numba, every layout and degenerate shape against NumPy, and
the fallback to Numba's np.dot giving the same programs the same results."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tracediff as td
from tracediff.backend.cpu.lib import blas as bl


def _layouts(x):
    """x in C order, and the same values in Fortran order (a transposed view's layout)."""
    return [np.ascontiguousarray(x), np.asfortranarray(x)]


SHAPES = [
    (5, 7, 3),
    (1, 7, 3),
    (5, 1, 3),
    (5, 7, 1),
    (1, 1, 1),
    (0, 4, 3),
    (4, 0, 3),
    (4, 3, 0),
    (64, 33, 17),
]


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("m,k,n", SHAPES, ids=lambda s: str(s))
def test_gemm_every_layout(m, k, n, dt, rng):
    a0, b0 = rng.normal(size=(m, k)).astype(dt), rng.normal(size=(k, n)).astype(dt)
    want = a0.astype(np.float64) @ b0.astype(np.float64)
    tol = 1e-5 if dt == np.float32 else 1e-13
    for a in _layouts(a0):
        for b in _layouts(b0):
            got = bl.gemm(a, b)
            assert got.dtype == dt and got.shape == (m, n) and got.flags.c_contiguous
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max(initial=0)))
            out = np.full((3, m, n), np.nan, dt)
            bl.gemm_into(a, b, out[1])  # into a slice of a stack
            np.testing.assert_allclose(
                out[1], want, rtol=tol, atol=tol * max(1.0, np.abs(want).max(initial=0))
            )
            assert np.isnan(out[0]).all() and np.isnan(out[2]).all()


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("m,k", [(5, 7), (1, 7), (5, 1), (0, 3), (3, 0), (100, 64)])
def test_gemv_every_layout(m, k, dt, rng):
    a0, x = rng.normal(size=(m, k)).astype(dt), rng.normal(size=k).astype(dt)
    want = a0.astype(np.float64) @ x.astype(np.float64)
    tol = 1e-5 if dt == np.float32 else 1e-13
    for a in _layouts(a0):
        got = bl.gemv(a, x)
        assert got.dtype == dt and got.shape == (m,)
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max(initial=0)))


def test_operands_blas_cannot_take(rng):
    """Strided operands and outputs (never passed by generated code) go to plain loops."""
    a, b, x = rng.normal(size=(6, 10)), rng.normal(size=(10, 8)), rng.normal(size=10)
    sa, sb, sx = a[::2, ::2], b[::2, ::3], x[::2]
    np.testing.assert_allclose(bl.gemm(sa, sb), sa @ sb, rtol=1e-13)
    out = np.full((3, 6), np.nan)
    bl.gemm_into(sa, sb, out[:, ::2])  # a strided output
    np.testing.assert_allclose(out[:, ::2], sa @ sb, rtol=1e-13)
    assert np.isnan(out[:, 1::2]).all()
    np.testing.assert_allclose(bl.gemv(sa, sx), sa @ sx, rtol=1e-13)


def test_products_in_programs(rng):
    """Every way a program reaches a product: matrix-matrix, matrix-vector, vector-matrix,
    a transposed operand, a batch, complex (Numba's np.dot), and their gradients."""

    def f(A, B, v, C):
        s = np.sum(np.tanh(A @ B) * (A @ B.T.T))
        s = s + np.sum((A @ v[:, None]) ** 2) + np.sum((v[None, :] @ A.T) ** 3)
        s = s + np.sum(np.sin(C @ np.swapaxes(C, 1, 2)))
        return s

    A, B, v = rng.normal(size=(6, 4)), rng.normal(size=(4, 5)), rng.normal(size=4)
    C = rng.normal(size=(3, 4, 2))
    g = td.jit(td.value_and_grad(f, argnums=(0, 1, 2, 3)), eager_first=False)
    val, grads = g(A, B, v, C)
    val0, grads0 = td.value_and_grad(f, argnums=(0, 1, 2, 3))(A, B, v, C)
    np.testing.assert_allclose(val, val0, rtol=1e-13)
    for a, b in zip(grads, grads0):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    Z = (rng.normal(size=(3, 3)) + 1j * rng.normal(size=(3, 3))).astype(np.complex128)
    np.testing.assert_allclose(td.jit(lambda z: z @ z.T, eager_first=False)(Z), Z @ Z.T, rtol=1e-13)


def test_numba_blas_fallback_gives_the_same_products(tmp_path):
    """With NumPy's library not used (TRACEDIFF_NUMBA_BLAS=1, as where NumPy bundles
    none), programs compile against Numba's np.dot and compute the same."""
    code = textwrap.dedent(
        """
        import numpy as np, tracediff as td
        from tracediff.backend.cpu.lib import blas
        assert blas.BLAS.startswith("Numba"), blas.BLAS
        rng = np.random.default_rng(0)
        A, B = rng.normal(size=(6, 4)), rng.normal(size=(4, 5))
        f = td.jit(td.grad(lambda A, B: np.sum(np.tanh(A @ B)), argnums=(0, 1)), eager_first=False)
        ga, gb = f(A, B)
        np.save("ga.npy", ga)
        """
    )
    env = dict(os.environ, TRACEDIFF_NUMBA_BLAS="1", TRACEDIFF_CACHE_DIR=str(tmp_path / "cache"))
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, timeout=300)
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(6, 4)), rng.normal(size=(4, 5))
    ga, _ = td.jit(td.grad(lambda A, B: np.sum(np.tanh(A @ B)), argnums=(0, 1)), eager_first=False)(A, B)
    np.testing.assert_allclose(np.load(tmp_path / "ga.npy"), ga, rtol=1e-13)


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_short_inner_dimension_products_are_loops(dt, rng):
    """Products with k <= 16 and a row of at least 8 (`d @ W.T` with 10 classes) are
    written as loops (writer.small_k_matmul), k = 17 still calls BLAS: both against
    float64 NumPy, with transposed and strided operands, and inf/NaN as BLAS gives them."""

    def f(a1, b1, a10, b10, w16, a17, b17):
        return (
            a1 @ b1,  # an outer product
            a10 @ b10.T,  # y a transposed view: copied to contiguous rows
            a10[::2] @ b10[::-1].T,  # x a strided view
            w16.T @ w16[:, :20],  # x a transposed view, y a slice
            a17 @ b17,  # BLAS
        )

    args = (
        rng.normal(size=(5, 1)),
        rng.normal(size=(1, 9)),
        rng.normal(size=(33, 10)),
        rng.normal(size=(40, 10)),
        rng.normal(size=(16, 24)),
        rng.normal(size=(6, 17)),
        rng.normal(size=(17, 8)),
    )
    args = tuple(a.astype(dt) for a in args)
    args[2][3, 4], args[2][7, 0], args[3][5, 2] = np.inf, np.nan, -np.inf
    g = td.jit(f, eager_first=False)
    src = td.dump(g, *args, stage="source")
    assert src.count("bl.gemm(") == 1 and src.count("vm.fma(") == 4, src
    with np.errstate(invalid="ignore"):
        want = f(*(a.astype(np.float64) for a in args))
    tol = 1e-5 if dt == np.float32 else 1e-13
    for got, w in zip(g(*args), want):
        assert got.dtype == dt and got.shape == w.shape
        np.testing.assert_allclose(got, w, rtol=tol, atol=tol * np.abs(w[np.isfinite(w)]).max())
