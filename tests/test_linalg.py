"""np.linalg and scipy.linalg on traced arrays: values against NumPy/SciPy for the
keywords, axis forms and shapes of each function; the compositions' derivatives
(one grouped check_grads); compiled against interpreted; errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sl

import tracediff as td

RNG = np.random.default_rng(7)
A = RNG.standard_normal((3, 3)) + 3 * np.eye(3)  # well conditioned
AB = RNG.standard_normal((2, 3, 3)) + 3 * np.eye(3)  # a stack of two
B = RNG.standard_normal((3, 2))
S = A @ A.T  # symmetric positive definite
M = RNG.standard_normal((4, 3))  # tall
X3 = RNG.standard_normal((2, 3, 4))


def mT(x):
    return np.swapaxes(x, -1, -2)


def interp(f, *args):
    return td.jit(f, target="interpret")(*args)


def _close(got, want, rtol=1e-10, atol=1e-12):
    got, want = td.pytree.flatten(got)[0], td.pytree.flatten(want)[0]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


NORMS = [
    (None, None),
    ("fro", None),
    ("nuc", None),
    (np.inf, None),
    (-np.inf, None),
    (1, None),
    (-1, None),
    (2, None),
    (-2, None),
    (None, (1, 0)),
    ("nuc", (0, 1)),
    (np.inf, (1, 0)),
]


@pytest.mark.parametrize("ord,axis", NORMS)
@pytest.mark.parametrize("keepdims", [False, True])
def test_matrix_norms(ord, axis, keepdims):
    def f(x):
        return np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)

    _close(interp(f, M), f(M))


@pytest.mark.filterwarnings("ignore:divide by zero")  # NumPy's, for negative orders of a 0 entry
@pytest.mark.parametrize("ord", [None, 2, np.inf, -np.inf, 0, 1, -1, 3, 0.5, -2])
def test_vector_norms(ord):
    v = np.array([0.5, -2.0, 0.0, 1.5])

    def f(x, y):
        return (
            np.linalg.norm(x, ord),
            np.linalg.norm(y, ord, axis=1, keepdims=True),
            np.linalg.norm(y, ord, axis=-1),
        )

    _close(interp(f, v, X3), f(v, X3))


def test_norm_forms():
    def f(x, y):
        return (
            np.linalg.norm(x, 2, axis=(-1, 0)),
            np.linalg.norm(y, "fro", axis=(2, 1)),
            np.linalg.norm(y, -2, axis=(0, 2), keepdims=True),
            np.linalg.vector_norm(y, axis=(0, 2), ord=3),
            np.linalg.vector_norm(y, keepdims=True),
            np.linalg.matrix_norm(y, ord=1),
            np.linalg.norm(np.arange(5)),  # integers in float64
        )

    _close(interp(f, M, X3), f(M, X3))


@pytest.mark.parametrize(
    "shape,ord", [((0,), np.inf), ((2, 0), 2), ((0, 3), 1), ((3, 0), np.inf), ((0, 2), "nuc")]
)
def test_norms_of_empty_arrays(shape, ord):
    x = np.zeros(shape)
    _close(interp(lambda x: np.linalg.norm(x, ord), x), np.linalg.norm(x, ord))  # 0, as NumPy


def test_empty_and_vector_edge_cases():
    def f(e, v):
        return (
            np.linalg.pinv(e),
            np.linalg.matrix_rank(e),
            np.linalg.matrix_rank(v),
            np.linalg.matrix_rank(0 * v),
            np.linalg.inv(np.zeros((2, 0, 0)) + e[:0, :0]),
            np.linalg.det(e[:0, :0]),
        )

    args = (np.zeros((0, 3)), np.array([0.0, 2.0]))
    _close(interp(f, *args), f(*args))


def test_np_linalg_functions():
    def f(a, ab, b, s, m):
        sign, logdet = np.linalg.slogdet(ab)
        w, v = np.linalg.eigh(s, UPLO="U")
        q, r = np.linalg.qr(m)
        return (
            np.linalg.solve(ab, b),  # broadcast: [2,3,3] and [3,2]
            np.linalg.solve(ab, b[:, 0]),  # a vector right-hand side
            np.linalg.inv(ab),
            np.linalg.det(ab),
            sign,
            logdet,
            np.linalg.cholesky(s, upper=True),
            w,
            np.abs(v),
            np.linalg.eigvalsh(s),
            np.linalg.svd(m, compute_uv=False),
            np.linalg.svdvals(ab),
            np.abs(q),
            np.abs(np.linalg.qr(m, mode="r")),
            np.linalg.pinv(m),
            np.linalg.pinv(m, rtol=None),
            np.linalg.matrix_power(a, -2),
            np.linalg.matrix_power(ab, 0),
            np.linalg.matrix_power(a, 5),
            np.linalg.multi_dot([b[:, 0], a, m.T, m, b]),
            np.linalg.multi_dot([a, a]),
            np.linalg.cond(a),
            np.linalg.cond(a, 1),
            np.linalg.cond(a, -2),
            np.linalg.matrix_rank(m),
            np.linalg.det(np.arange(9).reshape(3, 3) % 4 + np.eye(3, dtype=int)),
            np.linalg.svd(a + a.T, hermitian=True),  # indefinite: signs move into vt
            np.linalg.svd(ab + mT(ab), compute_uv=False, hermitian=True),
            np.linalg.pinv(a + a.T, hermitian=True),
            np.linalg.matrix_rank(s, hermitian=True),
        )

    want = f(A, AB, B, S, M)
    _close(interp(f, A, AB, B, S, M), want, rtol=1e-9)


def test_array_api_names_and_tensor_solves():
    t = (RNG.standard_normal((6, 6)) + 3 * np.eye(6)).reshape(2, 3, 6)

    def f(x, y, t, b):
        return (
            np.linalg.matrix_transpose(y),
            np.linalg.outer(x[0], x[1]),
            np.linalg.matmul(x, y[0]),
            np.linalg.tensordot(y, y[0], axes=2),
            np.linalg.trace(y, offset=1),
            np.linalg.diagonal(y),
            np.linalg.vecdot(y, y),
            np.linalg.cross(x, x[::-1]),
            np.linalg.tensorsolve(t, b),
            np.linalg.tensorsolve(np.moveaxis(t, 2, 0), b, axes=(0,)),
            np.linalg.tensorinv(t.reshape(6, 2, 3), ind=1),
        )

    args = (A, X3, t, RNG.standard_normal((2, 3)))
    _close(interp(f, *args), f(*args), rtol=1e-9)


@pytest.mark.parametrize("shape_b", [(4,), (4, 2)])
@pytest.mark.parametrize("rcond", [None, 1e-3])
def test_lstsq(shape_b, rcond):
    b = RNG.standard_normal(shape_b)

    def f(a, b):
        return np.linalg.lstsq(a, b, rcond=rcond)

    got, want = interp(f, M, b), f(M, b)
    _close(got[:2] + (got[3],), want[:2] + (want[3],))
    assert int(got[2]) == want[2]
    # wide: no residuals; a rank-deficient a: the singular values below rcond dropped
    low = np.outer(M[:, 0], M[0])  # rank 1
    got, want = interp(f, low, b), f(low, b)
    _close(got[0], want[0], atol=1e-10)
    assert int(got[2]) == want[2] == 1
    got, want = interp(f, M.T, b[:3]), f(M.T, b[:3])
    _close(got[:2], want[:2])


def test_scipy_linalg_functions():
    def f(a, b, s, m):
        c = sl.cho_factor(s)
        return (
            sl.solve_triangular(a, b),
            sl.solve_triangular(a, b[:, 0], lower=True, trans="T"),
            sl.solve_triangular(a, b, trans=2, unit_diagonal=True),
            sl.cho_solve(c, b),
            sl.cho_solve(sl.cho_factor(s, lower=True), b[:, 0]),
            sl.cholesky(s),
            sl.cholesky(s, lower=True),
            sl.solve(a, b),
            sl.solve(s, b, assume_a="pos"),
            sl.solve(s, b, assume_a="sym", lower=True),
            sl.solve(a, b, transposed=True),
            sl.solve(np.triu(a), b, assume_a="upper triangular"),
            sl.inv(a),
            sl.inv(s, assume_a="pos"),
            sl.det(a),
            sl.expm(a * 0.3),
            sl.expm(a * 3.0),  # scaled and squared
            sl.eigh(s, eigvals_only=True),
            sl.svd(m, full_matrices=False, compute_uv=False),
            np.abs(sl.qr(m, mode="economic")[1]),
            sl.pinv(m),
            sl.lstsq(m, m @ b[:, 0] + 0.1)[0],
        )

    _close(interp(f, A, B, S, M), f(A, B, S, M), rtol=1e-9)

    def g(a, b, m):
        return (
            sl.lu_factor(a),
            sl.lu_solve(sl.lu_factor(a), b[:, 0], trans=1),
            sl.lu(m),  # tall, wide
            sl.lu(m.T, permute_l=True),
            sl.lu(a[::-1], p_indices=True),
        )

    _close(interp(g, A, B, M), g(A, B, M), rtol=1e-9)
    # pivots that are NumPy constants (a factorization made outside)
    lu_a = sl.lu_factor(A[::-1])
    _close(interp(lambda b: sl.lu_solve(lu_a, b), B), sl.lu_solve(lu_a, B))
    # cho_factor's c holds zeros in the triangle SciPy leaves unspecified
    c, lower = interp(lambda s: sl.cho_factor(s), S)
    _close(np.triu(c), np.triu(sl.cho_factor(S)[0]))
    assert not lower


def _compositions(a, s, m, b):
    """Every composition of the front end, summed into one value per family."""
    u, sv, vt = np.linalg.svd(m, full_matrices=False)
    return (
        np.linalg.norm(m, "nuc") + np.linalg.norm(m, 2) + np.linalg.norm(m, -2) + np.linalg.norm(m, np.inf),
        np.linalg.norm(b, 3) + np.linalg.norm(b, 1) + np.linalg.norm(b, -np.inf),
        np.linalg.pinv(m),
        np.linalg.lstsq(m, b[:4])[0],
        np.linalg.matrix_power(a, -2) + np.linalg.matrix_power(a, 3),
        np.linalg.multi_dot([m, a, m.T]),
        np.linalg.cond(a) + np.linalg.det(a),
        sl.cho_solve(sl.cho_factor(s), b[:3]) + sl.solve(s, b[:3], assume_a="sym"),
        np.linalg.eigvalsh(s) + sl.eigh(s, lower=False, eigvals_only=True),
        u * u[:1] + sv,
    )


def test_composition_derivatives():
    b = RNG.standard_normal(5)
    td.check_grads(_compositions, (A, S, M, b), order=2)


def test_compiled_matches_interpreter():
    b = RNG.standard_normal(5)

    def loss(*x):
        return sum(np.sum(o * o) for o in _compositions(*x))

    grad = td.value_and_grad(loss, argnums=(0, 1, 2, 3))

    def both(*x):  # values and gradients in one program: one compile
        return _compositions(*x), grad(*x)

    args = (A, S, M, b)
    _close(td.jit(both)(*args), td.jit(both, target="interpret")(*args), rtol=1e-9, atol=1e-10)


def test_vmap_and_jit_of_solve():
    def f(a, b):
        x = np.linalg.solve(a, b) + sl.solve_triangular(a, np.stack([b, 2 * b], 1), lower=True)[:, 1]
        return x @ np.linalg.cholesky(a @ a.T)[:, 0]

    bs = RNG.standard_normal((4, 3))
    want = np.stack([f(A, bb) for bb in bs])
    _close(td.jit(td.vmap(f, in_axes=(None, 0)))(A, bs), want)
    _close(
        td.vmap(f)(np.stack([A, A.T, A, S]), bs), np.stack([f(a, bb) for a, bb in zip([A, A.T, A, S], bs)])
    )


SINGULAR = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 1.0]])


@pytest.mark.parametrize("target", ["interpret", "cpu"])
def test_degenerate_inputs_raise(target):
    with pytest.raises(np.linalg.LinAlgError):
        td.jit(np.linalg.solve, target=target)(SINGULAR, B)
    with pytest.raises(np.linalg.LinAlgError):
        td.jit(np.linalg.cholesky, target=target)(-S)
    with pytest.raises(np.linalg.LinAlgError):
        td.jit(lambda a, b: sl.solve_triangular(a, b), target=target)(np.triu(SINGULAR) * [1, 0, 1], B)
    # a singular matrix has determinant 0 and log|det| -inf, as in NumPy
    _close(td.jit(np.linalg.det, target=target)(SINGULAR), 0.0)


NONFINITE = [
    ("solve", lambda a: np.linalg.solve(a, np.ones(12))),
    ("inv", np.linalg.inv),
    ("det", np.linalg.det),
    ("slogdet", np.linalg.slogdet),
    ("eigh", np.linalg.eigh),
    ("eigvalsh of a stack", lambda a: np.linalg.eigvalsh(np.stack([a, 2 * a]))),
    ("qr", np.linalg.qr),
    ("svd", lambda a: np.linalg.svd(a, full_matrices=False)),
    ("expm", sl.expm),
]


@pytest.mark.parametrize("where", ["nan in the upper triangle", "nan and inf"])
def test_nonfinite_entries_compiled_as_numpy(where):
    """Numba's np.linalg refuses inf/NaN entries; NumPy computes (eigh reads only the
    lower triangle): compiled programs give NumPy's values, or raise its error."""
    a = RNG.standard_normal((12, 12))
    a = a @ a.T + 12 * np.eye(12)
    a[3, 5] = np.nan
    if where == "nan and inf":
        a[5, 3] = np.inf
    for name, f in NONFINITE:
        got = {}
        for target in ("interpret", "cpu"):
            try:
                with np.errstate(all="ignore"):
                    got[target] = td.jit(f, target=target, eager_first=False)(a)
            except np.linalg.LinAlgError as e:
                got[target] = f"LinAlgError: {e}"
        if isinstance(got["interpret"], str):
            assert got["cpu"] == got["interpret"], name
            continue
        want, have = td.pytree.flatten(got["interpret"])[0], td.pytree.flatten(got["cpu"])[0]
        for w, h in zip(want, have, strict=True):
            np.testing.assert_array_equal(h, w, err_msg=name)
    # NaN only where eigh does not read: a finite result, NumPy's
    if where == "nan in the upper triangle":
        w = td.jit(np.linalg.eigvalsh, eager_first=False)(a)
        np.testing.assert_allclose(w, np.linalg.eigvalsh(a), rtol=1e-12)
        assert np.isfinite(w).all()


