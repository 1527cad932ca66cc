"""Fusion: elementwise ops, the broadcasts/reshapes feeding them and the
reductions they feed become `fused` regions with several outputs.

Each compute equation gets a key (domain shape, depth). Depth grows through
non-fusable ops, through reductions (their results exist only after the
loop), and when a value crosses from one domain to another; equations with
the same key form one region. Every region then reads only values of lower
depth or of its own, so scheduling by depth is always valid, and siblings
reading the same inputs share one loop. Broadcast/reshape chains are index
maps: copied into each region that reads them, kept standalone only for
consumers outside regions.
"""

from __future__ import annotations

from collections import defaultdict

from ..core import ELEMENTWISE, IR, Eqn, Var
from ..prims import reduce as rd
from ..prims import shape as sh
from ..prims.region import fused_p

# index maps: read through inside a loop; unslice reads 0 outside its slice
INDEX_OPS = (sh.broadcast_p, sh.reshape_p, sh.unslice_p)
REDUCTIONS = (rd.reduce_sum_p, rd.reduce_max_p, rd.reduce_min_p, rd.reduce_prod_p)
STANDALONE = "standalone"


def _domain(e: Eqn):
    return e.inputs[0].aval.shape if e.prim in REDUCTIONS else e.outvars[0].aval.shape


def fuse(ir: IR) -> IR:
    eqns = ir.eqns
    depth: dict[Var, int] = defaultdict(int)
    root: dict[Var, Var] = {}  # index-op output -> the value it maps
    made_in: dict[Var, tuple] = {}  # elementwise output -> its region key
    key_of: dict[int, tuple] = {}  # eqn index -> region key (compute eqns)
    level: dict[int, int] = {}  # eqn index -> scheduling level

    def read_depth(a, domain) -> int:
        if type(a) is not Var:
            return 0
        d = depth[a]
        r = root.get(a, a)
        src = made_in.get(r)
        if src is not None and (src[0] != domain or r is not a):
            # crossing domains, or reading a loop value at another index
            # (flip, unslice): only a later region can see the whole array
            d = max(d, src[1] + 1)
        return d

    for i, e in enumerate(eqns):
        ins = [a for a in e.inputs if type(a) is Var]
        if e.prim in INDEX_OPS:
            x = e.inputs[0]
            if type(x) is Var:
                depth[e.outvars[0]] = depth[x]
                root[e.outvars[0]] = root.get(x, x)
            level[i] = depth[e.outvars[0]]
        elif e.prim.kind == ELEMENTWISE or e.prim in REDUCTIONS:
            dom = _domain(e)
            d = max((read_depth(a, dom) for a in ins), default=0)
            key_of[i] = (dom, d)
            level[i] = d
            for v in e.outvars:
                if e.prim in REDUCTIONS:
                    depth[v] = d + 1
                else:
                    depth[v] = d
                    made_in[v] = (dom, d)
        else:
            d = max((depth[a] for a in ins), default=-1) + 1
            level[i] = d
            for v in e.outvars:
                depth[v] = d

    # who needs each index op: regions (inline it) or outside consumers
    consumers: dict[Var, list[int]] = defaultdict(list)
    for i, e in enumerate(eqns):
        for a in e.inputs:
            if type(a) is Var:
                consumers[a].append(i)
    outset = {v for v in ir.outvars if type(v) is Var}
    needs: dict[int, set] = {}
    for i in reversed(range(len(eqns))):
        e = eqns[i]
        if e.prim not in INDEX_OPS:
            continue
        n = set()
        v = e.outvars[0]
        if v in outset:
            n.add(STANDALONE)
        for c in consumers[v]:
            if c in key_of:
                n.add(key_of[c])
            elif c in needs:
                n |= needs[c]
            else:
                n.add(STANDALONE)
        needs[i] = n

    members: dict[tuple, list[int]] = defaultdict(list)
    for i in range(len(eqns)):
        if i in key_of:
            members[key_of[i]].append(i)
        elif i in needs:
            for k in needs[i]:
                if k != STANDALONE:
                    members[k].append(i)

    _sink_regions(eqns, members, key_of, needs, consumers)

    def outside(v: Var, key) -> bool:
        if v in outset:
            return True
        for c in consumers[v]:
            if c in key_of:
                if key_of[c] != key:
                    return True
            elif c in needs:
                if needs[c] - {key}:
                    return True
            else:
                return True
        return False

    # schedule: per level, non-fusable ops, then regions, then standalone index ops
    slots: dict[int, list] = defaultdict(list)
    for i, e in enumerate(eqns):
        if i not in key_of and i not in needs:
            slots[level[i]].append((0, i, e))
        elif i in needs and STANDALONE in needs[i]:
            slots[level[i]].append((2, i, e))
    for key, idxs in members.items():
        idxs.sort()
        body_eqns = [eqns[i] for i in idxs]
        region = _make_region(body_eqns, key, outside)
        if region is not None:
            slots[key[1]].append((1, idxs[0], region))
    out = []
    for lv in sorted(slots):
        out.extend(e for _, _, e in sorted(slots[lv], key=lambda t: (t[0], t[1])))
    return IR(ir.invars, out, ir.outvars)


