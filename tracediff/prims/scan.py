"""Loops that differentiate to any order: `scan`.

    scan[body, cond, length, reverse, start, step, n_counter, n_xs, n_carry](
        [count,] *xs, *carry, *consts) -> (*carry, count, *ys)

runs `carry, y = body([i,] x[k]..., carry..., consts...)` for k = 0 .. L-1 (k =
L-1 .. 0 when `reverse`) and stacks each y as row k of a ys array; `i = start +
k * step` is given to the body when `n_counter` is 1. The trip count L is

- `length`, an int known when traced (the arrays' leading dimension);
- the first operand `count`, when `length` is None and there is no test: known
  at run time (leading dimensions written -1, `DYNAMIC`);
- for a `while` (`cond` is a region `test(carry, consts) -> bool`): the number of
  iterations until the test fails (no xs; ys grow by doubling in compiled code).

Reverse mode of a scan is two scans, so its adjoint is a scan again (`grad` of
`grad`, `jvp` of `grad` through any loop). The VJP of the body is split by sweep
(`split_body`) into F, the forward sweep also giving the residuals its backward
sweep reads, and G, the backward sweep. The forward scan runs F and stacks the
residuals as extra ys (a tape); the backward scan runs G over the same k in the
other order, reading the tape rows and the ys' cotangents as its xs, carrying the
carry's cotangents and the sums of the consts' cotangents, and stacking the xs'
cotangents as its ys. Only residuals are taped, not the carry: an in-place loop
that reads one element of a large array per step tapes one number per step.

`while` and counted `loop` (tracediff.prims.control) are the primal loops users
write; their VJP is the VJP of the equivalent scan, and `passes/loops.py` merges a
loop with the taping scan that re-runs it.
"""

from __future__ import annotations

import functools
import operator

import numpy as np

from ..core import DYNAMIC, IR, REGION, Aval, Eqn, Primitive, Var
from .region_util import check_inputs, distinct, fresh, interpreter, literal_roots, own, roots, same

scan_p = Primitive("scan", REGION, nout=-1)
scan_p.symbolic_zeros = True  # a ys' cotangent may be None: nothing is read per step

INT = np.dtype(np.int64)


def _interp(region: IR, donate: tuple = ()):

    return interpreter(region, donate)


def scan_parts(ops, length, cond, n_xs, n_carry):
    """(count operand or None, xs, carry, consts) of a scan's operands."""
    dyn = length is None and cond is None
    count = ops[0] if dyn else None
    ops = ops[1:] if dyn else ops
    return count, ops[:n_xs], ops[n_xs : n_xs + n_carry], ops[n_xs + n_carry :]


# --- rules -----------------------------------------------------------------------------


@scan_p.def_abstract
def _abstract(
    *avals, body, cond, length, reverse, start, step, n_counter, n_xs, n_carry, primal=None, remat=False
):

    count, xs, carry, consts = scan_parts(avals, length, cond, n_xs, n_carry)
    if count is not None and (count.shape != () or count.dtype.kind not in "iu"):
        raise TypeError(f"scan: the trip count must be a 0-d integer, got {count}")
    if cond is not None:
        if xs:
            raise TypeError("scan: a while loop takes no per-iteration inputs")
        check_inputs("scan", cond, [*carry, *consts], "the test")
    lead = length if length is not None else DYNAMIC
    for x in xs:
        if not x.shape or x.shape[0] not in (lead, DYNAMIC):
            raise TypeError(f"scan: a per-iteration input {x} has no leading dimension of {lead}")
    rows = [Aval(x.shape[1:], x.dtype) for x in xs]
    counter = [Aval((), INT)] * n_counter
    check_inputs("scan", body, [*counter, *rows, *carry, *consts], "the body")
    outs = body.out_avals
    if len(outs) < n_carry or not all(same(a, b) for a, b in zip(outs, carry)):
        raise TypeError(
            f"scan: the body gives ({', '.join(map(str, outs))}) for a carry of "
            f"({', '.join(map(str, carry))})"
        )
    ys = [Aval((lead,) + a.shape, a.dtype) for a in outs[n_carry:]]
    return [a.strong() for a in carry] + [Aval((), INT)] + ys


