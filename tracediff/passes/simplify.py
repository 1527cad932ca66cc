"""Algebraic simplification and constant folding, in one forward walk.

Rules are keyed by primitive and see inputs already simplified. A rule
returns an atom (the equation's output is that atom), a list of new
equations (the last one defines the output), or None (keep the equation).
Every rewrite is exact under IEEE rules for the dtype, signed zeros, NaN
and infinities included, or it is not done: `x*0` stays, `x-x` stays,
`x + 0.0` stays (it turns -0.0 into +0.0) while `x + -0.0` and `x - 0.0` go.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ..core import ELEMENTWISE, IR, REGION, Atom, Aval, Eqn, Lit, Var
from ..prims import elementwise as ew
from ..prims import indexing as ix
from ..prims import reduce as rd
from ..prims import shape as sh

FOLD_MAX_SIZE = 64  # constant-fold only small results: big constants bloat programs


class Ctx:
    def __init__(self, uses: Counter):
        self.defs: dict[Var, Eqn] = {}
        self.uses = uses

    def scalar_const(self, a: Atom):
        """The value of `a` if it is a literal or a broadcast of a scalar literal."""
        if type(a) is Lit:
            return a.val.item() if a.val.size == 1 else None
        e = self.defs.get(a)
        if (
            e is not None
            and e.prim is sh.broadcast_p
            and type(e.inputs[0]) is Lit
            and e.inputs[0].val.size == 1
        ):
            return e.inputs[0].val.item()
        return None

    def is_const(self, a: Atom, value: float) -> bool:
        """Is `a` the constant `value` (a zero: +0.0, not -0.0)?"""
        v = self.scalar_const(a)
        return v is not None and v == value and not (value == 0 and np.signbit(v))

    def is_add_identity(self, a: Atom) -> bool:
        """Is `a` a zero that addition leaves every value unchanged by: -0.0 for
        floats (-0.0 + +0.0 is +0.0), 0 for integers, False for booleans?"""
        v = self.scalar_const(a)
        if v is None or v != 0:
            return False
        return a.aval.dtype.kind != "f" or bool(np.signbit(v))

    def def_of(self, a: Atom, prim) -> Eqn | None:
        e = self.defs.get(a) if type(a) is Var else None
        return e if e is not None and e.prim is prim else None


def _new(e: Eqn, prim, inputs, params, aval=None) -> Eqn:
    out = Var(aval or e.outvars[0].aval)
    return Eqn(prim, tuple(inputs), (out,), params, e.src, e.phase)


def _broadcast(ctx, e, x, shape):
    """`x` broadcast to `shape`, as an atom or new equations."""
    if type(x) is Lit and x.val.size == 1:
        x = Lit(x.val.reshape(()))
        if shape == ():
            return x
    if x.aval.shape == tuple(shape):
        return x
    return [_new(e, sh.broadcast_p, [x], {"shape": tuple(shape)})]


def r_broadcast(ctx, e, x, *, shape):
    inner = ctx.def_of(x, sh.broadcast_p)
    if inner is not None:  # broadcasts compose (right-aligned)
        return _broadcast(ctx, e, inner.inputs[0], shape)
    if x.aval.shape == shape or (type(x) is Lit and (x.val.ndim > 0 and x.val.size == 1 or shape == ())):
        return _broadcast(ctx, e, x, shape)
    return None


def r_reshape(ctx, e, x, *, shape):
    if x.aval.shape == shape:
        return x
    if type(x) is Lit:
        return Lit(x.val.reshape(shape))
    inner = ctx.def_of(x, sh.reshape_p)
    if inner is not None:
        return r_reshape(ctx, e, inner.inputs[0], shape=shape) or [
            _new(e, sh.reshape_p, [inner.inputs[0]], {"shape": shape})
        ]
    c = ctx.scalar_const(x)
    if c is not None:  # reshape of a broadcast scalar: broadcast it to the new shape
        return _broadcast(ctx, e, Lit(np.asarray(c, x.aval.dtype)), shape)
    return None


def r_transpose(ctx, e, x, *, perm):
    if perm == tuple(range(len(perm))):
        return x
    inner = ctx.def_of(x, sh.transpose_p)
    if inner is not None:
        composed = tuple(inner.params["perm"][p] for p in perm)
        return r_transpose(ctx, e, inner.inputs[0], perm=composed) or [
            _new(e, sh.transpose_p, [inner.inputs[0]], {"perm": composed})
        ]
    return None


def r_convert(ctx, e, x, *, dtype, weak=False):
    return x if x.aval.dtype == dtype and x.aval.weak == weak else None


def _reduction_of(ctx, a):
    """(reduce_sum eqn, reshape shape or None) if `a` is a sum used only here."""
    if type(a) is not Var or ctx.uses[a] != 1:
        return None
    shape = None
    e = ctx.defs.get(a)
    if e is not None and e.prim is sh.reshape_p and type(e.inputs[0]) is Var and ctx.uses[e.inputs[0]] == 1:
        shape, e = e.params["shape"], ctx.defs.get(e.inputs[0])
    if e is None or e.prim is not rd.reduce_sum_p:
        return None
    return e, shape


def r_add(ctx, e, x, y):
    if ctx.is_add_identity(y):
        return x
    if ctx.is_add_identity(x):
        return y
    # a + scatter_add(u, idx) -> scatter_accum(a, u, idx): a gradient flowing into a
    # few elements of a large array (x[i] read in a loop) updates them, not all of it
    for a, b in ((x, y), (y, x)):
        chain = _sparse_chain(ctx, b)
        if chain is not None and a.aval.shape == b.aval.shape and a.aval.dtype == b.aval.dtype:
            out, acc = [], a
            for upd, idx in chain:
                out.append(_new(e, ix.scatter_accum_p, [acc, upd, idx], {}, a.aval))
                acc = out[-1].outvars[0]
                ctx.uses[acc] = 1
            return out
    # unslice(a, s) + unslice(b, s) -> unslice(a + b, s): one zero-filled array, not two
    # (exact: outside the slice +0.0 + +0.0 is +0.0); the gradient of every slice of x
    ua, ub = ctx.def_of(x, sh.unslice_p), ctx.def_of(y, sh.unslice_p)
    if ua is not None and ub is not None and ua.params == ub.params and ctx.uses[x] == ctx.uses[y] == 1:
        a, b = ua.inputs[0], ub.inputs[0]
        if a.aval.shape == b.aval.shape and a.aval.dtype == b.aval.dtype:
            total = _new(
                e, ew.add_p, [a, b], {}, Aval(a.aval.shape, a.aval.dtype, a.aval.weak and b.aval.weak)
            )
            out = _new(e, sh.unslice_p, [total.outvars[0]], ua.params)
            ctx.uses[total.outvars[0]] = 1
            return [total, out]
    if e.phase != "bwd":
        return None
    # sum(a) + sum(b) -> sum(a + b): gradient accumulation over many uses of a
    # broadcast value becomes one reduction inside the fused loop. It rounds
    # differently, so only cotangents are summed this way, never the user's sums.
    rx, ry = _reduction_of(ctx, x), _reduction_of(ctx, y)
    if rx and ry and rx[1] == ry[1] and rx[0].params == ry[0].params:
        a, b = rx[0].inputs[0], ry[0].inputs[0]
        if a.aval == b.aval:
            total = _new(e, ew.add_p, [a, b], {}, a.aval)
            red = _new(rx[0], rd.reduce_sum_p, [total.outvars[0]], rx[0].params, rx[0].outvars[0].aval)
            out = [total, red]
            if rx[1] is not None:
                out.append(_new(e, sh.reshape_p, [red.outvars[0]], {"shape": rx[1]}))
            ctx.uses[out[-1].outvars[0]] = 1
            ctx.uses[red.outvars[0]] = 1
            return out
    return None


def _sparse_chain(ctx, b):
    """b = scatter_accum(...scatter_accum(scatter_add(u0, i0), u1, i1)..., each used
    once: the (update, indices) pairs in order, or None."""
    pairs = []
    while True:
        if type(b) is not Var or ctx.uses[b] != 1:
            return None
        s = ctx.def_of(b, ix.scatter_accum_p)
        if s is None:
            break
        pairs.append(tuple(s.inputs[1:]))
        b = s.inputs[0]
    s = ctx.def_of(b, ix.scatter_add_p)
    if s is None or s.inputs[0].aval.dtype != b.aval.dtype:
        return None
    return [tuple(s.inputs)] + pairs[::-1]


def r_sub(ctx, e, x, y):
    if ctx.is_const(y, 0.0):  # x - +0.0 is x + -0.0: exact
        return x
    return None


def r_mul(ctx, e, x, y):
    if ctx.is_const(y, 1.0):
        return x
    if ctx.is_const(x, 1.0):
        return y
    return None


def r_div(ctx, e, x, y):
    if ctx.is_const(y, 1.0):
        return x
    # x / 2**k is x * 2**-k, exactly (both are the correctly rounded x / 2**k), and a
    # product is several times cheaper than a quotient (S / 8.0 in attention)
    c = ctx.scalar_const(y)
    if (
        c is not None
        and y.aval.dtype.kind == "f"
        and np.isfinite(c)
        and c != 0
        and np.frexp(c)[0] in (0.5, -0.5)
        and np.isfinite(np.asarray(1.0 / c, y.aval.dtype))
        and np.asarray(1.0 / c, y.aval.dtype) != 0
    ):
        spread = _broadcast(ctx, e, Lit(np.asarray(1.0 / c, y.aval.dtype)), y.aval.shape)
        if isinstance(spread, list):
            ctx.uses[spread[-1].outvars[0]] = 1
            return spread + [_new(e, ew.mul_p, [x, spread[-1].outvars[0]], {})]
        return [_new(e, ew.mul_p, [x, spread], {})]
    # (1 / (1 + exp(-z)) is not made logistic(z): that rounds differently, and is
    # 5e-324 where the expression underflows to 0; scipy.special.expit is logistic)
    return None


def r_neg(ctx, e, x):
    inner = ctx.def_of(x, ew.neg_p)
    return inner.inputs[0] if inner is not None else None


def r_pow(ctx, e, x, y):
    # exact rewrites only: x**1 = x, x**2 = x*x (one rounding either way)
    if ctx.is_const(y, 1.0):
        return x
    if ctx.is_const(y, 2.0):
        return [_new(e, ew.mul_p, [x, x], {})]
    if x.aval.dtype.kind != "f":  # integer powers: -1 raises in NumPy
        return None
    # NumPy's power loop computes a scalar exponent of -1 as a reciprocal and of
    # 0.5 as sqrt (sqrt(-0.0) is -0.0 where pow gives +0.0): the same here
    if ctx.is_const(y, -1.0):
        return [_new(e, ew.reciprocal_p, [x], {})]
    if ctx.is_const(y, 0.5):
        return [_new(e, ew.sqrt_p, [x], {})]
    return None


def r_identity(ctx, e, x):
    return x


def r_select(ctx, e, c, x, y):
    v = ctx.scalar_const(c)
    if v is None:
        return None
    return x if v else y


def fold_broadcast_scalars(ctx, e, ins):
    """An elementwise op of scalar constants (maybe broadcast): compute it once."""
    if e.prim.kind != ELEMENTWISE or not ins:
        return None
    vals = [ctx.scalar_const(a) for a in ins]
    if any(v is None for v in vals):
        return None
    dts = [a.aval.dtype for a in ins]
    with np.errstate(all="ignore"):
        r = e.prim.impl(*[np.asarray(v, dt) for v, dt in zip(vals, dts)], **e.params)
    out = e.outvars[0].aval
    return _broadcast(ctx, e, Lit(np.asarray(r, out.dtype)), out.shape)


RULES = {
    sh.broadcast_p: r_broadcast,
    sh.reshape_p: r_reshape,
    sh.transpose_p: r_transpose,
    ew.convert_p: r_convert,
    ew.add_p: r_add,
    ew.sub_p: r_sub,
    ew.mul_p: r_mul,
    ew.div_p: r_div,
    ew.neg_p: r_neg,
    ew.pow_p: r_pow,
    ew.stop_gradient_p: r_identity,
    ew.copy_p: r_identity,  # values are immutable: the boundary pass copies what must be
    ew.select_p: r_select,
}


def _fold(e: Eqn, ins) -> Lit | None:
    if e.prim.kind == REGION or e.prim.nout != 1 or not all(type(a) is Lit for a in ins):
        return None
    if e.prim is sh.broadcast_p:  # broadcast of a scalar literal is the canonical constant
        return None
    aval = e.outvars[0].aval
    if aval.size > FOLD_MAX_SIZE:
        return None
    with np.errstate(all="ignore"):
        val = np.asarray(e.prim.impl(*[a.val for a in ins], **e.params), dtype=aval.dtype)
    return Lit(val, aval)


def simplify(ir: IR) -> IR:
    uses: Counter = Counter(a for e in ir.eqns for a in e.inputs if type(a) is Var)
    uses.update(v for v in ir.outvars if type(v) is Var)
    ctx = Ctx(uses)
    sub: dict[Var, Atom] = {}
    out: list[Eqn] = []

    def emit(eqn: Eqn):
        out.append(eqn)
        for v in eqn.outvars:
            ctx.defs[v] = eqn

    for e in ir.eqns:
        ins = tuple(sub.get(a, a) if type(a) is Var else a for a in e.inputs)
        if ins != e.inputs:
            e = Eqn(e.prim, ins, e.outvars, e.params, e.src, e.phase)
        folded = _fold(e, ins)
        if folded is not None:
            sub[e.outvars[0]] = folded
            continue
        res = fold_broadcast_scalars(ctx, e, ins)
        if res is None:
            rule = RULES.get(e.prim)
            res = rule(ctx, e, *ins, **e.params) if rule is not None else None
        if res is None:
            emit(e)
        elif isinstance(res, list):
            for new in res:
                emit(new)
            sub[e.outvars[0]] = res[-1].outvars[0]
        else:
            sub[e.outvars[0]] = res
    outvars = [sub.get(v, v) if type(v) is Var else v for v in ir.outvars]
    return IR(ir.invars, out, outvars)


def _freeze(v: Any):
    if isinstance(v, IR):
        return ("ir", id(v))
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    return v


def cse(ir: IR) -> IR:
    """Common-subexpression elimination: one equation per (op, inputs, params)."""
    seen: dict[Any, tuple[Var, ...]] = {}
    sub: dict[Var, Atom] = {}
    out = []
    for e in ir.eqns:
        ins = tuple(sub.get(a, a) if type(a) is Var else a for a in e.inputs)
        key = (e.prim.name, tuple(a.id if type(a) is Var else a.key() for a in ins), _freeze(e.params))
        prev = seen.get(key)
        if prev is not None:
            sub.update(zip(e.outvars, prev))
            continue
        if ins != e.inputs:
            e = Eqn(e.prim, ins, e.outvars, e.params, e.src, e.phase)
        seen[key] = e.outvars
        out.append(e)
    outvars = [sub.get(v, v) if type(v) is Var else v for v in ir.outvars]
    return IR(ir.invars, out, outvars)


__all__ = ["simplify", "cse", "ELEMENTWISE"]
