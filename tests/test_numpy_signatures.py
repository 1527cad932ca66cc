"""NumPy's own signatures on traced arrays: keyword names, diff's prepend/append,
einsum's sublist form, and errors that name functions as the user wrote them."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import scipy.special

import tracediff as td
from tracediff import numpy_api


def test_every_keyword_numpy_names_reaches_the_implementation():
    """Each of NumPy's positional-or-keyword parameters has a parameter here, by the
    same name or at the same position (the dispatcher renames it)."""
    missing = []
    for func, impl in numpy_api.FUNCTIONS.items():
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        try:
            ps = [p for p in inspect.signature(func).parameters.values() if p.kind in positional]
            qs = inspect.signature(impl).parameters
        except (TypeError, ValueError):
            continue
        if any(q.kind == q.VAR_KEYWORD for q in qs.values()):
            continue
        ours = [q for q in qs.values() if q.kind in positional]
        for k, p in enumerate(ps):
            if (
                p.kind == p.POSITIONAL_OR_KEYWORD
                and p.name not in qs
                and k >= len(ours)
                and p.name != "device"
            ):
                missing.append(f"{func.__name__}({p.name}=)")
    assert not missing, missing


@pytest.mark.parametrize(
    "name, f",
    [
        ("swapaxes", lambda x, y: np.swapaxes(x, axis1=0, axis2=1) * y.T),
        ("dot", lambda x, y: np.dot(x, b=y.T)),
        ("outer", lambda x, y: np.outer(x[0], b=y[0])),
        ("tensordot", lambda x, y: np.tensordot(x, b=y, axes=2)),
        ("sum", lambda x, y: np.sum(a=x * y, axis=1)),
        ("moveaxis", lambda x, y: np.moveaxis(a=x, source=0, destination=1) * y.T),
        ("diff-prepend", lambda x, y: np.diff(x, axis=1, prepend=0.5) * y),
        ("diff-append", lambda x, y: np.diff(x, append=y[:1], axis=0)),
        ("diff-both", lambda x, y: np.diff(x[0], n=2, prepend=x[1, :2], append=1.0)),
        ("einsum-sublist", lambda x, y: np.einsum(x, [0, 1], y, [0, 1], [1])),
        ("einsum-sublist-ellipsis", lambda x, y: np.einsum(x, [Ellipsis, 1], y, [Ellipsis, 1])),
        ("einsum-ellipsis", lambda x, y: np.einsum("...j,...j->...", x, y)),
        ("einsum-ellipsis-implicit", lambda x, y: np.einsum("i...,i...", x, y)),
        ("einsum-ellipsis-matmul", lambda x, y: np.einsum("...ij,jk->...ik", x[None], y.T)),
    ],
)
def test_numpy_keywords_and_forms(name, f):
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    np.testing.assert_allclose(td.jit(f, target="interpret")(x, y), f(x, y), rtol=1e-13)
    td.check_grads(lambda x, y: np.sum(np.sin(f(x, y))), (x, y), order=1)


def test_errors_name_scipy_functions_as_written():
    with pytest.raises(NotImplementedError, match=r"scipy\.special\.ellipk"):  # (one not supported)
        td.grad(lambda x: np.sum(scipy.special.ellipk(x)))(np.ones(3) * 0.5)
    with pytest.raises(ValueError, match="sublist form"):
        td.jit(lambda x: np.einsum(x, ["i"]), target="interpret")(np.ones(3))
    with pytest.raises(NotImplementedError, match="differ in size"):  # (NumPy broadcasts them)
        td.jit(lambda x, y: np.einsum("...,...", x, y), target="interpret")(np.ones((2, 3)), np.ones((1, 3)))


def _built(a, b):
    v = np.array([a, b * 2.0, 1.0])  # a list of traced values and numbers: a stack
    w = np.asarray([[a, b], [b, a]], dtype=np.float64)
    return np.sum(v * v) + np.sum(w @ v[:2]) + np.float64(a) * 2.0 + np.array(v, ndmin=2)[0, 1]


def test_arrays_built_from_traced_values():
    np.testing.assert_allclose(td.jit(_built, target="interpret")(1.0, 2.0), _built(1.0, 2.0))
    np.testing.assert_allclose(td.grad(_built, argnums=(0, 1))(1.0, 2.0), (12.0, 29.0))
    td.check_grads(_built, (1.0, 2.0), order=2)
    x = np.arange(3.0)
    y = td.jit(lambda x: np.array(x) + np.asarray(x) * np.int64(3) + np.float32(x).astype(np.float64))(x)
    np.testing.assert_allclose(y, 5 * x)


def _copied(x):
    y = np.array(x)  # a copy: writing to it leaves x alone
    y[0] = 5.0
    return x * 1.0, y


def test_np_array_copies():
    x = np.arange(3.0)
    got = td.jit(_copied, target="interpret")(x)
    want = _copied(x.copy())
    np.testing.assert_allclose(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1])