BAD = [
    (lambda a: np.linalg.solve(a, np.ones(4)), (A,), ValueError, "np.linalg.solve"),
    (lambda a: np.linalg.inv(a), (M,), np.linalg.LinAlgError, "must be square"),
    (lambda a: np.linalg.det(a), (M[0],), np.linalg.LinAlgError, "two-dimensional"),
    (lambda a: np.linalg.eig(a), (A,), NotImplementedError, "complex"),
    (lambda a: np.linalg.eigvals(a), (A,), NotImplementedError, "eigh"),
    (lambda a: np.linalg.svd(a), (M,), NotImplementedError, "full_matrices=False"),
    (lambda a: np.linalg.qr(a, mode="raw"), (M,), NotImplementedError, "raw"),
    (lambda a: np.linalg.eigh(a, UPLO="X"), (A,), ValueError, "UPLO"),
    (lambda a: np.linalg.norm(a, "fro", axis=0), (A,), ValueError, "vectors"),
    (lambda a: np.linalg.norm(a, 3), (A,), ValueError, "matrices"),
    (lambda a: np.linalg.norm(a, 1), (X3,), ValueError, "dimensions"),
    (lambda a: np.linalg.norm(a, axis=(0, 0)), (A,), ValueError, "duplicate"),
    (lambda a: np.linalg.norm(a, axis=[0, 1]), (A,), TypeError, "axis"),
    (lambda a: np.linalg.matrix_power(a, 1.5), (A,), TypeError, "integer"),
    (lambda a: np.linalg.inv(a.astype(np.float16)), (A,), TypeError, "float16"),
    (lambda a: sl.sqrtm(a), (A,), NotImplementedError, "sqrtm"),
    (lambda a: sl.solve(a, a, assume_a="banded"), (A,), NotImplementedError, "banded"),
    (lambda a: sl.solve_triangular(a, a, trans=3), (A,), ValueError, "trans"),
    (lambda a: sl.lu_solve((a, np.array([0, 0, 1], np.int32)), a[0]), (A,), ValueError, "pivots"),
    (lambda a: sl.lu_solve((a, np.array([0, 1], np.int32)), a[0]), (A,), ValueError, "pivots"),
]


