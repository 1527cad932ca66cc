"""Functions for tests/test_distributed.py, in an importable module: pickle stores
a module-level function by reference, and the processes the tests start import
this module to load them."""

from __future__ import annotations

import numpy as np

import tracediff as td


def loss(params, x, y):
    """Logistic loss summed over the rows: shard sums add up to the whole sum."""
    logits = x @ params["w"] + params["b"]
    return np.sum(np.logaddexp(0.0, logits) - y * logits)


def scalar(x):
    return np.sum(np.tanh(x) ** 2 + 0.5 * x**3)


def two_args(x, y):
    return np.sum(np.sin(x) * y)


def vector(x):
    return np.sin(x) * x[::-1]


def per_row(x):
    return np.sum(x**2)


def sqrt_where(x):
    return np.sum(np.where(x > 0, np.sqrt(x), 0.0))


def with_aux(x):
    return np.sum(x**2), np.max(x)


# decorated at module level: pickled by name, loaded as this very object
@td.grad
def decorated_grad(x):
    return np.sum(np.cos(x) * x)


@td.jit
def decorated_jit(x):
    return np.sum(np.exp(-(x**2)))


@td.value_and_grad
def decorated_value_and_grad(x):
    return np.sum(x**4)


@td.custom_vjp
def clip_gradient(x):
    return x


def _clip_fwd(x):
    return x, None


def _clip_bwd(_, g):
    return (np.clip(g, -0.5, 0.5),)


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


def uses_custom_vjp(x):
    return np.sum(clip_gradient(x) ** 2)


def clip_gradient_sum(x):
    return np.sum(clip_gradient(x))


def double_cotangent(x, g):
    return (2 * g * x,)


@td.custom_jvp
def softplus(x):
    return np.logaddexp(0.0, x)


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return softplus(x), t / (1 + np.exp(-x))


def uses_custom_jvp(x):
    return np.sum(softplus(x) * x)


@td.checkpoint
def block(x):
    return np.tanh(x) * np.sin(x)


def uses_checkpoint(x):
    return np.sum(block(x) ** 2)


# transformed at module level under another name: pickled by the function it transforms
grad_of_scalar = td.grad(scalar)
shard_value_and_grad = td.jit(td.value_and_grad(loss))


def make_data(rng, n):
    """The two Gaussian blobs of examples/logistic_regression.py."""
    y = (rng.random(n) < 0.5).astype(np.float64)
    centers = np.where(y[:, None] > 0, np.array([1.5, 1.0]), np.array([-1.0, -1.5]))
    return centers + rng.standard_normal((n, 2)), y
