"""Merging a loop with the taping copy its reverse mode made.

Reverse mode through a `while`, a counted `loop` or a `scan` emits a taping
`scan`: the same loop, also recording the tape the backward loop reads. The
program would then run the forward loop twice, once for the result and once for
the tape. When both run on the same inputs, the taping scan takes the loop's
place and its first results stand for the loop's: one forward loop.
"""

from __future__ import annotations

import numpy as np

from ..core import IR, Eqn, Lit, Var
from ..prims.control import loop_p, while_p
from ..prims.scan import scan_p


def _key(atoms) -> tuple:
    return tuple(a.id if type(a) is Var else a.key() if type(a) is Lit else id(a) for a in atoms)


def merge_primal_loops(ir: IR) -> IR:
    tapers = {}
    for e in ir.eqns:
        if e.prim is scan_p and e.params.get("primal") is not None:
            tapers.setdefault((e.params["primal"], _key(e.inputs)), e)
    if not tapers:
        return ir
    moved, sub, eqns = set(), {}, []
    for e in ir.eqns:
        if e.prim in (loop_p, while_p, scan_p) and id(e) not in moved:
            key = e.params["body"].__dict__.get("_loop_key")
            t = tapers.get((key, _key(e.inputs))) if key is not None else None
            if t is not None and t is not e and id(t) not in moved:
                moved.add(id(t))
                sub.update(zip(e.outvars, t.outvars[: len(e.outvars)]))
                eqns.append(t)
                continue
        if e.prim is scan_p and id(e) in moved:
            continue
        eqns.append(e)
    if not sub:
        return ir
    out = []
    for e in eqns:
        ins = tuple(sub.get(a, a) if type(a) is Var else a for a in e.inputs)
        out.append(e if ins == e.inputs else Eqn(e.prim, ins, e.outvars, e.params, e.src, e.phase))
    outvars = [sub.get(v, v) if type(v) is Var else v for v in ir.outvars]
    return IR(ir.invars, out, outvars)


# --- pruning ---------------------------------------------------------------------------


def _reads(region: IR, outs: list) -> set:
    """The variables of `region` that computing `outs` reads (inputs included)."""
    from .dce import dce

    live = dce(IR(region.invars, region.eqns, outs))
    got = {a for e in live.eqns for a in e.inputs if type(a) is Var}
    return got | {o for o in outs if type(o) is Var}


def _layout(e: Eqn):
    """(lead inputs of the body, xs, carry, ys, whether there is a count output,
    whether the first operand is a count)."""
    p = e.params
    if e.prim is scan_p:
        n_ys = len(p["body"].outvars) - p["n_carry"]
        dyn = p["length"] is None and p["cond"] is None
        return p["n_counter"], p["n_xs"], p["n_carry"], n_ys, True, dyn
    return (1 if e.prim is loop_p else 0), 0, p["n_carry"], 0, False, False


def _prune(e: Eqn, used: set) -> Eqn | None:
    """The loop without the carried values nobody needs (neither a later equation nor
    the loop itself for what is needed), the ys nobody reads and the inputs its
    regions do not read; None when nothing goes."""
    lead, n_xs, nc, n_ys, has_count, dyn = _layout(e)
    body, cond = e.params["body"], e.params.get("cond")
    c0 = lead + n_xs
    n_consts = len(body.invars) - c0 - nc
    live = {j for j in range(nc) if e.outvars[j] in used}
    ys = [j for j in range(n_ys) if e.outvars[nc + 1 + j] in used]
    test_reads = _reads(cond, list(cond.outvars)) if cond is not None else set()
    live |= {j for j in range(nc) if cond is not None and cond.invars[j] in test_reads}
    while True:
        reads = _reads(body, [body.outvars[j] for j in sorted(live)] + [body.outvars[nc + j] for j in ys])
        more = {j for j in range(nc) if body.invars[c0 + j] in reads} - live
        if not more:
            break
        live |= more
    carry = sorted(live)
    xs = [j for j in range(n_xs) if body.invars[lead + j] in reads]
    consts = [
        j
        for j in range(n_consts)
        if body.invars[c0 + nc + j] in reads or (cond is not None and cond.invars[nc + j] in test_reads)
    ]
    if len(carry) == nc and len(ys) == n_ys and len(xs) == n_xs and len(consts) == n_consts:
        return None
    from .dce import dce

    ins = body.invars
    new_body = dce(
        IR(
            ins[:lead]
            + [ins[lead + j] for j in xs]
            + [ins[c0 + j] for j in carry]
            + [ins[c0 + nc + j] for j in consts],
            body.eqns,
            [body.outvars[j] for j in carry] + [body.outvars[nc + j] for j in ys],
        )
    )
    params = dict(e.params, body=new_body, n_carry=len(carry))
    if cond is not None:
        params["cond"] = IR(
            [cond.invars[j] for j in carry] + [cond.invars[nc + j] for j in consts], cond.eqns, cond.outvars
        )
    if e.prim is scan_p:
        params["n_xs"] = len(xs)
    ops = list(e.inputs)
    head = ops[:1] if dyn else []
    ops = ops[1:] if dyn else ops
    inputs = (
        head + [ops[j] for j in xs] + [ops[n_xs + j] for j in carry] + [ops[n_xs + nc + j] for j in consts]
    )
    outs = [e.outvars[j] for j in carry]
    if has_count:
        outs += [e.outvars[nc]] + [e.outvars[nc + 1 + j] for j in ys]
    return Eqn(e.prim, tuple(inputs), tuple(outs), params, e.src, e.phase)


