"""Inlining: a `custom_vjp_call` becomes its body once no derivative needs the
rule any more, so the optimizer fuses across it like any other code."""

from __future__ import annotations

from ..core import IR, REGION, Eqn, Var
from ..prims.control import regions
from ..prims.custom import checkpoint_p, custom_jvp_call_p, custom_vjp_call_p

CUSTOM = (custom_vjp_call_p, custom_jvp_call_p, checkpoint_p)


def inline_custom(ir: IR) -> IR:
    """`ir` with every `custom_vjp_call` replaced by its body (in regions too)."""
    if not _has_custom(ir):
        return ir
    env: dict[Var, object] = {}

    def sub(a):
        return env.get(a, a) if type(a) is Var else a

    eqns: list[Eqn] = []
    for e in ir.eqns:
        if e.prim in CUSTOM:
            body = inline_custom(e.params["body"])
            ren: dict[Var, object] = {v: sub(a) for v, a in zip(body.invars, e.inputs)}
            for be in body.eqns:
                outs = tuple(Var(v.aval) for v in be.outvars)
                ren.update(zip(be.outvars, outs))
                ins = tuple(ren.get(a, a) if type(a) is Var else a for a in be.inputs)
                eqns.append(Eqn(be.prim, ins, outs, be.params, be.src or e.src, be.phase or e.phase))
            for o, bo in zip(e.outvars, body.outvars):
                env[o] = ren.get(bo, bo) if type(bo) is Var else bo
            continue
        params = e.params
        if e.prim.kind == REGION:
            params = {k: _inline_param(v) for k, v in params.items()}
        eqns.append(Eqn(e.prim, tuple(sub(a) for a in e.inputs), e.outvars, params, e.src, e.phase))
    return IR(ir.invars, eqns, [sub(o) for o in ir.outvars])


def _inline_param(v):
    if isinstance(v, IR):
        return inline_custom(v)
    if isinstance(v, tuple) and v and all(isinstance(x, IR) for x in v):
        return tuple(inline_custom(x) for x in v)
    return v


def _has_custom(ir: IR) -> bool:
    for e in ir.eqns:
        if e.prim in CUSTOM:
            return True
        if e.prim.kind == REGION and any(_has_custom(r) for r in regions(e.params)):
            return True
    return False
