"""Reverse mode through loops: a forward loop that records a tape, and a
backward loop that reads it in reverse.

The VJP of a loop body `B(carry, consts) -> carry'` is split (`split_body`) by
the sweep each equation belongs to: `F(carry, consts) -> (carry', residuals)`
runs the body's forward sweep and gives the values its backward sweep reads;
`G(residuals, consts, ct) -> (ct of carry, ct of consts)` runs the backward
sweep. Then

- `loop_fwd[...](carry0, consts) -> (carryN, count, tapes...)` runs the loop
  with F, storing each iteration's residuals as row k of a tape (a `while`
  does not know its trip count: its tapes have a length known at run time,
  written -1, and grow by doubling in compiled code);
- `loop_bwd[...](count, tapes..., consts, ctN) -> (ct of carry0, ct of consts)`
  runs G for k = count-1 .. 0, summing the consts' cotangents.

Only the residuals are taped, not the carry: an in-place loop that reads one
element of a large array per step tapes one number per step.
"""

from __future__ import annotations

import numpy as np

from ..core import IR, REGION, Aval, Primitive, Var

loop_fwd_p = Primitive("loop_fwd", REGION, nout=-1)
loop_bwd_p = Primitive("loop_bwd", REGION, nout=-1)

DYNAMIC = -1  # the length of a `while` loop's tape, known at run time


def _interp(region: IR, donate: tuple = ()):
    from .control import _interpreter

    return _interpreter(region, donate)


# --- loop_fwd --------------------------------------------------------------------------


@loop_fwd_p.def_abstract
def _fwd_abstract(*avals, cond, body, mode, start, step, n, n_carry, n_counter, primal=None):
    carry = list(avals[:n_carry])
    res = body.out_avals[n_carry:]
    length = n if mode == "count" else DYNAMIC
    tapes = [Aval((length,) + r.shape, r.dtype) for r in res]
    return carry + [Aval((), np.dtype(np.int64))] + tapes


@loop_fwd_p.def_impl
def _fwd_impl(*args, cond, body, mode, start, step, n, n_carry, n_counter, primal=None):
    from .control import _distinct, _own

    run = _interp(body, tuple(range(n_counter, n_counter + n_carry)))
    carry, consts = _own(args[:n_carry]), list(args[n_carry:])
    rows = []
    k = 0
    if mode == "count":
        for k in range(n):
            out = run(*([np.int64(start + k * step)] if n_counter else []), *carry, *consts)
            carry, res = _distinct(out[:n_carry]), [np.array(r, copy=True) for r in out[n_carry:]]
            rows.append(res)
        k = n
    else:
        test = _interp(cond)
        while bool(test(*carry, *consts)[0]):
            out = run(*carry, *consts)
            carry, res = _distinct(out[:n_carry]), [np.array(r, copy=True) for r in out[n_carry:]]
            rows.append(res)
            k += 1
    n_res = len(body.outvars) - n_carry
    tapes = []
    for j in range(n_res):
        a = body.outvars[n_carry + j].aval
        tapes.append(np.array([r[j] for r in rows], dtype=a.dtype).reshape((len(rows),) + a.shape))
    from .control import _fresh

    return _fresh(carry, args) + [np.int64(k)] + tapes


@loop_fwd_p.def_vjp
def _fwd_vjp(cts, ans, *args, cond, body, mode, start, step, n, n_carry, n_counter, primal=None):
    if mode != "count":
        raise _second_order()
    from ..interpret import eval_ir
    from ..numpy_api import stack, zeros_like

    n_res = len(body.outvars) - n_carry

    def unrolled(*xs):
        carry, consts = list(xs[:n_carry]), list(xs[n_carry:])
        rows = []
        for k in range(n):
            out = eval_ir(body, [np.int64(start + k * step)] * n_counter + carry + consts)
            carry, res = out[:n_carry], out[n_carry:]
            rows.append(res)
        tapes = []
        for j in range(n_res):
            a = body.outvars[n_carry + j].aval
            tapes.append(
                stack([r[j] for r in rows]) if rows else zeros_like(np.zeros((0,) + a.shape, a.dtype))
            )
        return carry + [np.int64(n)] + tapes

    return _unrolled_vjp(unrolled, args, cts, [a.aval for a in body.invars[n_counter:]])


