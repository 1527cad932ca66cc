"""`check_grads`: derivatives against finite differences, to any order.

As in JAX's `check_grads`: forward mode compares J·t with a central
difference along a random direction t; reverse mode compares <u, J t> with
<vjp(u), t>. Order k checks the derivative functions themselves, recursively.
Central differences use Richardson extrapolation (error O(eps^4)), so float32
checks are meaningful at modest tolerances.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import pytree
from .api import jvp, vjp

_DEFAULTS = {  # dtype -> (eps, atol, rtol)
    np.dtype(np.float32): (2e-2, 2e-2, 2e-2),
    np.dtype(np.float64): (1e-3, 1e-6, 1e-6),
}
_DEFAULTS[np.dtype(np.complex64)] = _DEFAULTS[np.dtype(np.float32)]
_DEFAULTS[np.dtype(np.complex128)] = _DEFAULTS[np.dtype(np.float64)]


class GradCheckError(AssertionError):
    pass


def _float_leaves(tree) -> list:
    return [x for x in pytree.flatten(tree)[0] if _is_float(x)]


def _is_float(x) -> bool:
    """Float or complex: a leaf derivatives flow through."""
    return isinstance(x, (float, complex)) or (hasattr(x, "dtype") and np.dtype(x.dtype).kind in "fc")


def _dtype(args) -> np.dtype:
    # Python floats are weak: they compute in the dtype of the arrays they meet
    dts = [np.asarray(x).dtype for x in _float_leaves(args) if type(x) not in (float, complex)]
    single = dts and all(d in (np.float32, np.complex64) for d in dts)
    return np.dtype(np.float32) if single else np.dtype(np.float64)


def _rand_like(tree, rng):
    def leaf(x):
        if not _is_float(x):
            return np.zeros(np.shape(x), np.asarray(x).dtype)
        r = rng.standard_normal(np.shape(x))
        if np.iscomplexobj(x):
            r = r + 1j * rng.standard_normal(np.shape(x))
            return complex(r) if isinstance(x, complex) else r.astype(x.dtype)
        return float(r) if isinstance(x, float) else r.astype(x.dtype)

    return pytree.tree_map(leaf, tree)


def _axpy(a: float, t, x):
    def leaf(xi, ti):
        if not _is_float(xi):
            return xi
        if isinstance(xi, (float, complex)):
            return xi + a * type(xi)(ti)
        wide = np.complex128 if np.iscomplexobj(xi) else np.float64
        return (xi + np.asarray(a * ti, dtype=wide)).astype(xi.dtype)

    return pytree.tree_map(leaf, x, t)


def _wide(x):
    return np.asarray(x, np.complex128 if np.iscomplexobj(x) else np.float64)


def _inner(a, b) -> float:
    """Re(sum(a * b)): the pairing under which a VJP is the transpose of the JVP
    (complex numbers: JAX's convention)."""
    total = 0.0
    for x, y in zip(pytree.flatten(a)[0], pytree.flatten(b)[0]):
        if x is None or y is None or not _is_float(x):
            continue
        total += float(np.real(np.sum(_wide(x) * _wide(y))))
    return total


def _sub(a, b):
    return pytree.tree_map(lambda x, y: _wide(x) - _wide(y), a, b)


def numerical_jvp(f: Callable, args: tuple, tangent: tuple, eps: float):
    """Central difference of f along `tangent`, Richardson-extrapolated."""

    def central(h):
        hi = f(*_axpy(h, tangent, args))
        lo = f(*_axpy(-h, tangent, args))
        return pytree.tree_map(lambda a, b: _scale(_sub(a, b), 0.5 / h), hi, lo)

    d1, d2 = central(eps), central(eps / 2)
    return pytree.tree_map(lambda a, b: (4.0 * b - a) / 3.0, d1, d2)


def _scale(x, s):
    return _wide(x) * s


def _close(what: str, got: float, want: float, atol: float, rtol: float, f, order: int):
    if not np.isfinite(got) or not np.isfinite(want) or abs(got - want) > atol + rtol * abs(want):
        raise GradCheckError(
            f"check_grads ({what}, order {order}) failed for {getattr(f, '__name__', f)}: "
            f"analytic {got!r} vs numerical {want!r} (|diff| {abs(got - want):.3g}, "
            f"allowed {atol + rtol * abs(want):.3g})"
        )


def check_grads(
    f: Callable,
    args: Sequence[Any],
    order: int = 2,
    modes: Sequence[str] = ("fwd", "rev"),
    atol: float | None = None,
    rtol: float | None = None,
    eps: float | None = None,
    seed: int = 0,
) -> None:
    """Raise `GradCheckError` unless f's derivatives up to `order` match finite differences."""
    if not isinstance(args, (tuple, list)):
        raise TypeError(
            f"check_grads: args must be a tuple or list of arguments, got {type(args).__name__} "
            "(write check_grads(f, (x,)) for one argument)"
        )
    args = tuple(args)
    eps0, atol0, rtol0 = _DEFAULTS[_dtype(args)]
    eps = eps or eps0
    atol = atol if atol is not None else atol0
    rtol = rtol if rtol is not None else rtol0
    rng = np.random.default_rng(seed)
    for mode in modes:
        if mode not in ("fwd", "rev"):
            raise ValueError(f"check_grads: modes must be 'fwd' or 'rev', got {mode!r}")
    _check(f, args, order, tuple(modes), atol, rtol, eps, rng, 1)


def _check(f, args, order, modes, atol, rtol, eps, rng, level):
    tangent = _rand_like(args, rng)
    num = numerical_jvp(f, args, tangent, eps)
    if "fwd" in modes:
        _, t_out = jvp(f, args, tangent)
        u = _rand_like(num, rng)
        _close("forward mode", _inner(t_out, u), _inner(num, u), atol, rtol, f, level)
        if order > 1:
            t_fixed = tangent

            def f_jvp(*a):
                return jvp(f, a, t_fixed)[1]

            f_jvp.__name__ = f"jvp({getattr(f, '__name__', 'f')})"
            _check(f_jvp, args, order - 1, ("fwd",), atol, rtol, eps, rng, level + 1)
    if "rev" in modes:
        out, f_vjp = vjp(f, *args)
        u = _rand_like(out, rng)
        ct = f_vjp(u)
        _close("reverse mode", _inner(tangent, ct), _inner(num, u), atol, rtol, f, level)
        if order > 1:
            u_fixed = u

            def f_vjp_fn(*a):
                return vjp(f, *a)[1](u_fixed)

            f_vjp_fn.__name__ = f"vjp({getattr(f, '__name__', 'f')})"
            _check(f_vjp_fn, args, order - 1, ("rev",), atol, rtol, eps, rng, level + 1)