@pytest.mark.parametrize("k", range(len(BAD)))
def test_errors_name_the_operation(k):
    f, args, exc, words = BAD[k]
    with pytest.raises(exc, match=words):
        interp(f, *args)


def test_derivative_limits():
    # QR of a wide matrix: forward works, its derivative is not implemented (as JAX)
    _close(interp(lambda a: np.abs(np.linalg.qr(a)[1]), M.T), np.abs(np.linalg.qr(M.T)[1]))
    with pytest.raises(NotImplementedError, match="wide"):
        td.grad(lambda a: np.sum(np.linalg.qr(a)[1]))(M.T)
    with pytest.raises(NotImplementedError, match="non-square"):
        td.grad(lambda a: np.sum(sl.lu_factor(a)[0]))(M)
    # repeated eigenvalues: the eigenvalues' gradient exists, the eigenvectors' does not
    g = td.grad(lambda a: np.sum(np.linalg.eigh(a)[0] ** 2))(np.eye(3))
    _close(g, 2 * np.eye(3))
    g = td.grad(lambda a: np.sum(np.linalg.eigh(a)[1][:, 0] ** 3))(np.eye(3))
    assert not np.all(np.isfinite(g))


def _shrink(a, x):
    k = 0
    while np.linalg.norm(x) > 0.1 and k < 50:  # a library call inside a compiled loop
        x = sl.solve_triangular(a, x, lower=True) * 0.9
        k += 1
    return np.sum(x)