def _unrolled_vjp(fn, args, cts, in_avals):
    """The VJP of an equation through `fn`, its computation unrolled into plain
    equations (how a loop differentiates to higher orders)."""
    from ..ad import backward_pass
    from ..tracing import trace

    prog, captured = trace(fn, in_avals)
    assert not captured
    wrt = [v.aval.is_float for v in prog.invars]
    _, grads = backward_pass(prog, args, cts, wrt)
    it = iter(grads)
    return [next(it) if w else None for w in wrt]


# --- loop_bwd --------------------------------------------------------------------------


@loop_bwd_p.def_abstract
def _bwd_abstract(count, *avals, body, n_res, n_consts, n_ct, ct_of, acc_of, n):
    cts = list(avals[n_res + n_consts :])
    return cts + [body.outvars[len(ct_of) + j].aval for j in range(len(acc_of))]


def _acc_zeros(body, ct_of):
    return [np.zeros(v.aval.shape, v.aval.dtype) for v in body.outvars[len(ct_of) :]]


@loop_bwd_p.def_impl
def _bwd_impl(count, *args, body, n_res, n_consts, n_ct, ct_of, acc_of, n):
    from .control import _distinct, _own

    n_state = len(args) - n_res - n_consts + len(acc_of)
    run = _interp(body, tuple(range(n_res + n_consts, n_res + n_consts + n_state)))
    tapes, consts = args[:n_res], args[n_res : n_res + n_consts]
    ct = _own(args[n_res + n_consts :])
    acc = _acc_zeros(body, ct_of)
    for k in range(int(count) - 1, -1, -1):
        out = _distinct(run(*[t[k] for t in tapes], *consts, *ct, *acc))
        new = out[: len(ct_of)]
        ct = [new[ct_of.index(i)] if i in ct_of else np.zeros_like(c) for i, c in enumerate(ct)]
        acc = out[len(ct_of) :]
    return ct + acc


@loop_bwd_p.def_vjp
def _bwd_vjp(cts, ans, count, *args, body, n_res, n_consts, n_ct, ct_of, acc_of, n):
    if n == DYNAMIC:
        raise _second_order()
    from ..interpret import eval_ir
    from ..numpy_api import zeros_like

    def unrolled(*xs):
        tapes, consts, ct = xs[:n_res], list(xs[n_res : n_res + n_consts]), list(xs[n_res + n_consts :])
        acc = [zeros_like(z) for z in _acc_zeros(body, ct_of)]
        for k in range(n - 1, -1, -1):
            out = eval_ir(body, [t[k] for t in tapes] + consts + ct + acc)
            new = out[: len(ct_of)]
            ct = [new[ct_of.index(i)] if i in ct_of else c * 0 for i, c in enumerate(ct)]
            acc = out[len(ct_of) :]
        return ct + acc

    grads = _unrolled_vjp(unrolled, args, cts, [a.aval if hasattr(a, "aval") else _aval(a) for a in args])
    return [None] + grads


def _aval(x):
    from ..numpy_api import aval_of

    return aval_of(x)


def _second_order():
    from ..ad import ADError

    return ADError(
        "second-order reverse mode (grad of grad, or forward mode) through a compiled loop "
        "is not supported yet; a loop of at most "
        "tracediff.control.UNROLL_ALWAYS iterations is unrolled and differentiates to any order"
    )


# --- splitting a body ------------------------------------------------------------------


