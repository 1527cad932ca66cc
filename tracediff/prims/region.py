"""`fused`: a region of elementwise ops, the index maps (broadcast/reshape)
that feed them and the reductions they feed, held as a nested IR `body`.

One region becomes one loop nest in a compiled backend; the interpreter runs
its body with NumPy, block by block of its leading axis where it can (blocked.py). Its VJP differentiates the body inline, so optimized
programs stay differentiable.
"""

from __future__ import annotations

from ..core import REGION, Primitive

fused_p = Primitive("fused", REGION, nout=-1)


@fused_p.def_abstract
def _fused_abstract(*avals, body, name):
    if len(avals) != len(body.invars):
        raise TypeError(f"fused {name}: {len(avals)} inputs for a body of {len(body.invars)}")
    for a, v in zip(avals, body.invars):
        if a.shape != v.aval.shape or a.dtype != v.aval.dtype:
            raise TypeError(f"fused {name}: input {a} does not match body input {v.aval}")
    return body.out_avals


@fused_p.def_impl
def _fused_impl(*args, body, name):
    from .. import blocked

    key = f"_interpreter_{blocked.BLOCK}"  # (a runner per block size: tests set small ones)
    run = body.__dict__.get(key)
    if run is None:
        from ..interpret import Interpreter

        run = body.__dict__[key] = blocked.plan(body) or Interpreter(body)
    return run(*args)


@fused_p.def_vjp
def _fused_vjp(cts, ans, *ins, body, name):
    from ..ad import backward_pass

    wrt = [v.aval.is_inexact for v in body.invars]
    _, grads = backward_pass(body, ins, cts, wrt)
    it = iter(grads)
    return [next(it) if w else None for w in wrt]


@fused_p.def_batch
def _fused_batch(args, dims, size, *, body, name):
    from ..batching import batch_region, front_all
    from ..builder import bind

    in_b = [d is not None for d in dims]
    ops = front_all(args, dims, size, [False] * len(args))
    body_b = batch_region(body, in_b, size, force=True)[0]
    return bind(fused_p, *ops, body=body_b, name=name), [0] * len(body.outvars)
