"""Region groups: consecutive fused regions whose domains share leading axes
become one loop nest on the CPU.

`np.sum(w[:, None] * w[None, :] * np.exp(-d2))` with `d2` a sum over the last
axis of an (N, N, 2) array is three regions after fusion (the (N, N, 2) loop
reducing into d2, the (N, N) loop reading it, and the backward's (N, N, 2)
loop), and each hands the next an N x N array. Over a shared prefix (N, N)
they run as one nest instead: for each (i0, i1), the first region's inner
loop, then the second's statements, then the third's inner loop. A value one
member makes and only later members read, at the same prefix index, is then
never an N x N array: it is a scalar, or a small buffer over the axes past the
prefix, per chunk of the parallel loop (`scratch`).

Which regions may join (`form_groups`): the domains share the group's prefix;
a member reads another's value only if that value is complete for each prefix
index (made elementwise, or reduced over axes past the prefix only); and it
reads it at the very prefix index (checked while the member's loads are
lowered: anything else falls back to separate loop nests). Equations between
members that no later member reads are moved after the group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...core import IR, Eqn, Var
from ...prims.region import fused_p
from ..base import REDUCTIONS

MAX_DEFERRED = 8  # equations moved past a group (keeps the schedule close to the optimizer's)


class NotGroupable(Exception):
    """A member reads a value of the group at another prefix index."""


class WriterMarker:
    """What stands for an IR primitive in the writer's equation list where the CPU
    writer lowers several equations as one (`op_<name>`): a group, a placed sum."""

    may_alias = False
    call: dict = {}
    imports: dict = {}

    def __init__(self, name: str):
        self.name = self.kind = name


GROUP = WriterMarker("region_group")


@dataclass
class Group:
    """Looks like an equation to the walk: inputs, outputs read after it, members."""

    members: list[Eqn]
    prefix: int
    inputs: tuple
    outvars: tuple
    scratch: set = field(default_factory=set)  # member outputs only later members read
    made: set = field(default_factory=set)  # every member output
    prim: WriterMarker = GROUP
    src: str = ""
    phase: str = "fwd"

    @property
    def params(self) -> dict:
        return {}


def region_domain(body: IR) -> tuple:
    from ..lower import MAPS

    first = next(e for e in body.eqns if e.prim not in MAPS)
    return tuple(first.inputs[0].aval.shape if first.prim in REDUCTIONS else first.outvars[0].aval.shape)


def _made_at(e: Eqn) -> dict[Var, int]:
    """For each output of region `e`: the first domain axis it is reduced over
    (rank: not reduced, an elementwise value; -1: reduced over axes that are not
    the last ones, its array is filled only after the loops)."""
    body = e.params["body"]
    rank = len(region_domain(body))
    by_body = {}
    for be in body.eqns:
        for v in be.outvars:
            if be.prim in REDUCTIONS:
                axes = tuple(be.params["axes"])
                k = min(axes)
                by_body[v] = k if axes == tuple(range(k, rank)) else -1
            else:
                by_body[v] = rank
    return {ov: by_body.get(bv, rank) for bv, ov in zip(body.outvars, e.outvars)}


def form_groups(eqns: list, outvars) -> list:
    """`eqns` with runs of joinable regions replaced by `Group`s."""
    readers: dict[Var, list[int]] = {}
    for j, e in enumerate(eqns):
        for a in e.inputs:
            if type(a) is Var:
                readers.setdefault(a, []).append(j)
    final = {v for v in outvars if type(v) is Var}
    out, i, n = [], 0, len(eqns)
    while i < n:
        e = eqns[i]
        if e.prim is not fused_p or len(region_domain(e.params["body"])) == 0:
            out.append(e)
            i += 1
            continue
        dom = region_domain(e.params["body"])
        members, member_idx = [e], [i]
        made = dict(_made_at(e))  # value -> first reduced axis
        deferred, deferred_outs = [], set()
        p = None
        j = i + 1
        while j < n and len(deferred) <= MAX_DEFERRED:
            c = eqns[j]
            ins = [a for a in c.inputs if type(a) is Var]
            joins = c.prim is fused_p and not any(a in deferred_outs for a in ins)
            if joins:
                # the prefix: the leading axes shared, and no deeper than the first
                # reduced axis of any group value this member reads (a row maximum
                # feeds its row's next loop at prefix (rows,)); narrowing it keeps the
                # earlier members' reads valid
                d = region_domain(c.params["body"])
                q = 0
                while q < min(len(d), len(dom)) and d[q] == dom[q]:
                    q += 1
                q = min([q] + [made[a] for a in ins if a in made] + ([p] if p is not None else []))
                joins = q >= 1
                if joins:
                    p = q
            if joins:
                members.append(c)
                member_idx.append(j)
                made.update(_made_at(c))
            else:
                deferred.append(c)
                deferred_outs.update(c.outvars)
            j += 1
        if len(members) < 2:
            out.append(e)
            i += 1
            continue
        # the run ends at the last member: what was deferred after it stays where it was
        last = member_idx[-1]
        deferred = [eqns[k] for k in range(i + 1, last + 1) if k not in set(member_idx)]
        inside = set(member_idx)
        outs, scratch = [], set()
        for v in made:
            if v in final or any(r not in inside for r in readers.get(v, ())):
                outs.append(v)
            else:
                scratch.add(v)
        ins: dict = {}
        for m in members:
            for a in m.inputs:
                if type(a) is Var and a not in made:
                    ins[a] = None
        out.append(Group(members, p, tuple(ins), tuple(outs), scratch, set(made), src=e.src, phase=e.phase))
        out.extend(deferred)
        i = last + 1
    return out
