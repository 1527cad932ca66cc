"""Max-shifts that cannot change a result are differentiated as constants
(passes/shift.py), and divisions by powers of two become products
(passes/simplify.py)."""

from __future__ import annotations

import numpy as np
import pytest

import tracediff as td

TARGETS = ["interpret", "cpu"]


def softmax_rows(S, W):
    S = S - S.max(-1, keepdims=True)
    A = np.exp(S)
    A = A / A.sum(-1, keepdims=True)
    return np.sum(A * W)


def logsumexp_rows(S, W):
    m = S.max(axis=1, keepdims=True)
    return np.sum(W[:, 0] * (m[:, 0] + np.log(np.sum(np.exp(S - m), axis=1))))


def softmax_cols(S, W):  # over axis 0, and a log-softmax
    z = S - np.max(S, axis=0, keepdims=True)
    return np.sum(W * (z - np.log(np.sum(np.exp(z), axis=0, keepdims=True))))


def shifted_squares(S, W):  # not invariant: the max's derivative counts
    return np.sum(W * (S - S.max(-1, keepdims=True)) ** 2)


def returned_shift(S, W):  # not invariant: the shifted values reach the result linearly
    return np.sum(W * (S - S.max(-1, keepdims=True)))


def _prims(ir):
    out = set()
    for e in ir.eqns:
        out.add(e.prim.name)
        body = e.params.get("body")
        if body is not None:
            out |= _prims(body)
    return out


def _data(ties: bool):
    rng = np.random.default_rng(0)
    S = rng.standard_normal((6, 5))
    if ties:
        S[1, :] = 0.5  # a row of equal maxima
        S[2, 3] = S[2, 1] = S[2].max() + 1.0  # two maxima
    return S, rng.standard_normal((6, 5))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("ties", [False, True])
def test_softmax_and_logsumexp_gradients_skip_the_max(target, ties):
    S, W = _data(ties)
    e = np.exp(S - S.max(-1, keepdims=True))
    A = e / e.sum(-1, keepdims=True)
    want = A * (W - np.sum(A * W, -1, keepdims=True))  # the softmax Jacobian applied to W
    got = td.jit(td.grad(softmax_rows), target=target, eager_first=False)(S, W)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    got = td.jit(td.grad(logsumexp_rows), target=target, eager_first=False)(S, W[:, :1])
    np.testing.assert_allclose(got, W[:, :1] * A, rtol=1e-12, atol=1e-15)
    for f in (softmax_rows, softmax_cols):
        prims = _prims(td.jit(td.grad(f)).entry(S, W).ir)
        assert "eq" not in prims, prims  # no tie mask of the max
    td.check_grads(softmax_cols, (S, W), order=1, modes=("rev",))


@pytest.mark.parametrize("f", [shifted_squares, returned_shift])
def test_shifts_that_change_the_result_are_differentiated(f):
    S, W = _data(False)
    td.check_grads(f, (S, W), order=1, modes=("rev",))
    assert "eq" in _prims(td.jit(td.grad(f)).entry(S, W).ir)  # the max's rule, with its ties


def test_a_misaligned_row_max_is_not_taken_for_a_shift():
    # S - S.max(-1) without keepdims subtracts row maxima along the columns (legal for a
    # square S): not a shift of the rows, so the max is differentiated
    S = np.random.default_rng(1).standard_normal((5, 5))

    def f(S):
        z = S - S.max(-1)
        e = np.exp(z)
        return np.sum(np.log(e / e.sum(-1, keepdims=True)) * np.arange(5.0))

    td.check_grads(f, (S,), order=1, modes=("rev",))
    assert "eq" in _prims(td.jit(td.grad(f)).entry(S).ir)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [8.0, 0.5, -4.0, 3.0])
def test_division_by_a_power_of_two_is_bit_identical(target, dtype, c):
    tiny = np.finfo(dtype).smallest_subnormal
    x = np.array([1.0, 3.0, -7.0, tiny, 5 * tiny, np.inf, -np.inf, np.nan, -0.0, 0.0], dtype)
    got = td.jit(lambda x: x / c, target=target, eager_first=False)(x)
    want = x / dtype(c)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