@scan_p.def_impl
def _impl(*ops, body, cond, length, reverse, start, step, n_counter, n_xs, n_carry, primal=None, remat=False):

    count, xs, carry0, consts = scan_parts(ops, length, cond, n_xs, n_carry)
    first = n_counter + n_xs
    run = _interp(body, tuple(range(first, first + n_carry)))
    carry, consts = own(carry0), list(consts)
    keep = literal_roots(body) | roots(consts) | roots(xs)
    rows: list[list] = []

    def step_(k):
        nonlocal carry
        lead = [np.int64(start + k * step)] if n_counter else []
        out = run(*lead, *[x[k] for x in xs], *carry, *consts)
        carry = distinct(out[:n_carry], keep)
        return [np.array(r, copy=True) for r in out[n_carry:]]

    if cond is not None:
        test = _interp(cond)
        while bool(test(*carry, *consts)[0]):
            rows.append(step_(len(rows)))
        n = len(rows)
    else:
        n = length if length is not None else int(count)
        order = range(n - 1, -1, -1) if reverse else range(n)
        got = {k: step_(k) for k in order}
        rows = [got[k] for k in range(n)]
    ys = []
    for j, o in enumerate(body.outvars[n_carry:]):
        a = o.aval
        ys.append(np.array([r[j] for r in rows], dtype=a.dtype).reshape((n,) + a.shape))
    return fresh(carry, [*carry0, *consts, *xs], body) + [np.int64(n)] + ys


@scan_p.def_vjp
def _vjp(cts, ans, *ops, primal=None, **params):
    return scan_vjp(list(cts), list(ops), **params)


@scan_p.def_batch
def _batch(args, dims, size, *, body, cond, length, reverse, start, step, n_counter, n_xs, n_carry, **params):
    """xs keep their batch on axis 1 (rows batched on axis 0, a tape is not
    transposed), and so do the stacked ys; carries batch as a loop's do."""
    from ..batching import NotBatchable, batch_region, carry_fixed_point, front_all, move_axis, shape_of
    from ..builder import bind

    count, xs, carry, consts = scan_parts(list(args), length, cond, n_xs, n_carry)
    dc, dxs, dcarry, dconsts = scan_parts(list(dims), length, cond, n_xs, n_carry)
    if count is not None and dc is not None:
        raise NotBatchable("scan: a trip count that differs across the batch")
    xs_b = [d is not None for d in dxs]
    for x, d in zip(xs, dxs):
        if d not in (None, 1) and DYNAMIC in shape_of(x):
            raise NotBatchable("scan: a tape batched on its leading axis")
    xs = [move_axis(x, d, 1) if d is not None else x for x, d in zip(xs, dxs)]
    consts_b = [d is not None for d in dconsts]
    lead = [False] * n_counter
    carry_b = carry_fixed_point(body, lead + xs_b, [d is not None for d in dcarry], consts_b, size)
    if cond is not None:
        cond_b, (test_b,) = batch_region(cond, carry_b + consts_b, size)
        if test_b:
            raise NotBatchable("scan: a loop test that differs across the batch")
    else:
        cond_b = None
    n_ys = len(body.outvars) - n_carry
    body_b, out_b = batch_region(body, lead + xs_b + carry_b + consts_b, size, force=carry_b + [False] * n_ys)
    carry = front_all(carry, dcarry, size, carry_b)
    consts = front_all(consts, dconsts, size, [False] * len(consts))
    ops = ([count] if count is not None else []) + xs + carry + consts
    outs = bind(
        scan_p, *ops, body=body_b, cond=cond_b, length=length, reverse=reverse, start=start, step=step,
        n_counter=n_counter, n_xs=n_xs, n_carry=n_carry, remat=params.get("remat", False),
    )  # fmt: skip
    out_dims = [0 if c else None for c in carry_b] + [None] + [1 if y else None for y in out_b[n_carry:]]
    return outs, out_dims


