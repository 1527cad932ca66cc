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

import contextlib
import contextvars
from collections.abc import Sequence

import numpy as np

from .builder import bind, trace
from .core import IR, REGISTRY, Aval, Lit, Var
from .interpret import eval_ir
from .provenance import src_context

# --- what the batching rules share --------------------------------------------------------
# A batched value carries its batch along one axis, `dim`, or none (`None`: the same
# for every member). Rules move batch axes and broadcast with primitives, so a batched
# program is ordinary IR. Most rules put the batch first (`to_front`); a scan keeps
# its stacked results' batch on axis 1 instead of transposing a tape.


class NotBatchable(Exception):
    """A rule cannot batch this equation (e.g. a loop whose trip count differs
    across the batch and whose tape is read back): the caller falls back to a
    loop over the batch for the whole program."""


def _bind(name: str, *args, **params):
    # primitives by name: this engine sits below the primitives that use it
    return bind(REGISTRY[name], *args, **params)


def shape_of(x) -> tuple:
    return tuple(np.shape(x)) if not hasattr(x, "aval") else x.aval.shape


def move_axis(x, src: int, dst: int):
    if src == dst:
        return x
    perm = [i for i in range(len(shape_of(x))) if i != src]
    perm.insert(dst, src)
    return _bind("transpose", x, perm=tuple(perm))


def broadcast_front(x, size: int):
    """x, the same for each member: repeated along a new leading batch axis."""
    return _bind("broadcast", x, shape=(size,) + shape_of(x))


def to_front(x, dim: int | None, size: int):
    """x with its batch on axis 0 (broadcast there when it has none)."""
    return broadcast_front(x, size) if dim is None else move_axis(x, dim, 0)


def elementwise_rule(prim):
    """Elementwise operands have equal shapes. Batched ones that share their batch
    axis keep it (no transpose; the others are broadcast along it); otherwise every
    operand is brought to the batch on axis 0."""

    def rule(args, dims, size, **params):
        batched_dims = {d for d in dims if d is not None}
        if len(batched_dims) == 1:
            (d,) = batched_dims
            shape = next(shape_of(x) for x, e in zip(args, dims) if e is not None)
            ins = [x if e is not None else _along(x, d, shape) for x, e in zip(args, dims)]
            return [bind(prim, *ins, **params)], [d]
        ins = [to_front(x, d, size) for x, d in zip(args, dims)]
        return [bind(prim, *ins, **params)], [0]

    return rule


def _along(x, d: int, shape: tuple):
    """x, the same for every member, broadcast to the batched `shape` (batch on axis d)."""
    own = shape_of(x)
    if d:
        x = _bind("reshape", x, shape=own[:d] + (1,) + own[d:])
    return _bind("broadcast", x, shape=tuple(shape))


def flat_offsets(idx, size: int, stride: int):
    """Flat indices into one member's raveled operand, made indices into the raveled
    batch (member b's block starts at b * stride); `idx` has its batch on axis 0."""
    shape = shape_of(idx)
    dt = idx.aval.dtype if hasattr(idx, "aval") else np.asarray(idx).dtype
    base = (np.arange(size, dtype=dt) * dt.type(stride)).reshape((size,) + (1,) * (len(shape) - 1))
    return _bind("add", _bind("broadcast", base, shape=shape), idx)


