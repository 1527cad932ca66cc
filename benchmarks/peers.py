"""Optional peer rows: JAX (jit), PyTorch (eager), HIPS autograd.

Each peer is used only when it imports; none is ever required. JAX and
autograd run the workload's own function with `np` rebound to `jax.numpy` /
`autograd.numpy` (the same source text); PyTorch needs torch calls, written
out below. Where the source cannot run as written:

- W9 (a `while` on values): PyTorch and autograd run it as written. JAX cannot
  trace the `while`/`if` on values, and it cannot differentiate
  `lax.while_loop` in reverse mode, so its W9 is a fixed-length `lax.scan`
  whose steps after t reaches 5 are masked (dt = 0); the length is this data's
  trip count rounded up to a power of two, and the masked steps are computed.
- W10 (in-place stores): autograd cannot assign into arrays, so it has no W10
  row (n/a). JAX's W10 uses `.at[].set()` and `lax.fori_loop`. PyTorch's keeps
  the per-element Python loops with lists of 0-d tensors: in-place stores
  into `cp`/`dp`/`x` would make the backward pass fail, since each store
  invalidates the views of earlier elements saved for it.

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


def w9_steps(p0, v0, k) -> int:
    """The trip count of W9's `while` on this data (NumPy)."""
    p, v, t, steps = p0, v0, 0.0, 0
    while t < 5.0:
        a = -k * p - 0.1 * v * np.abs(v)
        dt = 0.5 / (1.0 + np.max(np.abs(a)))
        if t + dt > 5.0:
            dt = 5.0 - t
        v = v + dt * a
        p = p + dt * v
        t = t + dt
        steps += 1
    return steps


# --- JAX ---------------------------------------------------------------------------------------


def _jax_fn(w: W.Workload, args, jax, jnp):
    """The function JAX differentiates: `w.fn` with `np` bound to `jax.numpy`, or,
    for W9 and W10, whose source JAX cannot trace as written, a rewrite."""
    lax = jax.lax
    if w.id == "W9":
        length = 1 << (w9_steps(*args) - 1).bit_length()  # the trip count, rounded up

        def w9(p0, v0, k):
            def step(carry, _):
                p, v, t = carry
                a = -k * p - 0.1 * v * jnp.abs(v)
                dt = 0.5 / (1.0 + jnp.max(jnp.abs(a)))
                dt = jnp.where(t + dt > 5.0, 5.0 - t, dt)
                dt = jnp.where(t < 5.0, dt, 0.0)  # the loop has ended: a masked step
                v = v + dt * a
                p = p + dt * v
                return (p, v, t + dt), None

            (p, v, _), _ = lax.scan(step, (p0, v0, jnp.zeros((), p0.dtype)), None, length=length)
            return jnp.sum(p * p) + 0.5 * jnp.sum(v * v)

        return w9
    if w.id == "W10":

        def w10(a, b, c, d):
            n = d.shape[0]
            cp = jnp.zeros(n, d.dtype).at[0].set(c[0] / b[0])
            dp = jnp.zeros(n, d.dtype).at[0].set(d[0] / b[0])

            def sweep(i, s):
                cp, dp = s
                m = b[i] - a[i] * cp[i - 1]
                return cp.at[i].set(c[i] / m), dp.at[i].set((d[i] - a[i] * dp[i - 1]) / m)

            cp, dp = lax.fori_loop(1, n, sweep, (cp, dp))
            x = jnp.zeros(n, d.dtype).at[n - 1].set(dp[n - 1])

            def back(j, x):
                i = n - 2 - j
                return x.at[i].set(dp[i] - cp[i] * x[i + 1])

            x = lax.fori_loop(0, n - 1, back, x)
            return jnp.sum(x * x)

        return w10
    return _rebind(w.fn, jnp)


def _jax_build(w: W.Workload, args):
    jax, jnp = _jax()

    def build():
        grad = jax.jit(jax.grad(_jax_fn(w, args, jax, jnp), argnums=w.argnums))
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
        if w.id == "W10":
            raise NotImplementedError("autograd cannot differentiate in-place array assignment")
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

    def w9(p0, v0, k):
        p, v, t = p0, v0, 0.0
        while t < 5.0:
            a = -k * p - 0.1 * v * torch.abs(v)
            dt = 0.5 / (1.0 + torch.max(torch.abs(a)))
            if t + dt > 5.0:
                dt = 5.0 - t
            v = v + dt * a
            p = p + dt * v
            t = t + dt
        return torch.sum(p * p) + 0.5 * torch.sum(v * v)

    def w10(a, b, c, d):
        n = d.shape[0]
        a, b, c, d = a.unbind(), b.unbind(), c.unbind(), d.unbind()  # 0-d tensors
        cp = [c[0] / b[0]]
        dp = [d[0] / b[0]]
        for i in range(1, n):
            m = b[i] - a[i] * cp[i - 1]
            cp.append(c[i] / m)
            dp.append((d[i] - a[i] * dp[i - 1]) / m)
        x = [dp[n - 1]] * n
        for i in range(n - 2, -1, -1):
            x[i] = dp[i] - cp[i] * x[i + 1]
        x = torch.stack(x)
        return torch.sum(x * x)

    def w12(P, w):
        d2 = torch.sum((P[:, None, :] - P[None, :, :]) ** 2, dim=-1)
        return torch.sum(w[:, None] * w[None, :] * torch.exp(-d2 / 0.1))

    def w13(Q, K, V, T):
        loss = 0.0
        for h in range(4):
            S = Q[h] @ K[h].T / 8.0
            S = S - S.amax(-1, keepdim=True)
            A = torch.exp(S)
            A = A / A.sum(-1, keepdim=True)
            O = A @ V[h]  # noqa: E741  (the name of the WORKLOADS.md program)
            loss = loss + torch.sum((O - T[h]) ** 2)
        return loss

    return {"W1": w1, "W2": w2, "W3": w3, "W4": w4, "W6": w6, "W9": w9, "W10": w10, "W12": w12, "W13": w13}


def _torch_build(w: W.Workload, args):
    torch = _torch()
    fn = _torch_fns(torch)[w.id]
    nums = w.nums

    def grad(*targs):
        leaves = [t.detach().requires_grad_(i in nums) for i, t in enumerate(targs)]
        gs = torch.autograd.grad(fn(*leaves), [leaves[i] for i in nums])
        return gs[0] if isinstance(w.argnums, int) else gs

    def build():
        targs = [torch.from_numpy(np.array(a, order="C", copy=True)) for a in args]  # 0-d stays 0-d
        if w.training:
            w0, X, y = targs

            def call():
                return W.train(grad, w0, X, y)

        else:

            def call():
                return grad(*targs)

        return call, lambda r: tuple(t.detach().numpy() for t in W.as_tuple(r))

    return build


_PEERS = {
    "JAX jit": (_jax, _jax_build),
    "PyTorch eager": (_torch, _torch_build),
    "autograd": (_autograd, _autograd_build),
}


def peer_variants(w: W.Workload, args, names=None) -> dict:
    """{name: build} of the peers that import; `names`: only these (and only these
    are imported: run.py's fresh-process memory measurement wants one library)."""
    out = {}
    for name, (load, make) in _PEERS.items():
        if (names is None or name in names) and load() is not None:
            out[name] = make(w, args)
    return out
