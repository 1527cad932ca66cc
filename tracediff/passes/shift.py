"""Max-shifts that cannot change a result: `m = S.max(axis)` subtracted for
numerical safety, as in the stable softmax `e = exp(S - m); e / e.sum(axis)`
and log-sum-exp `m + log(sum(exp(S - m)))`.

Such a result F(S, m) is the same for every m constant along the reduced axes,
so its derivative through m is exactly zero, and the gradient is the one with
`stop_gradient(m)` (what JAX's `softmax` writes by hand). Differentiating
through the max instead costs a tie mask, a count of ties, a division and a
row sum per reduction, and adds a term that is zero up to rounding.

`stop_invariant_shifts` proves the invariance by following m through the
program with a small algebra: a value is `base + k*m` (additive, k an integer)
or `base * exp(m)**k` (multiplicative); subtraction and addition add the
coefficients, exp and log switch between the two kinds, products and
quotients add and subtract exponents, and sums (maxima) over the reduced axes
keep a multiplicative (additive) coefficient. A value with k = 0 no longer
depends on m. If every use of m ends in such values before anything else reads
it, m is read through a stop_gradient.
"""

from __future__ import annotations

import heapq

from ..core import IR, REGISTRY, Eqn, Var

ADD, MUL = "add", "mul"


def _rule(e: Eqn, tags: dict, axes: tuple, row_shapes: set, full: tuple):
    """The tag of e's output from its inputs' tags, or False where the algebra
    does not follow (the shift may then change the result)."""
    name = e.prim.name
    ins = [tags.get(a) if type(a) is Var else None for a in e.inputs]
    out = e.outvars[0].aval.shape if e.outvars else None
    kinds = {t[0] for t in ins if t is not None}
    if len(e.outvars) != 1 or len(kinds) > 1:
        return False
    kind = kinds.pop()
    ks = [t[1] if t is not None else 0 for t in ins]
    if name in ("reshape", "convert", "copy"):
        shape_in = e.inputs[0].aval.shape
        ok = shape_in == out or (shape_in in row_shapes and out in row_shapes)
        return (kind, ks[0]) if ok else False
    if name == "broadcast":
        # a kept-dims row value over the full shape: NumPy's alignment is the rows'
        keep = tuple(1 if i in axes else d for i, d in enumerate(full))
        return (kind, ks[0]) if e.inputs[0].aval.shape == keep and out == full else False
    if name in ("add", "sub") and kind == ADD:
        return (ADD, ks[0] + ks[1] if name == "add" else ks[0] - ks[1])
    if name == "neg":
        return (kind, -ks[0]) if kind == ADD else (MUL, ks[0])
    if name == "exp" and kind == ADD:
        return (MUL, ks[0])
    if name == "log" and kind == MUL:
        return (ADD, ks[0])
    if name in ("mul", "div") and kind == MUL:
        return (MUL, ks[0] + ks[1] if name == "mul" else ks[0] - ks[1])
    if name in ("reduce_sum", "reduce_max") and tuple(e.params.get("axes", ())) == axes:
        if e.inputs[0].aval.shape != full:
            return False
        if (name == "reduce_sum") == (kind == MUL):  # sums keep factors, maxima keep offsets
            return (kind, ks[0])
    return False


def _invariant(ir: IR, start: int, readers: dict[Var, list[int]]) -> bool:
    """Whether everything computed from the max of equation `start` stops
    depending on it (see the module's text). Follows the max's readers only, in
    program order (so each equation sees its inputs' final tags)."""
    e = ir.eqns[start]
    m = e.outvars[0]
    full = e.inputs[0].aval.shape
    axes = tuple(sorted(int(a) % len(full) for a in e.params["axes"])) if full else ()
    keep = tuple(1 if i in axes else d for i, d in enumerate(full))
    row_shapes = {m.aval.shape, keep}
    tags: dict[Var, tuple[str, int]] = {m: (ADD, 1)}
    todo = list(readers.get(m, ()))
    heapq.heapify(todo)
    done: set[int] = set()
    while todo:
        i = heapq.heappop(todo)
        if i in done:
            continue
        done.add(i)
        d = ir.eqns[i]
        t = _rule(d, tags, axes, row_shapes, full)
        if t is False:
            return False
        if t[1] != 0:
            tags[d.outvars[0]] = t
            for j in readers.get(d.outvars[0], ()):
                heapq.heappush(todo, j)
    return not any(type(v) is Var and v in tags for v in ir.outvars)


def stop_invariant_shifts(ir: IR) -> IR:
    """`ir` with each float max that cannot change a result read through a
    stop_gradient (its derivative there is exactly zero); `ir` if there is none."""
    maxima = [i for i, e in enumerate(ir.eqns) if e.prim.name == "reduce_max" and e.outvars[0].aval.is_float]
    if not maxima:
        return ir
    readers: dict[Var, list[int]] = {}
    for i, e in enumerate(ir.eqns):
        for a in e.inputs:
            if type(a) is Var:
                readers.setdefault(a, []).append(i)
    hits = [i for i in maxima if _invariant(ir, i, readers)]
    if not hits:
        return ir
    stop = REGISTRY["stop_gradient"]
    rename: dict[Var, Var] = {}
    eqns: list[Eqn] = []
    for i, e in enumerate(ir.eqns):
        if any(type(a) is Var and a in rename for a in e.inputs):
            ins = tuple(rename.get(a, a) if type(a) is Var else a for a in e.inputs)
            e = Eqn(e.prim, ins, e.outvars, e.params, e.src, e.phase)
        eqns.append(e)
        if i in hits:
            m = e.outvars[0]
            held = Var(m.aval)
            eqns.append(Eqn(stop, (m,), (held,), {}, e.src, e.phase))
            rename[m] = held
    return IR(ir.invars, eqns, ir.outvars)
