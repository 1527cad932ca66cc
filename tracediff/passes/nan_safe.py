"""NaN-safe selects: `np.where(c, f(x), b)` whose untaken side has an infinite
derivative (`sqrt`, `log` or a division at 0, `arcsin` at 1...) gives a NaN
gradient in every reverse-mode system: the select sends a zero cotangent to the
untaken positions and the rule of `f` multiplies it by infinity.

The values a select discards are computed by its *exclusive cone*: the
elementwise equations of the select's shape whose results reach nothing but
that side of the select. Position i of the cone only reaches position i of the
select, so the exact cotangent of every value entering the cone is zero
wherever the side is not taken. `guard_selects` makes the gradient say so: each
value entering a cone that holds an operation with a possibly infinite
derivative is read through `select(c, x, stop_gradient(x))` (the identity,
whose VJP is `where(c, ct, 0)`), so a NaN made inside the cone's adjoint never
leaves it. Forward values do not change. This is JAX's "double where" done by
the compiler, without a per-operation safe value.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
from dataclasses import dataclass

from ..core import ELEMENTWISE, IR, REGISTRY, Eqn, Var

# rewrite the selects of every program reverse mode differentiates (td.jit(nan_safe=True))
NAN_SAFE: contextvars.ContextVar[bool] = contextvars.ContextVar("tracediff_nan_safe", default=False)

# elementwise operations whose derivative is bounded by a constant: a cone of only
# these cannot make a NaN out of a zero cotangent
LINEAR = frozenset({"add", "sub", "neg", "select", "convert", "copy", "abs", "real", "imag", "conj"})


@contextlib.contextmanager
def nan_safe(on: bool = True):
    """Reverse mode differentiates NaN-safe selects inside the block."""
    token = NAN_SAFE.set(on)
    try:
        yield
    finally:
        NAN_SAFE.reset(token)


@dataclass
class Cone:
    """The equations computing one side of a select and nothing else."""

    select: Eqn
    side: int  # 1: the value taken where the condition holds; 2: where it does not
    eqns: list[Eqn]  # in program order
    entries: list[Var]  # float values read by the cone and made outside it

    @property
    def risky(self) -> list[Eqn]:
        """Its operations whose derivative may be infinite."""
        return [e for e in self.eqns if e.prim.name not in LINEAR]


def _uses(ir: IR) -> dict[Var, list[tuple[Eqn | None, int]]]:
    uses: dict[Var, list[tuple[Eqn | None, int]]] = {}
    for e in ir.eqns:
        for k, a in enumerate(e.inputs):
            if type(a) is Var:
                uses.setdefault(a, []).append((e, k))
    for v in ir.outvars:
        if type(v) is Var:
            uses.setdefault(v, []).append((None, -1))
    return uses


def select_cones(ir: IR) -> list[Cone]:
    """The exclusive cone of each side of each top-level select (sides that are
    computed elsewhere too have an empty cone and are left out)."""
    uses = _uses(ir)
    index = {id(e): i for i, e in enumerate(ir.eqns)}
    cones = []
    for s in ir.eqns:
        if s.prim.name != "select":
            continue
        shape = s.outvars[0].aval.shape
        for side in (1, 2):
            a = s.inputs[side]
            if type(a) is not Var or not a.aval.is_inexact:
                continue
            members: set[int] = set()
            ok_uses = {(id(s), side)}
            for i in range(index[id(s)] - 1, -1, -1):
                e = ir.eqns[i]
                if not (
                    e.prim.kind == ELEMENTWISE
                    and e.prim.differentiable
                    and e.prim.name != "stop_gradient"
                    and all(v.aval.shape == shape for v in e.outvars)
                ):
                    continue
                us = [u for v in e.outvars for u in uses.get(v, ())]
                if us and all(u[0] is not None and (id(u[0]), u[1]) in ok_uses for u in us):
                    members.add(i)
                    ok_uses.update((id(e), k) for k in range(len(e.inputs)))
            if not members:
                continue
            eqns = [ir.eqns[i] for i in sorted(members)]
            made = {v for e in eqns for v in e.outvars}
            entries: list[Var] = []
            for e in eqns:
                for x in e.inputs:
                    if type(x) is Var and x.aval.is_inexact and x not in made and x not in entries:
                        entries.append(x)
            cones.append(Cone(s, side, eqns, entries))
    return cones


def guard_selects(ir: IR) -> IR:
    """`ir` with the entries of every risky select cone read through a masking
    identity (see the module's text); `ir` itself where no cone is risky.

    A member of nested selects' cones reads its entry through each cone's mask in
    turn. Members move after the masks (and so after their conditions): they
    feed nothing but their select, so the program is re-ordered topologically,
    keeping the original order wherever it is free.
    """
    cones = [c for c in select_cones(ir) if c.risky and c.entries]
    if not cones:
        return ir
    select_p, stop_p = REGISTRY["select"], REGISTRY["stop_gradient"]
    member_of: dict[int, list[Cone]] = {}
    for c in cones:
        for m in c.eqns:
            member_of.setdefault(id(m), []).append(c)
    masks: dict[tuple[int, Var], Var] = {}
    added: list[tuple[int, Eqn]] = []  # (position of the first reader, mask equation)

    def masked(c: Cone, x: Var, pos: int) -> Var:
        key = (id(c), x)
        if key not in masks:
            s = c.select
            held, out = Var(x.aval), Var(x.aval)
            taken, untaken = (x, held) if c.side == 1 else (held, x)
            added.append((pos, Eqn(stop_p, (x,), (held,), {}, s.src, s.phase)))
            added.append((pos, Eqn(select_p, (s.inputs[0], taken, untaken), (out,), {}, s.src, s.phase)))
            masks[key] = out
        return masks[key]

    eqns: list[tuple[int, Eqn]] = []
    for pos, e in enumerate(ir.eqns):
        inside = member_of.get(id(e))
        if inside:
            ins = []
            for a in e.inputs:
                read = a
                for c in inside:
                    if type(a) is Var and a in c.entries:
                        read = masked(c, read, pos)
                ins.append(read)
            e = Eqn(e.prim, tuple(ins), e.outvars, e.params, e.src, e.phase)
        eqns.append((pos, e))
    return IR(ir.invars, _topological(eqns + added), ir.outvars)


def _topological(eqns: list[tuple[int, Eqn]]) -> list[Eqn]:
    """The equations in an order where each follows what it reads, as close to
    their given positions as that allows."""
    maker = {v: k for k, (_, e) in enumerate(eqns) for v in e.outvars}
    waiting = [0] * len(eqns)
    readers: dict[int, list[int]] = {}
    for k, (_, e) in enumerate(eqns):
        deps = {maker[a] for a in e.inputs if type(a) is Var and a in maker}
        waiting[k] = len(deps)
        for d in deps:
            readers.setdefault(d, []).append(k)
    ready = [(pos, k) for k, (pos, _) in enumerate(eqns) if not waiting[k]]
    heapq.heapify(ready)
    out = []
    while ready:
        _, k = heapq.heappop(ready)
        out.append(eqns[k][1])
        for r in readers.get(k, ()):
            waiting[r] -= 1
            if not waiting[r]:
                heapq.heappush(ready, (eqns[r][0], r))
    assert len(out) == len(eqns), "guard_selects: the program has a cycle"
    return out
