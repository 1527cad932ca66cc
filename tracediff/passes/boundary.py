"""The program's boundary: no result shares memory with the caller's data.

A result that is a program input, a constant baked into the program, a view of
either (reshape, transpose, slice, broadcast), or that shares its buffer with
an earlier result (the same value, or a view of it) gets a `copy`, so the
caller may write into any result without changing its own arrays, the
constants of later calls, or another result. 0-d results need none: they
come back as immutable scalars.
"""

from __future__ import annotations

from ..core import IR, Atom, Eqn, Lit, Var
from ..prims.elementwise import copy_p


def fresh_outputs(ir: IR) -> IR:
    # the buffer each value may live in: a view shares its operand's buffer
    base: dict[Var, Atom] = {}
    src: dict[Var, Eqn] = {}
    for e in ir.eqns:
        for v in e.outvars:
            src[v] = e
        if e.prim.may_alias and e.inputs:
            x = e.inputs[0]
            root = x if type(x) is Lit else base.get(x, x)
            base.update((v, root) for v in e.outvars)
    external = set(ir.invars)
    eqns, outs, taken = list(ir.eqns), [], set()
    for o in ir.outvars:
        root = o if type(o) is Lit else base.get(o, o)
        key = id(root) if type(root) is Lit else root
        if o.aval.ndim > 0 and (type(root) is Lit or root in external or key in taken):
            made = src.get(o) if type(o) is Var else None
            c = Var(o.aval)
            eqns.append(Eqn(copy_p, (o,), (c,), {}, made.src if made else "", made.phase if made else ""))
            o = c
        else:
            taken.add(key)
        outs.append(o)
    if len(eqns) == len(ir.eqns):
        return ir
    return IR(ir.invars, eqns, outs)
