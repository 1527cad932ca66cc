"""The program's boundary: no result shares memory with the caller's data.

A result that is a program input, a constant baked into the program, a view of
either (reshape, transpose, slice, broadcast) or the same value as an earlier
result gets a `copy`, so the caller may write into any result without changing
its own arrays, the constants of later calls, or another result. 0-d results
need none: they come back as immutable scalars.
"""

from __future__ import annotations

from ..core import IR, Eqn, Lit, Var
from ..prims.elementwise import copy_p


def fresh_outputs(ir: IR) -> IR:
    external: set[Var] = set(ir.invars)  # values that may share memory with inputs/constants
    src: dict[Var, Eqn] = {}
    for e in ir.eqns:
        for v in e.outvars:
            src[v] = e
        if e.prim.may_alias and e.inputs:
            x = e.inputs[0]
            if type(x) is Lit or x in external:
                external.update(e.outvars)
    eqns, outs, seen = list(ir.eqns), [], set()
    for o in ir.outvars:
        if o.aval.ndim > 0 and (type(o) is Lit or o in external or o in seen):
            made = src.get(o) if type(o) is Var else None
            c = Var(o.aval)
            eqns.append(Eqn(copy_p, (o,), (c,), {}, made.src if made else "", made.phase if made else ""))
            o = c
        if type(o) is Var:
            seen.add(o)
        outs.append(o)
    if len(eqns) == len(ir.eqns):
        return ir
    return IR(ir.invars, eqns, outs)
