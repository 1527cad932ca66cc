"""Dead-code elimination: drop equations whose outputs nobody reads."""

from __future__ import annotations

from ..core import IR, Var


def dce(ir: IR) -> IR:
    live = {v for v in ir.outvars if type(v) is Var}
    kept = []
    for e in reversed(ir.eqns):
        if any(v in live for v in e.outvars):
            kept.append(e)
            live.update(a for a in e.inputs if type(a) is Var)
    kept.reverse()
    if len(kept) == len(ir.eqns):
        return ir
    return IR(ir.invars, kept, ir.outvars)