def _sink_regions(eqns, members, key_of, needs, consumers) -> None:
    """Merge a region into the one later region of its domain that reads all it
    makes (an elementwise prologue computed at a lower depth: `-y / n` before
    the matmul whose result the loss reads), so the array passes once. Only a
    region without reductions, read directly (not through an index map), moves."""
    for key in sorted(members, key=lambda k: -k[1]):
        if key not in members:
            continue
        idxs = members[key]
        if any(eqns[i].prim in REDUCTIONS for i in idxs if i in key_of):
            continue
        target, ok = None, True
        for i in idxs:
            if i not in key_of:
                continue
            for v in eqns[i].outvars:
                for c in consumers[v]:
                    ck = key_of.get(c)
                    if ck == key:
                        continue
                    if ck is None or ck[0] != key[0] or ck[1] <= key[1] or target not in (None, ck):
                        ok = False
                        break
                    target = ck
                if not ok:
                    break
            if not ok:
                break
        if not ok or target is None:
            continue
        for i in idxs:
            if i in key_of:
                key_of[i] = target
            elif i in needs:
                needs[i] = (needs[i] - {key}) | {target}
        members[target] = sorted(set(members[target]) | set(idxs))
        del members[key]


def _make_region(body_eqns: list[Eqn], key, outside) -> Eqn | None:
    defined = {v for e in body_eqns for v in e.outvars}
    inputs: list[Var] = []
    seen = set()
    for e in body_eqns:
        for a in e.inputs:
            if type(a) is Var and a not in defined and a not in seen:
                seen.add(a)
                inputs.append(a)
    outs = [v for e in body_eqns if e.prim not in INDEX_OPS for v in e.outvars if outside(v, key)]
    if not outs:
        return None
    # the body gets its own variables, so regions never share Var objects
    ren = {v: Var(v.aval) for v in inputs}
    body = []
    for e in body_eqns:
        new_outs = tuple(Var(v.aval) for v in e.outvars)
        ren.update(zip(e.outvars, new_outs))
        body.append(
            Eqn(
                e.prim,
                tuple(ren.get(a, a) if type(a) is Var else a for a in e.inputs),
                new_outs,
                e.params,
                e.src,
                e.phase,
            )
        )
    body_ir = IR([ren[v] for v in inputs], body, [ren[v] for v in outs])
    domain = "x".join(map(str, key[0])) or "scalar"
    phases = {e.phase for e in body_eqns}
    phase = phases.pop() if len(phases) == 1 else "fwd+bwd"
    src = next((e.src for e in body_eqns if e.src), "")
    return Eqn(fused_p, tuple(inputs), tuple(outs), {"body": body_ir, "name": f"loop_{domain}"}, src, phase)
