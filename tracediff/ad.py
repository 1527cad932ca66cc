"""Automatic differentiation as IR -> IR transformations.

`vjp_ir` re-stages a program and walks it backwards, calling each
primitive's VJP rule on tracers; the rules use public ops, so the adjoint is
ordinary IR and differentiates again. Cotangents are symbolic zeros (absent)
until something flows into them, and only equations on a path from a
differentiated input to an output get a rule.

`jvp_ir` needs no rules of its own: the VJP program is linear in its
cotangents, and transposing it once more (its VJP with respect to the
cotangents) gives J·t.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .builder import bind, current_builder, trace
from .core import DYNAMIC, IR, REGISTRY, Aval, Lit, TracediffError, Var
from .interpret import eval_ir
from .passes.dce import dce
from .passes.nan_safe import NAN_SAFE, guard_selects
from .passes.shift import stop_invariant_shifts
from .provenance import phase_context, src_context
from .tracer import Tracer


class ADError(TracediffError, TypeError):
    pass


def active_vars(ir: IR, wrt: Sequence[bool]) -> set[Var]:
    """Variables that depend differentiably on a `wrt` input."""
    active = {v for v, w in zip(ir.invars, wrt) if w and v.aval.is_inexact}
    for e in ir.eqns:
        if e.prim.differentiable and any(type(a) is Var and a in active for a in e.inputs):
            active.update(v for v in e.outvars if v.aval.is_inexact)
    return active


def _traced(c, aval: Aval):
    """A constant cotangent as a traced value, so rules never build constant arrays."""
    if isinstance(c, Tracer):
        return c
    arr = np.asarray(c, dtype=aval.dtype)
    return current_builder().emit(REGISTRY["broadcast"], [Lit(arr)], {"shape": arr.shape})[0]


def zeros(aval: Aval):
    zero = np.zeros((), aval.dtype)
    if not aval.shape:
        return zero
    return current_builder().emit(REGISTRY["broadcast"], [Lit(zero)], {"shape": aval.shape})[0]


def backward_pass(
    ir: IR,
    primals: Sequence,
    cts: Sequence,
    wrt: Sequence[bool],
    replay: str = "fwd",
    known: dict | None = None,
):
    """Trace forward and adjoint of `ir` into the current builder.

    Returns (outputs, cotangents of the `wrt` inputs). `replay`: the sweep the
    forward equations belong to ("bwd" when the backward recomputes them, as a
    checkpoint does); `known`: values of some of `ir`'s variables, not recomputed.
    """
    active = active_vars(ir, wrt)
    env = dict(zip(ir.invars, primals))
    known = known or {}

    def read(a):
        return a.val if type(a) is Lit else env[a]

    with phase_context(replay):
        for e in ir.eqns:
            if e.outvars and all(v in known for v in e.outvars):
                env.update((v, known[v]) for v in e.outvars)
                continue
            with src_context(e.src):
                outs = bind(e.prim, *map(read, e.inputs), **e.params)
            env.update(zip(e.outvars, outs if e.prim.nout != 1 else [outs]))
    with phase_context("bwd"):
        return _reverse_sweep(ir, env, read, cts, wrt, active)


def _reverse_sweep(ir, env, read, cts, wrt, active):

    ct_env: dict[Var, object] = {}

    def accumulate(v: Var, c, who: str):
        c = _traced(c, v.aval)
        if c.shape != v.aval.shape or c.dtype != v.aval.dtype:
            raise ADError(f"internal error: the VJP of {who} gave a cotangent {c.aval} for a value {v.aval}")
        prev = ct_env.get(v)
        if DYNAMIC in v.aval.shape:  # a loop's tape: its reader (a scan) adds the terms row by row
            ct_env[v] = (prev or ()) + (c,)
        else:
            ct_env[v] = c if prev is None else prev + c

    out_src = {v: e.src for e in ir.eqns for v in e.outvars}
    for o, c in zip(ir.outvars, cts):
        if type(o) is Var and o in active and c is not None:
            with src_context(out_src.get(o, "")):  # the seed belongs to the output's line
                accumulate(o, c, "the output")
    for e in reversed(ir.eqns):
        cts_out = [ct_env.pop(v, None) for v in e.outvars]
        if all(c is None for c in cts_out):
            continue
        if e.prim.vjp is None:
            raise ADError(f"{e.prim.name} has no derivative rule" + (f" (at {e.src})" if e.src else ""))
        ins = [read(a) for a in e.inputs]
        ans = [env[v] for v in e.outvars]
        with src_context(e.src):
            if e.prim.nout == 1:
                in_cts = e.prim.vjp(cts_out[0], ans[0], *ins, **e.params)
            else:
                if not getattr(e.prim, "symbolic_zeros", False):
                    cts_out = [zeros(v.aval) if c is None else c for c, v in zip(cts_out, e.outvars)]
                in_cts = e.prim.vjp(cts_out, ans, *ins, **e.params)
            for a, c in zip(e.inputs, in_cts):
                if c is not None and type(a) is Var and a in active:
                    accumulate(a, c, e.prim.name)
    outs = [read(o) for o in ir.outvars]
    grads = []
    for v, w in zip(ir.invars, wrt):
        if w:
            c = ct_env.get(v)
            grads.append(zeros(v.aval) if c is None else c)
    return outs, grads


def vjp_ir(ir: IR, wrt: Sequence[bool], seeds: Sequence | None = None) -> IR:
    """IR(primals..., cts...) -> (outputs..., cotangents of wrt inputs...).

    With `seeds` (constants, one per output), the cotangents are not inputs.
    """
    ir = stop_invariant_shifts(ir)  # (exact: their derivative through the max is zero)
    if NAN_SAFE.get():
        ir = guard_selects(ir)
    n = len(ir.invars)
    ct_avals = [] if seeds is not None else [o.aval.strong() for o in ir.outvars]

    def fn(*args):
        cts = seeds if seeds is not None else args[n:]
        outs, grads = backward_pass(ir, args[:n], cts, wrt)
        return list(outs) + list(grads)

    new, captured = trace(fn, ir.in_avals + ct_avals)
    assert not captured
    return dce(new)


def jvp_ir(ir: IR, wrt: Sequence[bool]) -> IR:
    """IR(primals..., tangents of wrt inputs...) -> (outputs..., output tangents...)."""
    n, m = len(ir.invars), len(ir.outvars)
    lin = vjp_ir(ir, wrt)  # (primals, cts) -> (outs, grads); grads linear in cts
    lin_grads = IR(lin.invars, lin.eqns, lin.outvars[m:])
    back = vjp_ir(lin_grads, [False] * n + [True] * m)  # (primals, cts, t) -> (grads, J t)
    tan_avals = [v.aval.strong() for v, w in zip(ir.invars, wrt) if w]

    def fn(*args):
        primals, tangents = args[:n], args[n:]
        outs = eval_ir(ir, primals)
        dummy = [zeros(o.aval.strong()) for o in ir.outvars]
        res = eval_ir(back, list(primals) + dummy + list(tangents))
        return outs + res[len(lin_grads.outvars) :]

    new, captured = trace(fn, ir.in_avals + tan_avals)
    assert not captured
    return dce(new)


def split_known(ir: IR, known: Sequence[bool], n_first: int) -> tuple[IR, IR]:
    """Partial evaluation: `ir` split into F, what the `known` inputs determine, and G,
    the rest. F(known inputs) -> (the first `n_first` outputs, residuals); G(residuals,
    other inputs) -> the other outputs. `vjp` runs F at the primals and G per cotangent;
    `linearize` runs G per tangent."""
    have = {v for v, k in zip(ir.invars, known) if k}
    f_eqns, g_eqns = [], []
    for e in ir.eqns:
        if all(type(a) is not Var or a in have for a in e.inputs):
            f_eqns.append(e)
            have.update(e.outvars)
        else:
            g_eqns.append(e)
    res: dict[Var, None] = {}
    for a in [a for e in g_eqns for a in e.inputs] + list(ir.outvars[n_first:]):
        if type(a) is Var and a in have:
            res[a] = None
    res_vars = list(res)
    f = dce(IR([v for v, k in zip(ir.invars, known) if k], f_eqns, list(ir.outvars[:n_first]) + res_vars))
    g_in = res_vars + [v for v, k in zip(ir.invars, known) if not k]
    g = dce(IR(g_in, g_eqns, list(ir.outvars[n_first:])))
    return f, g
