"""Merging a loop with the taping copy its reverse mode made.

Reverse mode through a `while` or counted `loop` emits a `loop_fwd` equation:
the same loop, also recording the tape the backward loop reads. The program
then runs the forward loop twice, once for the result and once for the tape.
When both run on the same inputs, the `loop_fwd` takes the loop's place and
its results stand for the loop's: one forward loop.
"""

from __future__ import annotations

from ..core import IR, Lit, Var
from ..prims.control import loop_p, while_p
from ..prims.tape import loop_fwd_p


def _key(atoms) -> tuple:
    return tuple(a.id if type(a) is Var else a.key() if type(a) is Lit else id(a) for a in atoms)


def merge_primal_loops(ir: IR) -> IR:
    tapers = {}
    for e in ir.eqns:
        if e.prim is loop_fwd_p and e.params.get("primal") is not None:
            tapers.setdefault((e.params["primal"], _key(e.inputs)), e)
    if not tapers:
        return ir
    moved, sub, eqns = set(), {}, []
    for e in ir.eqns:
        if e.prim in (loop_p, while_p):
            key = e.params["body"].__dict__.get("_loop_key")
            t = tapers.get((key, _key(e.inputs))) if key is not None else None
            if t is not None and id(t) not in moved:
                moved.add(id(t))
                sub.update(zip(e.outvars, t.outvars[: e.params["n_carry"]]))
                eqns.append(t)
                continue
        if e.prim is loop_fwd_p and id(e) in moved:
            continue
        eqns.append(e)
    if not sub:
        return ir
    from ..core import Eqn

    out = []
    for e in eqns:
        ins = tuple(sub.get(a, a) if type(a) is Var else a for a in e.inputs)
        out.append(e if ins == e.inputs else Eqn(e.prim, ins, e.outvars, e.params, e.src, e.phase))
    outvars = [sub.get(v, v) if type(v) is Var else v for v in ir.outvars]
    return IR(ir.invars, out, outvars)
