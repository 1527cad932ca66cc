"""Region outputs stored in place into a dead input array (CPU writer,
`RegionWriter.dead_input_for`): where it applies (an array the kernel made,
read only at the element stored, dead after the region) and where it must not
(the caller's arrays, values read later or through a live view, reads at
other elements: a transpose, a broadcast)."""

import re

import numpy as np
import pytest

import tracediff as td

rng = np.random.default_rng(7)
A = rng.standard_normal((24, 24)).astype(np.float32)
B = rng.standard_normal((24, 24)).astype(np.float32)
C = rng.standard_normal((24, 1)).astype(np.float32)
REUSE = re.compile(r"^\s+(v\d+) = (v\d+)$", re.M)


def _reused(fn, *args) -> list:
    return REUSE.findall(td.dump(td.jit(fn), *args, stage="source"))


def _same(fn, *args):
    got, want = td.jit(fn)(*args), fn(*args)
    for g, w in zip(*(x if isinstance(x, tuple) else (x,) for x in (got, want))):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=1e-5)


CASES = {
    # (function, stored in place?)
    "gemm output, tanh": (lambda a, b: np.tanh(a @ b) + 1.0, True),
    "two passes over a gemm output": (lambda a, b: np.exp(np.tanh(a @ b) * 2.0) - np.sum(a), True),
    "the caller's array": (lambda a, b: np.tanh(a) + b, False),
    "read again later": (lambda a, b: (np.tanh(a @ b), a @ b), False),
    "read transposed": (lambda a, b: np.tanh((a @ b).T) + (a @ b), False),
    "read at a broadcast column": (lambda a, b: np.tanh(a @ b) + (a @ b)[:, :1], False),
    "a view kept": (lambda a, b: (np.tanh(a @ b) * 3.0, (a @ b).T), False),
}


@pytest.mark.parametrize("name", list(CASES))
def test_in_place_store(name):
    fn, expect = CASES[name]
    _same(fn, A, B)
    assert bool(_reused(fn, A, B)) == expect, td.dump(td.jit(fn), A, B, stage="source")


def test_gradient_through_in_place_stores_matches_numpy():
    # W2's shape of program: tanh over a GEMM, its derivative into the other GEMM's output
    def loss(w1, w2, x):
        h = np.tanh(x @ w1)
        return np.sum(np.tanh(h @ w2) ** 2)

    w1, w2, x = A, B, rng.standard_normal((16, 24)).astype(np.float32)
    g = td.jit(td.grad(loss, argnums=(0, 1)))
    assert len(_reused(td.grad(loss, argnums=(0, 1)), w1, w2, x)) >= 2
    h = np.tanh(x @ w1)
    o = np.tanh(h @ w2)
    do = 2 * o * (1 - o * o)
    dh = (do @ w2.T) * (1 - h * h)
    for got, want in zip(g(w1, w2, x), (x.T @ dh, h.T @ do)):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-4)
    td.check_grads(
        lambda a, b: loss(a, b, x.astype(np.float64)), (w1.astype(np.float64), w2.astype(np.float64))
    )


def test_in_place_store_is_repeatable():
    # the reused buffer is the kernel's own each call: calling twice gives the same result
    f = td.jit(lambda a, b: np.tanh(a @ b) - 0.5)
    first = f(A, B).copy()
    np.testing.assert_array_equal(f(A, B), first)
    np.testing.assert_array_equal(A, A.copy())


def test_in_place_store_in_parallel_chunks():
    # each chunk of the prange loop reads and overwrites its own rows only
    a = rng.standard_normal((256, 256)).astype(np.float32)
    b = rng.standard_normal((256, 256)).astype(np.float32)

    def loss(a, b):
        return np.sum(np.tanh(a @ b) ** 2)

    g = td.jit(td.grad(loss), parallel=True)
    src = td.dump(g, a, b, stage="source")
    assert "prange" in src and REUSE.search(src), src
    h = np.tanh(a @ b)
    np.testing.assert_allclose(g(a, b), (2 * h * (1 - h * h)) @ b.T, rtol=1e-4, atol=1e-4)


def test_in_place_store_in_loops_leaves_the_callers_array():
    # a value-dependent while loop and a loop over n: stores in place into the kernel's
    # own arrays, iteration after iteration, never into the caller's
    a = rng.standard_normal((16, 16))
    b = rng.standard_normal((16, 16)) * 0.1

    def f(a, b):
        h = a
        k = 0
        while k < 5:
            h = np.tanh(h @ b) + h * 0.5
            k = k + 1
        return h

    def g(a, b, n):
        h = a
        for _ in range(n):
            h = np.tanh(h) * 0.9 + 0.1
        return h

    kept = a.copy()
    for fn, args in ((f, (a, b)), (g, (a, b, 4))):
        jf = td.jit(fn)
        for _ in range(2):  # a second call reads the caller's array unchanged
            np.testing.assert_allclose(jf(*args), fn(*args), rtol=1e-12)

        def loss(*x, fn=fn):
            return np.sum(fn(*x) ** 2)

        np.testing.assert_allclose(td.jit(td.grad(loss))(*args), td.grad(loss)(*args), rtol=1e-10)
        np.testing.assert_array_equal(a, kept)
    assert _reused(f, a, b)


def _update_first(x, y):
    x += 1.0
    return x + y