def scan_vjp(
    cts, ops, *, body, cond, length, reverse, start, step, n_counter, n_xs, n_carry, remat=False, primal=None
):
    """Cotangents of a scan's operands (None where zero): a taping forward scan and a
    backward scan. `cts`: one per output (carry, count, ys); None = zero. With
    `remat`, the tape holds the body's inputs only and the backward recomputes the
    rest; `primal`: the loop the taping scan stands for (default: this one)."""
    from ..ad import zeros
    from ..builder import bind

    count_op, xs, carry, consts = scan_parts(ops, length, cond, n_xs, n_carry)
    ins = body.in_avals[n_counter:]
    wrt = [False] * n_counter + [a.is_inexact for a in ins]
    lead_ops = [count_op] if count_op is not None else []
    if not any(wrt):
        return [None] * len(ops)
    n_ys = len(body.outvars) - n_carry
    f, g, res_avals = split_body(body, wrt, n_counter, len(consts), remat)
    # a residual that is an xs row or a ys row already is read from that array, not
    # taped twice
    m = len(body.outvars)
    ys_out = list(f.outvars[n_carry:m])
    xs_in = list(f.invars[n_counter : n_counter + n_xs])
    tape_of, extra = [], []
    for r in f.outvars[m:]:
        if r in xs_in:
            tape_of.append(("xs", xs_in.index(r)))
        elif r in ys_out:
            tape_of.append(("ys", ys_out.index(r)))
        else:
            tape_of.append(("new", len(extra)))
            extra.append(r)
    fwd_body = IR(f.invars, f.eqns, list(f.outvars[:m]) + extra)
    params = dict(cond=cond, length=length, start=start, step=step, n_counter=n_counter)
    outs = bind(
        scan_p, *lead_ops, *xs, *carry, *consts, body=fwd_body, reverse=reverse, n_xs=n_xs,
        n_carry=n_carry, primal=primal or loop_key(body), remat=remat, **params,
    )  # fmt: skip
    count = outs[n_carry]
    ys, new = outs[n_carry + 1 : n_carry + 1 + n_ys], outs[n_carry + 1 + n_ys :]
    tapes = [{"xs": xs, "ys": ys, "new": new}[kind][j] for kind, j in tape_of]

    row = [a for a in ins[:n_xs]]
    fx = [j for j in range(n_xs) if row[j].is_inexact]
    fc = [j for j in range(n_carry) if ins[n_xs + j].is_inexact]
    fk = [j for j in range(len(consts)) if ins[n_xs + n_carry + j].is_inexact]
    y_avals = [o.aval for o in body.outvars[n_carry:]]
    py = [j for j in range(n_ys) if cts[n_carry + 1 + j] is not None and y_avals[j].is_inexact]
    # a ys' cotangent of a length known at run time comes as its terms (see ad.py):
    # the backward body adds their rows
    terms = [list(c) if isinstance(c, tuple) else [c] for c in (cts[n_carry + 1 + j] for j in py)]
    ct_carry = [cts[j] if cts[j] is not None else zeros(ins[n_xs + j].strong()) for j in fc]
    acc0 = [zeros(ins[n_xs + n_carry + j].strong()) for j in fk]
    n_terms = [len(t) for t in terms]
    bwd_body = _backward_body(
        g, body, n_counter, n_xs, n_carry, len(consts), res_avals, fx, fc, fk, py, n_terms, wrt
    )
    static = cond is None and length is not None
    back = bind(
        scan_p,
        *([] if static else [count]),
        *tapes,
        *[c for t in terms for c in t],
        *ct_carry,
        *acc0,
        *consts,
        body=bwd_body,
        cond=None,
        length=length if static else None,
        reverse=not reverse,
        start=start,
        step=step,
        n_counter=n_counter,
        n_xs=len(tapes) + sum(n_terms),
        n_carry=len(fc) + len(fk),
    )
    nc = len(fc) + len(fk)
    ct_c, acc, ct_x = back[: len(fc)], back[len(fc) : nc], back[nc + 1 :]
    grads = [None] * len(lead_ops)
    grads += [ct_x[fx.index(j)] if j in fx else None for j in range(n_xs)]
    grads += [ct_c[fc.index(j)] if j in fc else None for j in range(n_carry)]
    grads += [acc[fk.index(j)] if j in fk else None for j in range(len(consts))]
    return grads