def split_body(body: IR, wrt: list[bool], n_keep: int, n_lead: int = 0):
    """Split the VJP of `body` (inputs: `n_keep` leading inputs the backward may read
    directly (loop invariants) come LAST in body.invars) into F and G.

    Returns (F, G, residual avals, ct_of, acc_of): F(body inputs) -> (body outputs,
    residuals); G(residuals, invariants, cts of outputs) -> (cts of the carried
    inputs listed in ct_of, cts of the invariants listed in acc_of).
    """
    from ..ad import vjp_ir
    from ..passes.simplify import cse, simplify

    m = len(body.outvars)
    v = vjp_ir(body, wrt)  # (inputs..., cts...) -> (outputs..., grads of wrt inputs...)
    v = cse(simplify(v))  # one residual per distinct value
    n_in = len(body.invars)
    ins, cts = v.invars[:n_in], v.invars[n_in:]
    invariant = set(ins[n_in - n_keep :])
    fwd = [e for e in v.eqns if e.phase == "fwd"]
    bwd = [e for e in v.eqns if e.phase != "fwd"]
    fwd_defined = {o for e in fwd for o in e.outvars}
    grads = v.outvars[m:]
    used = []
    for a in [x for e in bwd for x in e.inputs] + list(grads):
        if type(a) is Var and (a in fwd_defined or (a in ins and a not in invariant)) and a not in used:
            used.append(a)
    from ..core import Eqn
    from ..passes.dce import dce

    residuals, remat = _choose_residuals(used, fwd, ins, invariant, set(ins[:n_lead]))
    f = dce(IR(list(ins), fwd, list(v.outvars[:m]) + residuals))
    # G reads the residuals (fresh variables) and the invariants, and recomputes
    # the large values it needs from taped inputs (fresh variables too)
    ren = {r: Var(r.aval) for r in residuals}
    inv_list = list(ins[n_in - n_keep :])

    def sub(a):
        return ren.get(a, a) if type(a) is Var else a

    g_eqns = []
    for e in remat:
        outs = tuple(Var(o.aval) for o in e.outvars)
        ren.update(zip(e.outvars, outs))
        g_eqns.append(Eqn(e.prim, tuple(sub(a) for a in e.inputs), outs, e.params, e.src, "bwd"))
    g_eqns += [Eqn(e.prim, tuple(sub(a) for a in e.inputs), e.outvars, e.params, e.src, e.phase) for e in bwd]
    wrt_idx = [i for i, w in enumerate(wrt) if w]
    n_carry_in = n_in - n_keep
    ct_of = [i for i in wrt_idx if n_lead <= i < n_carry_in]
    acc_of = [i for i in wrt_idx if i >= n_carry_in]
    g_outs = [sub(grads[wrt_idx.index(i)]) for i in ct_of] + [sub(grads[wrt_idx.index(i)]) for i in acc_of]
    g = dce(IR([ren[r] for r in residuals] + inv_list + list(cts), g_eqns, g_outs))
    # positions: ct_of among the carried inputs, acc_of among the invariants
    return (
        f,
        g,
        [r.aval for r in residuals],
        tuple(i - n_lead for i in ct_of),
        tuple(i - n_carry_in for i in acc_of),
    )


def _nbytes(a) -> int:
    return a.aval.size * a.aval.dtype.itemsize


def _cheap_from_counter(r, made, counter: set, invariant: set) -> list | None:
    """The scalar equations computing r from the loop counter and loop invariants
    (index arithmetic, x[i] of an invariant x), or None if r needs more."""
    need, todo, seen = [], [r], set()
    while todo:
        a = todo.pop()
        if type(a) is not Var or a in seen or a in invariant or a in counter:
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