def size_of(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def batched_avals(values):
    """The avals of traced values or constants (to trace a region over them)."""
    out = []
    for x in values:
        if hasattr(x, "aval"):
            out.append(x.aval.strong())
        else:
            a = np.asarray(x)
            out.append(Aval(a.shape, a.dtype))
    return out


def carry_fixed_point(body: IR, lead: list[bool], carry_b: list[bool], rest_b: list[bool], size: int):
    """Which carries are batched: those batched on entry, and those the body makes
    depend on the batch (a carry batched after one step is batched on entry)."""
    while True:
        _, out_b = batch_region(body, lead + carry_b + rest_b, size)
        new = [a or b for a, b in zip(carry_b, out_b)]
        if new == carry_b:
            return carry_b
        carry_b = new


def front_all(args, dims, size, want):
    """The operands with their batch on axis 0 where batched; those `want` flags
    are broadcast there when they have none."""
    return [
        to_front(x, d, size) if w else (move_axis(x, d, 0) if d is not None else x)
        for x, d, w in zip(args, dims, want)
    ]


def select_rows(p, new, old):
    """Per member of the batch, `new` where p holds, else `old` (p: [B] bool)."""
    shape = shape_of(new)
    m = _bind("reshape", p, shape=shape[:1] + (1,) * (len(shape) - 1))
    return _bind("select", _bind("broadcast", m, shape=shape), new, old)


# --- which members an equation runs for -------------------------------------------------
# Where the members of a batch take different paths (an `if` or a `while` whose test
# differs across the batch), every path runs for the whole batch and each member keeps
# its own path's results. ACTIVE is the mask of the members whose path is being traced
# ([B] bool, batch on axis 0): a check that raises (an index out of range) checks only
# them, since a member that did not take this path may hold values its own path rules
# out (the index a loop stopped at).

ACTIVE: contextvars.ContextVar = contextvars.ContextVar("ACTIVE", default=None)


@contextlib.contextmanager
def active(mask, replace: bool = False):
    """Trace with `mask` as the members that run (and the enclosing mask, unless
    `replace`)."""
    outer = ACTIVE.get()
    if mask is not None and outer is not None and not replace:
        mask = _bind("logical_and", outer, mask)
    token = ACTIVE.set(mask)
    try:
        yield
    finally:
        ACTIVE.reset(token)


def only_active(x, d: int | None, size: int, safe):
    """x (batched along d), with `safe` in the members that do not run."""
    mask = ACTIVE.get()
    if mask is None:
        return x, d
    x = to_front(x, d, size)
    return select_rows(
        mask, x, _bind("broadcast", np.asarray(safe, dtype=x.aval.dtype), shape=shape_of(x))
    ), 0


# --- the transformation ------------------------------------------------------------------


def batched_aval(a: Aval, dim: int | None, size: int) -> Aval:
    if dim is None:
        return a
    shape = list(a.shape)
    shape.insert(dim, size)
    return Aval(tuple(shape), a.dtype)


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
            if any(type(x) is Basis for x in vals):
                rule = BASIS_RULES.get(e.prim.name)
                got = rule(vals, **e.params) if rule is not None else None
                if got is not None:
                    env.update((v, (o, 0 if type(o) is Basis else d)) for v, (o, d) in zip(e.outvars, got))
                    continue
                vals = [x.materialize() if type(x) is Basis else x for x in vals]
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
    return [x.materialize() if type(x) is Basis else x for x, _ in res], [d for _, d in res]


# --- a symbolic basis: jacfwd's tangents ---------------------------------------------------


class Basis:
    """A batched value, batch on axis 0, whose member b is row b of the identity of
    size `size`, restricted to columns [start, start + n) and shaped `shape`: the
    tangents `jacfwd` pushes through a program. Kept symbolic through reshapes and
    conversions, so a matrix product with it selects the matrix's columns (A e_i
    is A's column i) instead of multiplying by an identity; any other use
    materializes it."""

    def __init__(self, size: int, start: int, shape: tuple, dtype):
        self.size, self.start, self.shape, self.dtype = size, start, tuple(shape), np.dtype(dtype)
        self._made = (None, None)

    @property
    def n(self) -> int:
        return size_of(self.shape)

    def materialize(self):
        """The basis as a traced array, made once per trace (CSE cannot merge two: their
        index constants are different arrays)."""
        from .builder import current_builder

        b = current_builder()
        if self._made[0] is not b:
            self._made = (b, self._make())
        return self._made[1]

    def _make(self):
        n, rows = self.n, np.arange(self.size, dtype=np.int64).reshape(self.size, 1)
        cols = np.arange(self.start, self.start + n, dtype=np.int64).reshape(1, n)
        eye = _bind(
            "eq",
            _bind("broadcast", rows, shape=(self.size, n)),
            _bind("broadcast", cols, shape=(self.size, n)),
        )
        eye = _bind("convert", eye, dtype=self.dtype)
        return _bind("reshape", eye, shape=(self.size,) + self.shape)

    def place(self, x, axis: int):
        """x, whose `axis` holds one slice per member of the block, placed at the
        block's positions along a batch axis of `size`, zeros elsewhere."""
        shape = shape_of(x)
        if self.start == 0 and self.n == self.size:
            return x
        spec = tuple(
            (self.start, self.start + self.n, 1) if i == axis else (0, d, 1) for i, d in enumerate(shape)
        )
        full = shape[:axis] + (self.size,) + shape[axis + 1 :]
        return _bind("unslice", x, shape=full, spec=spec)


def _basis_reshape(vals, *, shape):
    (b,) = vals
    return [(Basis(b.size, b.start, shape, b.dtype), 0)]


def _basis_convert(vals, *, dtype, weak=False):
    (b,) = vals
    return [(Basis(b.size, b.start, b.shape, dtype), 0)] if np.dtype(dtype).kind == "f" else None


def _basis_matmul(vals):
    x, y = vals
    if type(y) is Basis and type(x) is not Basis and len(shape_of(x)) == 2 and y.shape == (shape_of(x)[1], 1):
        # member b: x @ e_b = column b of x, as [m, 1]: x itself, its columns the batch
        m = shape_of(x)[0]
        return [(_bind("reshape", y.place(x, 1), shape=(m, y.size, 1)), 1)]
    if type(x) is Basis and type(y) is not Basis and len(shape_of(y)) == 2 and x.shape == (1, shape_of(y)[0]):
        # member b: e_b^T @ y = row b of y, as [1, n]
        n = shape_of(y)[1]
        return [(_bind("reshape", x.place(y, 0), shape=(x.size, 1, n)), 0)]
    return None


BASIS_RULES = {"reshape": _basis_reshape, "convert": _basis_convert, "matmul": _basis_matmul}


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
        with active(None, replace=True):  # (a mask of the enclosing trace is not this one's)
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
    loop_p, gather_p, scatter_p = REGISTRY["loop"], REGISTRY["gather"], REGISTRY["scatter"]
    broadcast_p, reshape_p = REGISTRY["broadcast"], REGISTRY["reshape"]
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
        res = eval_ir(ir, rows)
        new = []
        for c, r, a in zip(carry, res, ir.out_avals):
            r = bind(reshape_p, to_front(r, None, 1), shape=(size_of(a.shape),))
            new.append(bind(scatter_p, c, r, row_index(i, a.shape), unique=True))
        return new

    body_ir, captured = trace(body, [Aval((), i64)] + outs0 + batched_avals(fronted))
    assert not captured
    init = [bind(broadcast_p, np.zeros((), a.dtype), shape=a.shape) for a in outs0]
    outs = bind(loop_p, *init, *fronted, body=body_ir, start=0, step=1, n=size, n_carry=n_out)
    outs = outs if isinstance(outs, list) else [outs]
    return [_place(o, 0, want, size) for o, want in zip(outs, out_dims)]
