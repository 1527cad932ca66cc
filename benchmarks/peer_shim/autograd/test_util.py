"""autograd.test_util's checks on tracediff: each derivative (reverse mode: a
VJP, forward mode: a JVP, to `order`) is compared with central differences, as
autograd does; in jit mode the derivative programs are compiled.

Complex numbers follow tracediff's (JAX's) convention: a VJP is the transpose
of the JVP under the real pairing <a, b> = Re(sum(a * b)).
"""

from itertools import product

import numpy as np

import tracediff as td
from tracediff import pytree

from . import compiled

TOL = 1e-6
RTOL = 1e-6
EPS = 1e-6


def scalar_close(a, b):
    return abs(a - b) < TOL or abs(a - b) / abs(a + b) < RTOL


_rng = np.random.default_rng(0)


def _map(fn, *trees):
    leaves, tree = pytree.flatten(trees[0])
    rest = [pytree.flatten(t)[0] for t in trees[1:]]
    return pytree.unflatten(tree, [fn(*ls) for ls in zip(leaves, *rest)])


def _randn_leaf(x):
    x = np.asarray(x)
    r = _rng.standard_normal(x.shape)
    if np.iscomplexobj(x):
        r = r + 1j * _rng.standard_normal(x.shape)
    return r.astype(x.dtype) if x.dtype.kind in "fc" else r


def _randn(x):
    return _map(_randn_leaf, x)


def _pair(a, b) -> float:
    la, lb = pytree.flatten(a)[0], pytree.flatten(b)[0]
    return float(sum(np.real(np.sum(np.asarray(x) * np.asarray(y))) for x, y in zip(la, lb)))


def _numerical_jvp(f, x, v):
    plus = f(x + v * (EPS / 2))
    minus = f(x - v * (EPS / 2))
    return _map(lambda p, m: (np.asarray(p) - np.asarray(m)) / EPS, plus, minus)


def _check_vjp(f, x):
    y = f(x)
    u, t = _randn(y), _randn(x)
    ct = compiled(lambda x, u: td.vjp(f, x)[1](u)[0])(x, u)
    exact = _pair(t, ct)
    numeric = _pair(u, _numerical_jvp(f, x, t))
    assert scalar_close(numeric, exact), (
        f"VJP check failed with arg {x}:\nanalytic: {exact}\nnumeric:  {numeric}"
    )


def _check_jvp(f, x):
    t = _randn(x)
    tout = compiled(lambda x, t: td.jvp(f, (x,), (t,))[1])(x, t)
    numeric = _numerical_jvp(f, x, t)
    u = _randn(numeric)
    assert scalar_close(_pair(tout, u), _pair(numeric, u)), f"JVP check failed with arg {x}"


def _check(f, x, modes, order):
    if "fwd" in modes:
        _check_jvp(f, x)
        if order > 1:
            t = _randn(x)
            _check(lambda x: td.jvp(f, (x,), (t,))[1], x, ["fwd"], order - 1)
    if "rev" in modes:
        _check_vjp(f, x)
        if order > 1:
            u = _randn(f(x))
            _check(lambda x: td.vjp(f, x)[1](u)[0], x, ["rev"], order - 1)


def check_grads(fun, argnum=0, modes=None, order=2):
    """check_grads(fun, argnum)(*args, **kwargs) as autograd's: the arguments at
    argnum (any pytrees of arrays and numbers) become one flat vector."""
    modes = modes or ["fwd", "rev"]

    def checker(*args, **kwargs):
        nums = list(argnum) if isinstance(argnum, (list, tuple)) else [argnum]
        leaves, tree = pytree.flatten([args[i] for i in nums])
        shapes = [np.shape(x) for x in leaves]
        sizes = [int(np.size(x)) for x in leaves]
        dt = np.result_type(*[np.asarray(x) for x in leaves])
        x0 = np.concatenate([np.ravel(np.asarray(x, dt)) for x in leaves])

        def f(flat):
            parts, k = [], 0
            for s, n in zip(shapes, sizes):
                parts.append(flat[k : k + n].reshape(s))
                k += n
            a = list(args)
            for i, x in zip(nums, pytree.unflatten(tree, parts)):
                a[i] = x
            return fun(*a, **kwargs)

        _check(f, x0, modes, order)

    return checker


def check_equivalent(x, y):
    assert np.allclose(x, y, rtol=RTOL, atol=TOL), f"Value mismatch:\nx: {x}\ny: {y}"


def combo_check(fun, *args, **kwargs):
    """All combinations of the given argument and keyword values, as autograd's."""

    def _combo_check(*cargs, **ckwargs):
        kv = [[(k, x) for x in xs] for k, xs in ckwargs.items()]
        for a in product(*cargs):
            for k in product(*kv):
                check_grads(fun, *args, **kwargs)(*a, **dict(k))

    return _combo_check