def _choose_residuals(used: list, fwd: list, ins: list, invariant: set, counter: set = frozenset()):
    """What a loop's tape holds: the values the backward reads (`used`), except that
    scalars computed from the counter and invariants alone are recomputed from the
    taped counter, and where cheaper, large values are recomputed from the carried
    inputs they come from (an elementwise chain over a carried array tapes the array
    once, not each intermediate). Returns (residuals, equations to recompute)."""
    made = {o: e for e in fwd for o in e.outvars}
    order = {id(e): k for k, e in enumerate(fwd)}
    remat: list = []
    if counter:
        kept = []
        for r in used:
            eqs = _cheap_from_counter(r, made, counter, invariant) if r.aval.size == 1 else None
            if eqs is None or not eqs:
                kept.append(r)
            else:
                remat += [e for e in eqs if e not in remat]
        if remat:
            used = kept + [c for c in counter if c not in kept]
    large = [r for r in used if r.aval.size > 1 and r not in ins]
    if not large:
        return used, sorted(remat, key=lambda e: order[id(e)])
    need, sources, seen = [], [], set()

    def visit(a):
        if type(a) is not Var or a in seen:
            return
        seen.add(a)
        e = made.get(a)
        if e is None:
            if a in ins and a not in invariant and a not in sources:
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
    if sum(map(_nbytes, new)) >= sum(map(_nbytes, used)):
        return used, sorted(remat, key=lambda e: order[id(e)])
    return new, sorted(remat + [e for e in need if e not in remat], key=lambda e: order[id(e)])


class LoopKey:
    """Names the loop a `loop_fwd` tapes (the optimizer merges the two)."""

    _n = 0

    def __init__(self):
        LoopKey._n += 1
        self.n = LoopKey._n

    def __repr__(self) -> str:
        return f"loop#{self.n}"


def _loop_key(body: IR) -> LoopKey:
    return body.__dict__.setdefault("_loop_key", LoopKey())


def _accumulating(g: IR, n_ct_out: int) -> IR:
    """G(res, consts, cts) -> (cts', contributions) as G'(res, consts, cts, acc) ->
    (cts', acc + contributions): the sums over iterations are carried, so a
    contribution to one element of an invariant array is an in-place update."""
    from ..interpret import eval_ir
    from ..passes.dce import dce
    from ..tracing import phase_context, trace

    acc_avals = [v.aval for v in g.outvars[n_ct_out:]]
    n_in = len(g.invars)

    def fn(*xs):
        with phase_context("bwd"):
            out = eval_ir(g, list(xs[:n_in]))
            return out[:n_ct_out] + [a + c for a, c in zip(xs[n_in:], out[n_ct_out:])]

    prog, captured = trace(fn, [v.aval for v in g.invars] + acc_avals)
    assert not captured
    return dce(prog)


def loop_vjp(cts, args, *, body, cond, mode, n_carry, n_lead, start=0, step=1, n=0):
    """The VJP of a `loop` (mode "count") or `while` equation: a taping forward
    loop and a backward loop. `args`: carry then invariants."""
    from ..tracing import bind

    consts = list(args[n_carry:])
    carry_avals = [v.aval for v in body.invars[n_lead : n_lead + n_carry]]
    wrt = (
        [False] * n_lead
        + [a.is_float for a in carry_avals]
        + [v.aval.is_float for v in body.invars[n_lead + n_carry :]]
    )
    if not any(wrt):
        return [None] * len(args)
    f, g0, res_avals, ct_of, acc_of = split_body(body, wrt, len(consts), n_lead)
    g = _accumulating(g0, len(ct_of))
    outs = bind(
        loop_fwd_p,
        *args,
        primal=_loop_key(body),
        cond=cond,
        body=f,
        mode=mode,
        start=start,
        step=step,
        n=n,
        n_carry=n_carry,
        n_counter=n_lead,
    )
    count, tapes = outs[n_carry], outs[n_carry + 1 :]
    back = bind(
        loop_bwd_p,
        count,
        *tapes,
        *consts,
        *cts,
        body=g,
        n_res=len(tapes),
        n_consts=len(consts),
        n_ct=len(cts),
        ct_of=ct_of,
        acc_of=acc_of,
        n=n if mode == "count" else DYNAMIC,
    )
    back = back if isinstance(back, list) else [back]
    ct_carry, ct_consts = back[:n_carry], back[n_carry:]
    grads = [ct_carry[j] if carry_avals[j].is_float else None for j in range(n_carry)]
    acc = dict(zip(acc_of, ct_consts))
    grads += [acc.get(j) for j in range(len(consts))]
    return grads