def _backward_body(g, body, n_counter, n_xs, n_carry, n_consts, res_avals, fx, fc, fk, py, n_terms, wrt):
    """The backward scan's body: (counter?, tape rows, ys' cotangent rows, carry's
    cotangents, sums of the consts' cotangents, consts) -> (carry's cotangents one
    step back, sums plus this step's, xs' cotangent rows). The sums are carried, so
    a contribution to one element of a const array is an in-place update."""
    from ..ad import zeros
    from ..builder import trace
    from ..interpret import eval_ir
    from ..passes.dce import dce
    from ..provenance import phase_context

    ins = body.in_avals
    wrt_idx = [i for i, w in enumerate(wrt) if w]
    out_avals = [o.aval.strong() for o in body.outvars]
    c0 = n_counter + n_xs  # the carry's position among the body's inputs
    k0 = c0 + n_carry
    sizes = [n_counter, len(res_avals), sum(n_terms), len(fc), len(fk), n_consts]

    def fn(*a):
        parts, i = [], 0
        for s in sizes:
            parts.append(list(a[i : i + s]))
            i += s
        lead, res, rows, ctc, acc, consts = parts
        cty, i = [], 0
        for n in n_terms:
            cty.append(functools.reduce(operator.add, rows[i : i + n]))
            i += n
        ct_out = [ctc[fc.index(j)] if j in fc else zeros(out_avals[j]) for j in range(n_carry)]
        ct_out += [
            cty[py.index(j)] if j in py else zeros(out_avals[n_carry + j])
            for j in range(len(out_avals) - n_carry)
        ]
        grads = dict(zip(wrt_idx, eval_ir(g, lead + res + consts + ct_out)))
        return (
            [grads[c0 + j] for j in fc]
            + [s + grads[k0 + j] for s, j in zip(acc, fk)]
            + [grads[n_counter + j] for j in fx]
        )

    in_avals = (
        [Aval((), INT)] * n_counter
        + list(res_avals)
        + [out_avals[n_carry + j] for j, n in zip(py, n_terms) for _ in range(n)]
        + [ins[c0 + j].strong() for j in fc]
        + [ins[k0 + j].strong() for j in fk]
        + list(ins[k0:])
    )
    with phase_context("bwd"):
        prog, captured = trace(fn, in_avals)
    assert not captured
    return dce(prog)


# --- splitting a body ------------------------------------------------------------------


def split_body(body: IR, wrt: list[bool], n_lead: int, n_consts: int, remat: bool = False):
    """Split the VJP of `body` into F and G. The body's first `n_lead` inputs (the
    counter) and last `n_consts` (loop invariants) are at hand in both sweeps; the
    others (per-iteration rows and the carry) are only in the forward one.

    With `remat`, the residuals are the inputs G needs, and G recomputes the rest.
    Returns (F, G, residual avals): F(body inputs) -> (body outputs, residuals);
    G(lead, residuals, consts, cts of all outputs) -> (cts of the `wrt` inputs).
    """
    from ..ad import vjp_ir
    from ..passes.dce import dce
    from ..passes.simplify import cse, simplify

    m = len(body.outvars)
    v = vjp_ir(body, wrt)  # (inputs..., cts...) -> (outputs..., grads of wrt inputs...)
    v = cse(simplify(v))  # one residual per distinct value
    n_in = len(body.invars)
    ins, cts = v.invars[:n_in], v.invars[n_in:]
    at_hand = set(ins[:n_lead]) | set(ins[n_in - n_consts :])
    fwd = [e for e in v.eqns if e.phase == "fwd"]
    bwd = [e for e in v.eqns if e.phase != "fwd"]
    fwd_defined = {o for e in fwd for o in e.outvars}
    grads = v.outvars[m:]
    used = []
    for a in [x for e in bwd for x in e.inputs] + list(grads):
        if type(a) is Var and (a in fwd_defined or (a in ins and a not in at_hand)) and a not in used:
            used.append(a)
    residuals, again = _choose_residuals(used, fwd, ins, at_hand, remat)
    f = dce(IR(list(ins), fwd, list(v.outvars[:m]) + residuals))
    # G reads the residuals (fresh variables), the counter and the invariants, and
    # recomputes what is cheaper to recompute than to tape
    ren = {r: Var(r.aval) for r in residuals}

    def sub(a):
        return ren.get(a, a) if type(a) is Var else a

    g_eqns = []
    for e in again:
        outs = tuple(Var(o.aval) for o in e.outvars)
        ren.update(zip(e.outvars, outs))
        g_eqns.append(Eqn(e.prim, tuple(sub(a) for a in e.inputs), outs, e.params, e.src, "bwd"))
    g_eqns += [Eqn(e.prim, tuple(sub(a) for a in e.inputs), e.outvars, e.params, e.src, e.phase) for e in bwd]
    g_in = list(ins[:n_lead]) + [ren[r] for r in residuals] + list(ins[n_in - n_consts :]) + list(cts)
    g = dce(IR(g_in, g_eqns, [sub(x) for x in grads]))
    return f, g, [r.aval for r in residuals]