@pytest.mark.parametrize("target", ["interpret", "cpu"])
def test_arguments_sharing_memory_with_one_updated_in_place_raise(target):
    """NumPy: f(a, a) lets y see x += 1 ([2, 4, 6, 8] here); a traced program's
    arguments are separate values, so such a call raises instead of giving
    [1, 3, 5, 7] (a bug hunt). Arguments that share no memory run as before."""
    a = np.arange(4.0)
    f = td.jit(_update_first, target=target)
    for y in (a, a[::-1]):
        with pytest.raises(td.TracerError, match=r"updates argument 0 \('x'\) in place.*share memory"):
            f(a, y)
    np.testing.assert_array_equal(f(a[:2], a[2:]), [3.0, 5.0])  # disjoint halves
    np.testing.assert_array_equal(f(a, a.copy()), [1.0, 3.0, 5.0, 7.0])
    np.testing.assert_array_equal(a, np.arange(4.0))  # the caller's array is never written
    with pytest.raises(td.TracerError, match="share memory"):
        td.grad(lambda x, y: np.sum(_update_first(x, y)))(a, a)
    # a function that updates nothing may take the same array twice
    np.testing.assert_array_equal(td.jit(lambda x, y: x * y, target=target)(a, a), a * a)


class _Holder:
    def __init__(self, n):
        self.buf = np.zeros(n)

    def energy(self, x):
        for i in range(x.shape[0]):
            self.buf[i] = x[i] ** 2
        return np.sum(self.buf)


def _dict_entry(x):
    state = {"u": np.zeros(4)}
    for i in range(4):
        state["u"][i] += 2 * x[i]
    return np.sum(state["u"] ** 2)


def _named_local(x):
    state = {"u": np.zeros(4)}
    u = state["u"]
    for i in range(4):
        u[i] = 2 * x[i]
    return np.sum(u**2)


def test_stores_into_arrays_held_by_attributes_or_entries_raise():
    """A NumPy array held by an attribute or a container entry that receives traced
    values: its traced copy was dropped (0.0 and zero gradients; a bug hunt). It
    raises, naming the holder; a local name holding the array works."""
    x = np.array([0.3, -0.7, 1.2, 0.5])
    with pytest.raises(td.TracerError, match=r"held by self\.buf .*buf = self\.buf"):
        td.jit(_Holder(4).energy, target="interpret")(x)
    with pytest.raises(td.TracerError, match=r"held by state\['u'\]"):
        td.grad(_dict_entry)(x)
    np.testing.assert_allclose(td.jit(_named_local, target="interpret")(x), _named_local(x))
    np.testing.assert_allclose(td.grad(_named_local)(x), 8 * x)


# y is updated after each of these: NumPy's result is a new array for the first group
# (it must not see the update) and y itself or a view of it for the second (it must)
_COPIES = {
    "+y": lambda y: +y,
    "np.positive": np.positive,
    "np.conjugate": np.conjugate,
    "np.add.reduce over no axis": lambda y: np.add.reduce(y, axis=()),
    "np.concatenate of one": lambda y: np.concatenate([y]),
    "np.concatenate of one, axis=None": lambda y: np.concatenate((y,), axis=None),
    "np.hstack of one": lambda y: np.hstack([y]),
    "np.column_stack of one": lambda y: np.column_stack([y])[:, 0],
    "np.dstack of one": lambda y: np.dstack([y])[0, :, 0],
    "np.r_": lambda y: np.r_[y],
    "np.nan_to_num": np.nan_to_num,
    "np.einsum('i,i->i')": lambda y: np.einsum("i,i->i", y, np.ones(3)),
}
_SAME = {
    "astype(copy=False)": lambda y: y.astype(y.dtype, copy=False),
    "y.conj() of a real y": lambda y: y.conj(),
    "np.diff with n=0": lambda y: np.diff(y, n=0, prepend=1.0),
    "np.real_if_close of a real y": np.real_if_close,
    "np.nan_to_num(copy=False)": lambda y: np.nan_to_num(y, copy=False),
    "a ufunc's out= array": lambda y: np.add(y, 0.0, out=y),
    "np.einsum('i->i')": lambda y: np.einsum("i->i", y),
    "np.einsum('ij->ji')": lambda y: np.einsum("ij->ji", y[None])[:, 0],
}


@pytest.mark.parametrize("name", list(_COPIES) + list(_SAME))
def test_copies_and_the_array_itself_as_numpy_gives_them(name):
    op = _COPIES.get(name) or _SAME[name]

    def f(x):
        y = x.copy()
        c = op(y)
        y[0] = 5.0
        return np.sum(c * np.arange(1.0, 4.0))

    x = np.array([1.0, 2.0, 4.0])
    want = 17.0 if name in _COPIES else 21.0
    assert f(x.copy()) == want  # NumPy's
    val, grad = td.value_and_grad(f)(x)
    assert val == want
    np.testing.assert_array_equal(grad, [1, 2, 3] if name in _COPIES else [0, 2, 3])
    if name in ("+y", "np.concatenate of one", "astype(copy=False)"):
        assert td.jit(f, eager_first=False)(x) == want


def test_nan_to_num_copy_false_replaces_in_place():
    def f(x):
        y = x * 1.0
        np.nan_to_num(y, copy=False, nan=-1.0)
        return y

    x = np.array([1.0, np.nan, np.inf])
    np.testing.assert_array_equal(td.jit(f, eager_first=False)(x), f(x))


def test_einsum_diagonal_is_a_view():
    """np.einsum('ii->i', y) is a view of y's diagonal in NumPy: an update shows in it."""

    def f(x):
        y = x[:, None] * x[None, :]
        d = np.einsum("ii->i", y)
        y[0, 0] = 7.0
        return np.sum(d * np.arange(1.0, 4.0)) + np.einsum("ii", y)

    x = np.array([1.0, 2.0, 4.0])
    assert td.value_and_grad(f)(x)[0] == f(x) == td.jit(f, eager_first=False)(x)
    td.check_grads(f, (x,), order=1)
