"""Functional optimizers over pytrees, in the style of optax.

Each constructor returns an :class:`Optimizer` with two pure functions::

    opt = td.optim.adam(1e-3)
    state = opt.init(params)
    params, state = opt.update(grads, state, params)

``params`` and ``grads`` are pytrees (nested dict / list / tuple) of arrays with
the same structure. Everything is plain NumPy arithmetic with no Python control
flow on array values, and the step count lives in the state as a 0-d int32
array, so ``update`` can be called inside ``td.jit`` (on tracers) as well as on
NumPy arrays. Hyperparameters are Python floats, so float32 parameters stay
float32 (NEP 50). ``lr`` may also be a callable ``lr(count) -> float`` of the
0-based step count (a schedule written with NumPy operations).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from .pytree import tree_map

__all__ = [
    "AdamState",
    "MomentumState",
    "Optimizer",
    "SgdState",
    "adam",
    "momentum",
    "sgd",
]


class Optimizer(NamedTuple):
    """A pair of pure functions ``init(params) -> state`` and
    ``update(grads, state, params) -> (new_params, new_state)``."""

    init: Callable[[Any], Any]
    update: Callable[[Any, Any, Any], tuple[Any, Any]]


class SgdState(NamedTuple):
    count: Any  # 0-d int32 array: number of updates applied so far


class MomentumState(NamedTuple):
    count: Any
    velocity: Any  # pytree like params


class AdamState(NamedTuple):
    count: Any
    mu: Any  # first moment, pytree like params
    nu: Any  # second moment, pytree like params


def _zero_count():
    return np.zeros((), dtype=np.int32)


def _dtype(x) -> np.dtype:
    dt = getattr(x, "dtype", None)
    return np.dtype(dt) if dt is not None else np.asarray(x).dtype


def _as_dtype(x, dtype):
    """``x`` converted to ``dtype`` (a no-op when it already has it)."""
    if _dtype(x) == dtype:
        return x
    return x.astype(dtype) if hasattr(x, "astype") else np.asarray(x, dtype=dtype)


def _lr_at(lr, count):
    return lr(count) if callable(lr) else lr


def _cast_lr(lr, dtype):
    """A schedule's array-valued rate in the parameter's dtype (Python floats are weak)."""
    # (np.float64 is a float subclass but not weak, hence the exact type test)
    return lr if type(lr) in (int, float) else _as_dtype(lr, dtype)


def sgd(lr: float | Callable) -> Optimizer:
    """Plain gradient descent: ``p <- p - lr * g``."""

    def init(params):
        return SgdState(_zero_count())

    def update(grads, state, params):
        step_lr = _lr_at(lr, state.count)
        new_params = tree_map(lambda p, g: p - _cast_lr(step_lr, _dtype(p)) * g, params, grads)
        return new_params, SgdState(state.count + 1)

    return Optimizer(init, update)


def momentum(lr: float | Callable, beta: float = 0.9) -> Optimizer:
    """Heavy-ball momentum: ``v <- beta * v + g``, ``p <- p - lr * v``."""

    def init(params):
        return MomentumState(_zero_count(), tree_map(np.zeros_like, params))

    def update(grads, state, params):
        step_lr = _lr_at(lr, state.count)
        velocity = tree_map(lambda v, g: beta * v + g, state.velocity, grads)
        new_params = tree_map(lambda p, v: p - _cast_lr(step_lr, _dtype(p)) * v, params, velocity)
        return new_params, MomentumState(state.count + 1, velocity)

    return Optimizer(init, update)


def adam(lr: float | Callable, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """Adam (Kingma & Ba), with optax's placement of ``eps``::

        m <- b1 * m + (1 - b1) * g
        v <- b2 * v + (1 - b2) * g**2
        p <- p - lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)

    where ``t`` is the 1-based step number.
    """

    def init(params):
        return AdamState(_zero_count(), tree_map(np.zeros_like, params), tree_map(np.zeros_like, params))

    def update(grads, state, params):
        step_lr = _lr_at(lr, state.count)
        count = state.count + 1
        # float64 bias corrections (int32 count with Python float bases); each leaf
        # gets them converted to its own dtype so float32 stays float32
        c1 = 1.0 - b1**count
        c2 = 1.0 - b2**count
        mu = tree_map(lambda m, g: b1 * m + (1.0 - b1) * g, state.mu, grads)
        nu = tree_map(lambda v, g: b2 * v + (1.0 - b2) * (g * g), state.nu, grads)

        def step(p, m, v):
            dt = _dtype(p)
            m_hat = m / _as_dtype(c1, dt)
            v_hat = v / _as_dtype(c2, dt)
            return p - _cast_lr(step_lr, dt) * m_hat / (np.sqrt(v_hat) + eps)

        new_params = tree_map(step, params, mu, nu)
        return new_params, AdamState(count, mu, nu)

    return Optimizer(init, update)
