"""Batching (`vmap`) as an IR -> IR transformation.

`batch_eval` re-stages a program with some inputs carrying a batch axis: an
equation none of whose operands is batched is re-emitted as it is (computed
once for the whole batch); any other calls its primitive's batching rule
(`Primitive.batch`, next to the primitive's other rules), which emits batched
primitives. The result is ordinary IR, so it is differentiated, optimized,
fused and compiled like any other program: a batch of small problems becomes
the same few loops over a larger domain, not a Python loop.

Where a rule cannot keep the semantics with a batched operand (a `while`
loop's tape of a trip count that differs across the batch, read back by a
reverse scan), it raises `NotBatchable` and `batch_ir` falls back to one
counted loop over the members of the batch running the whole program: slower,
never wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .builder import bind, trace
from .core import IR, Aval, Lit, Var
from .prims.batching import NotBatchable, broadcast_front, flat_offsets, move_axis, size_of, to_front
from .provenance import src_context


def batched_aval(a: Aval, dim: int | None, size: int) -> Aval:
    if dim is None:
        return a
    shape = list(a.shape)
    shape.insert(dim, size)
    return Aval(tuple(shape), a.dtype, a.weak and False)


def batch_eval(ir: IR, args: Sequence, dims: Sequence[int | None], size: int):
    """Trace `ir` on `args` (batched along `dims`) into the current builder;
    returns (outputs, their batch dims)."""
    env: dict[Var, tuple] = {v: (a, d) for v, a, d in zip(ir.invars, args, dims)}

    def read(a):
        return (a.val, None) if type(a) is Lit else env[a]

    for e in ir.eqns:
        ins = [read(a) for a in e.inputs]
        vals = [x for x, _ in ins]
        ds = [d for _, d in ins]
        with src_context(e.src):
            if all(d is None for d in ds):
                outs = bind(e.prim, *vals, **e.params)
                outs = outs if e.prim.nout != 1 else [outs]
                out_dims = [None] * len(outs)
            else:
                if e.prim.batch is None:
                    raise NotBatchable(f"{e.prim.name} has no batching rule")
                outs, out_dims = e.prim.batch(vals, ds, size, **e.params)
        env.update((v, (o, d)) for v, o, d in zip(e.outvars, outs, out_dims))
    res = [read(o) for o in ir.outvars]
    return [x for x, _ in res], [d for _, d in res]


def batch_region(region: IR, in_batched: list[bool], size: int, force=None) -> tuple[IR, list[bool]]:
    """`region` with the inputs flagged batched on axis 0: (IR, out_batched).

    Batched outputs come out on axis 0; `force` (a list of bools, or True for
    all) makes those outputs batched even where they do not depend on the batch.
    """
    n = len(region.outvars)
    force = [True] * n if force is True else list(force or [False] * n)
    dims_in = [0 if b else None for b in in_batched]
    out_batched: list[bool] = []

    def fn(*args):
        outs, dims = batch_eval(region, args, dims_in, size)
        res = []
        for o, d, f in zip(outs, dims, force):
            res.append(to_front(o, d, size) if (d is not None or f) else o)
            out_batched.append(d is not None or f)
        return res

    avals = [batched_aval(v.aval, d, size) for v, d in zip(region.invars, dims_in)]
    new, captured = trace(fn, avals)
    if captured:  # a region's inputs are explicit: nothing may come from outside
        raise NotBatchable("a batched region captured an outer value")
    return new, out_batched


def batch_ir(ir: IR, dims: Sequence[int | None], size: int, out_dims: Sequence[int | None]) -> IR:
    """IR taking the inputs batched along `dims` and giving outputs batched along
    `out_dims` (None: the output must not depend on the batch)."""
    avals = [batched_aval(v.aval, d, size) for v, d in zip(ir.invars, dims)]

    def by_rules(*args):
        outs, got = batch_eval(ir, args, dims, size)
        return [_place(o, d, want, size) for o, d, want in zip(outs, got, out_dims)]

    try:
        new, captured = trace(by_rules, avals)
    except NotBatchable:
        new, captured = trace(lambda *args: _loop_over_batch(ir, args, dims, size, out_dims), avals)
    assert not captured
    return new


class BatchError(ValueError):
    pass


def _place(o, d, want, size):
    if want is None:
        if d is not None:
            raise BatchError("an output with out_axes None depends on the batched inputs")
        return o
    if d is None:
        o = broadcast_front(o, size)
        d = 0
    return move_axis(o, d, want)


def _loop_over_batch(ir: IR, args, dims, size: int, out_dims):
    """The fallback: a counted loop over the batch's members, each running `ir` on
    its rows and storing its outputs into rows of the results."""
    from .prims.control import loop_p
    from .prims.indexing import gather_p, scatter_p
    from .prims.shape import broadcast_p, reshape_p

    fronted = [to_front(a, d, size) if d is not None else a for a, d in zip(args, dims)]
    outs0 = [batched_aval(a, 0, size) for a in ir.out_avals]
    n_out = len(outs0)
    i64 = np.dtype(np.int64)

    def row_index(i, shape):
        n = size_of(shape)
        return bind(broadcast_p, i * np.int64(n), shape=(n,)) + np.arange(n, dtype=i64)

    def body(i, *rest):
        carry, ins = rest[:n_out], rest[n_out:]
        rows = []
        for x, d, v in zip(ins, dims, ir.invars):
            if d is None:
                rows.append(x)
            else:
                shape = v.aval.shape
                flat = bind(gather_p, x, row_index(i, shape))
                rows.append(bind(reshape_p, flat, shape=shape))
        from .interpret import eval_ir

        res = eval_ir(ir, rows)
        new = []
        for c, r, a in zip(carry, res, ir.out_avals):
            r = bind(reshape_p, to_front(r, None, 1), shape=(size_of(a.shape),))
            new.append(bind(scatter_p, c, r, row_index(i, a.shape), unique=True))
        return new

    body_ir, captured = trace(body, [Aval((), i64)] + outs0 + [v.aval for v in _avals_of(fronted)])
    assert not captured
    init = [bind(broadcast_p, np.zeros((), a.dtype), shape=a.shape) for a in outs0]
    outs = bind(loop_p, *init, *fronted, body=body_ir, start=0, step=1, n=size, n_carry=n_out)
    outs = outs if isinstance(outs, list) else [outs]
    return [_place(o, 0, want, size) if want is not None else _unbatch(o) for o, want in zip(outs, out_dims)]


def _unbatch(o):
    raise BatchError("an output with out_axes None depends on the batched inputs")


class _V:
    def __init__(self, aval):
        self.aval = aval


def _avals_of(values):
    from .numpy_api import aval_of

    return [_V(aval_of(x)) for x in values]


__all__ = ["NotBatchable", "batch_eval", "batch_ir", "batch_region", "batched_aval", "flat_offsets"]