def test_inside_loops():
    f = td.value_and_grad(_shrink, argnums=(0, 1))
    args = (S, np.ones(3))
    _close(td.jit(f)(*args), td.jit(f, target="interpret")(*args))
    _close(f(*args)[0], _shrink(*args))
    td.check_grads(_shrink, args, order=1)


def test_cholesky_upper_reads_the_upper_triangle():
    """np.linalg.cholesky(a, upper=True) factors a's upper triangle (U^T U), not the
    transposed factor of its lower one: on a non-symmetric a they differ, and the
    gradient lands in the upper triangle."""
    a = np.array([[4.0, 1.0, 0.5], [2.0, 5.0, 1.0], [0.3, 0.7, 6.0]])
    w = np.arange(9.0).reshape(3, 3)

    def f(a):
        return np.linalg.cholesky(a, upper=True), np.linalg.cholesky(a)

    for got in (interp(f, a), td.jit(f, eager_first=False)(a)):
        _close(got, f(a))
    loss = lambda a: np.sum(np.linalg.cholesky(a, upper=True) * w)  # noqa: E731
    g = td.grad(loss)(a)
    assert np.all(np.tril(g, -1) == 0)
    fd = np.zeros_like(a)
    for i, j in np.ndindex(3, 3):
        e = np.zeros_like(a)
        e[i, j] = 1e-6
        fd[i, j] = (loss(a + e) - loss(a - e)) / 2e-6
    np.testing.assert_allclose(g, fd, atol=1e-7)