def prune_loops(ir: IR) -> IR:
    """Drop what a loop computes for nobody: dead carried values (the sums of a
    constant's cotangents in a forward-mode program, say), unread ys and unread inputs."""
    used = {a for e in ir.eqns for a in e.inputs if type(a) is Var} | {
        v for v in ir.outvars if type(v) is Var
    }
    eqns, changed, sub = [], False, {}
    for e in ir.eqns:
        if sub:
            e = Eqn(
                e.prim,
                tuple(sub.get(a, a) if type(a) is Var else a for a in e.inputs),
                e.outvars,
                e.params,
                e.src,
                e.phase,
            )
        if e.prim in (loop_p, while_p, scan_p):
            new = _prune(e, used)
            if new is not None:
                e, changed = new, True
            p = e.params
            if e.prim is scan_p and p["cond"] is None and len(e.outvars) == 1:  # it only counts
                n = p["length"]
                sub[e.outvars[0]] = e.inputs[0] if n is None else Lit(np.int64(n))
                continue
        eqns.append(e)
    if not changed:
        return ir
    from .dce import dce

    outvars = [sub.get(v, v) if type(v) is Var else v for v in ir.outvars]
    return dce(IR(ir.invars, eqns, outvars))


# --- loop-invariant code motion ----------------------------------------------------------

_NEVER_HOISTED = {"broadcast", "index_check"}  # a broadcast is fused where it is read


def _worth_hoisting(e: Eqn) -> bool:
    from ..core import CONTRACTION, ELEMENTWISE, REDUCTION, REGION, SHAPE

    p = e.prim
    if p.kind == REGION or p.name in _NEVER_HOISTED:
        return False
    if any(o.aval.dtype.kind in p.raises_for for o in e.outvars):
        return False  # it may raise: not before a loop that might not run
    if p.kind in (REDUCTION, CONTRACTION):
        return True
    if all(o.aval.size == 1 for o in e.outvars):
        # scalar arithmetic is cheap where it is, and moved out it changes how the
        # body fuses (measured: W9's gradient 40% slower)
        return False
    return p.kind == SHAPE or (p.kind == ELEMENTWISE and p.cost > 1)


def _hoist(e: Eqn) -> tuple[list[Eqn], Eqn] | None:
    """(the equations of e's body that depend on loop invariants only, moved before
    the loop, and the loop reading their results as invariants), or None."""
    lead, n_xs, nc, _, _, dyn = _layout(e)
    body, cond = e.params["body"], e.params.get("cond")
    c0 = lead + n_xs
    k0 = c0 + nc
    ops = list(e.inputs[1:] if dyn else e.inputs)
    outer = dict(zip(body.invars[k0:], ops[n_xs + nc :]))  # body invariant -> loop operand
    moved, kept = [], []
    for q in body.eqns:
        if _worth_hoisting(q) and all(type(a) is not Var or a in outer for a in q.inputs):
            ins = tuple(outer[a] if type(a) is Var else a for a in q.inputs)
            outs = tuple(Var(o.aval) for o in q.outvars)
            moved.append(Eqn(q.prim, ins, outs, q.params, q.src, q.phase))
            outer.update(zip(q.outvars, outs))
        else:
            kept.append(q)
    if not moved:
        return None
    reads = {a for q in kept for a in q.inputs if type(a) is Var} | {
        v for v in body.outvars if type(v) is Var
    }
    new = [v for q in moved for v in q.outvars]
    inner = {outer[v]: v for v in outer}  # moved result -> its variable in the body
    new_inv = [inner[v] for v in new if inner[v] in reads]
    params = dict(e.params)
    params["body"] = IR(list(body.invars) + new_inv, kept, list(body.outvars))
    if cond is not None:  # the test takes the loop's operands too
        params["cond"] = IR(list(cond.invars) + [Var(v.aval) for v in new_inv], cond.eqns, cond.outvars)
    inputs = tuple(e.inputs) + tuple(outer[v] for v in new_inv)
    return moved, Eqn(e.prim, inputs, e.outvars, params, e.src, e.phase)


def hoist_invariants(ir: IR) -> IR:
    """Loop-invariant code motion: what a loop body computes from the loop's
    invariants only (a reduction, a product, a transcendental function or a
    transpose of an invariant array) is computed once, before the loop."""
    eqns, changed = [], False
    for e in ir.eqns:
        if e.prim in (loop_p, while_p, scan_p):
            got = _hoist(e)
            if got is not None:
                moved, e = got
                eqns += moved
                changed = True
        eqns.append(e)
    return IR(ir.invars, eqns, ir.outvars) if changed else ir