def _nbytes(a) -> int:
    return a.aval.size * a.aval.dtype.itemsize


def _cheap_scalar(r, made, at_hand: set) -> list | None:
    """The scalar equations computing r from values at hand in the backward sweep
    (index arithmetic on the counter, x[i] of an invariant x), or None."""
    need, todo, seen = [], [r], set()
    while todo:
        a = todo.pop()
        if type(a) is not Var or a in seen or a in at_hand:
            continue
        seen.add(a)
        e = made.get(a)
        if (
            e is None
            or any(o.aval.size != 1 for o in e.outvars)
            or e.prim.kind not in ("elementwise", "indexing")
        ):
            return None
        need.append(e)
        todo.extend(e.inputs)
    return need


def _choose_residuals(used: list, fwd: list, ins: list, at_hand: set, only_inputs: bool = False):
    """What a loop's tape holds: the values the backward reads (`used`), except that
    scalars computed from values at hand (the counter, invariants) are recomputed,
    and where cheaper, large values are recomputed from the carried inputs they come
    from (an elementwise chain over a carried array tapes the array once, not each
    intermediate). Returns (residuals, equations to recompute, in program order)."""
    made = {o: e for e in fwd for o in e.outvars}
    order = {id(e): k for k, e in enumerate(fwd)}
    remat: list = []
    kept = []
    for r in used:
        eqs = _cheap_scalar(r, made, at_hand) if r.aval.size == 1 else None
        if not eqs:
            kept.append(r)
        else:
            remat += [e for e in eqs if e not in remat]
    used = kept

    def ordered(eqs):
        return sorted(eqs, key=lambda e: order[id(e)])

    # a value of a length known at run time (a nested while loop's tape) cannot be a
    # tape row: it is always recomputed
    forced = only_inputs or any(DYNAMIC in r.aval.shape for r in used)
    large = [r for r in used if (forced or r.aval.size > 1) and r not in ins]
    if not large:
        return used, ordered(remat)
    # (a taped scalar that a large value depends on is recomputed with it: reading it
    # instead fuses the backward into fewer, wider loops that measured slower on W9)
    need, sources, seen = [], [], set()

    def visit(a):
        if type(a) is not Var or a in seen:
            return
        seen.add(a)
        e = made.get(a)
        if e is None:
            if a in ins and a not in at_hand and a not in sources:
                sources.append(a)
            return
        for x in e.inputs:
            visit(x)
        if e not in need:
            need.append(e)

    for r in large:
        visit(r)
    kept = [r for r in used if r not in large]
    new = kept + [s for s in sources if s not in kept]
    if not forced and sum(map(_nbytes, new)) >= sum(map(_nbytes, used)):
        return used, ordered(remat)
    return new, ordered(remat + [e for e in need if e not in remat])


class LoopKey:
    """Names the loop a taping scan re-runs (the optimizer merges the two)."""

    _n = 0

    def __init__(self):
        LoopKey._n += 1
        self.n = LoopKey._n

    def __repr__(self) -> str:
        return f"loop#{self.n}"


def loop_key(body: IR) -> LoopKey:
    return body.__dict__.setdefault("_loop_key", LoopKey())
