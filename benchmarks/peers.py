"""Optional peer rows: JAX (jit), PyTorch (eager), HIPS autograd.

Each peer is used only when it imports; none is ever required. JAX and
autograd run the workload's own function with `np` rebound to `jax.numpy` /
`autograd.numpy` (the same source text); PyTorch needs torch calls, written
out below.

`peer_variants(workload, args)` returns {name: build}, where `build()`
returns `(call, to_numpy)`: `call()` runs one gradient (or, for a training
workload, the whole training run) and returns its result; `to_numpy` turns
that result into a tuple of NumPy arrays for checking.
"""

from __future__ import annotations

import types

import numpy as np
import workloads as W


def _rebind(fn, module):
    """`fn` with the global name `np` bound to `module`."""
    g = dict(fn.__globals__, np=module)
    return types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, fn.__closure__)


def _jax():
    try:
        import jax

        jax.config.update("jax_enable_x64", True)  # W3 and W6 are float64
        import jax.numpy as jnp
    except Exception:
        return None
    return jax, jnp


def _torch():
    try:
        import torch
    except Exception:
        return None
    return torch


def _autograd():
    try:
        import autograd
        import autograd.numpy as anp
    except Exception:
        return None
    return autograd, anp


def available() -> dict[str, str]:
    """{peer name: version} of the peers that import."""
    out = {}
    if (j := _jax()) is not None:
        out["JAX jit"] = j[0].__version__
    if (t := _torch()) is not None:
        out["PyTorch eager"] = t.__version__
    if _autograd() is not None:
        try:
            from importlib.metadata import version

            out["autograd"] = version("autograd")
        except Exception:
            out["autograd"] = "?"
    return out


def _np_tuple(x):
    return tuple(np.asarray(a) for a in W.as_tuple(x))


# --- JAX ---------------------------------------------------------------------------------------


def _jax_build(w: W.Workload, args):
    jax, jnp = _jax()

    def build():
        grad = jax.jit(jax.grad(_rebind(w.fn, jnp), argnums=w.argnums))
        jargs = [jnp.asarray(a) for a in args]
        if w.training:
            w0, X, y = jargs

            def call():
                return jax.block_until_ready(W.train(grad, w0, X, y))

        else:

            def call():
                return jax.block_until_ready(grad(*jargs))

        return call, _np_tuple

    return build


# --- autograd ----------------------------------------------------------------------------------


def _autograd_build(w: W.Workload, args):
    autograd, anp = _autograd()

    def build():
        grad = autograd.grad(_rebind(w.fn, anp), w.argnums)
        if w.training:
            w0, X, y = args

            def call():
                return W.train(grad, w0, X, y)

        else:

            def call():
                return grad(*args)

        return call, _np_tuple

    return build


# --- PyTorch eager -----------------------------------------------------------------------------


def _torch_fns(torch):
    def w1(x, y):
        return torch.sum(torch.sin(x) * torch.exp(-x * x) + torch.tanh(x * y) + torch.log1p(y * y))

    def w2(W1, b1, W2, b2, X, Y):
        h = torch.tanh(X @ W1 + b1)
        logits = h @ W2 + b2
        m = torch.amax(logits, dim=1, keepdim=True)
        z = logits - m
        lse = torch.log(torch.sum(torch.exp(z), dim=1, keepdim=True))
        return -torch.mean(torch.sum(Y * (z - lse), dim=1))

    def w3(x):
        return torch.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    def w4(x, w, b):
        for _ in range(40):
            x = x + 0.1 * torch.tanh(x * w + b)
        return torch.sum(x * x)

    def w6(w, X, y):
        z = X @ w
        return torch.mean(torch.log1p(torch.exp(z)) - y * z)

    return {"W1": w1, "W2": w2, "W3": w3, "W4": w4, "W6": w6}


def _torch_build(w: W.Workload, args):
    torch = _torch()
    fn = _torch_fns(torch)[w.id]
    nums = w.nums

    def grad(*targs):
        leaves = [t.detach().requires_grad_(i in nums) for i, t in enumerate(targs)]
        gs = torch.autograd.grad(fn(*leaves), [leaves[i] for i in nums])
        return gs[0] if isinstance(w.argnums, int) else gs

    def build():
        targs = [torch.from_numpy(np.ascontiguousarray(a)) for a in args]
        if w.training:
            w0, X, y = targs

            def call():
                return W.train(grad, w0, X, y)

        else:

            def call():
                return grad(*targs)

        return call, lambda r: tuple(t.detach().numpy() for t in W.as_tuple(r))

    return build


def peer_variants(w: W.Workload, args) -> dict:
    out = {}
    if _jax() is not None:
        out["JAX jit"] = _jax_build(w, args)
    if _torch() is not None:
        out["PyTorch eager"] = _torch_build(w, args)
    if _autograd() is not None:
        out["autograd"] = _autograd_build(w, args)
    return out
