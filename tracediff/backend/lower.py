"""The target-neutral lowering every writer shares.

An optimized program is walked equation by equation (`Lowering`): each value
gets a name, array literals become constants passed as arguments, and the
walk knows when each value is last read and which arrays the code owns (so a
writer may update an array in place). A fused region lowers to a `RegionPlan`:
its domain (the loop nest's index space), its scalar statements (each placed at
the outermost loop level it depends on), its loads through index maps
(broadcast, reshape, transpose, slice, unslice become index arithmetic), its
reduction descriptors and its stores.

Expressions in a plan are Python expressions over the loop indices `i0, i1, ...`
that both Numba targets read; what a writer adds is the loop structure
(CPU: loop nests, chunks, block buffers; CUDA: grid-stride kernels, block tree
reductions) and the scalar code of each primitive for its target
(`Target.scalar_code`, registered next to each primitive).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..core import ELEMENTWISE, IR, Eqn, Lit, Primitive, Var
from ..prims import elementwise as ew
from ..prims import shape as sh
from ..prims.region import fused_p
from .base import INDEX_OPS, REDUCTIONS, EmitError, Names, Target, acc_dtype
from .literals import dtype_ctor, literal

# index maps inside a region: what a load reads through (a view or a placement)
MAPS = INDEX_OPS + (sh.transpose_p, sh.slice_p)


@dataclass
class Stmt:
    """`name = <prim's scalar code>(args)` at loop level `depth` (0: before the loops)."""

    name: str
    prim: Primitive
    dtype: np.dtype
    args: list[str]
    depth: int

    def code(self, target: Target) -> str:
        code = target.scalar_code(self.prim, self.dtype).format(*self.args)
        if self.dtype.kind in "iu" and self.dtype.itemsize < 8:
            # Numba computes narrow integers in 64 bits: wrap as NumPy does
            code = f"{dtype_ctor(self.dtype)}({code})"
        return code


@dataclass
class Reduction:
    """`out` = the `kind` reduction of `value` over `axes` of the domain."""

    kind: str  # sum, prod, max, min
    axes: tuple[int, ...]
    value: str  # the summand at the full index
    value_dtype: np.dtype
    out: Var  # the program's value
    acc: np.dtype  # the accumulator's dtype (the target's choice)
    after: int = 0  # how many of the plan's statements come before it in the region

    @property
    def suffix(self) -> bool:
        return self.axes == tuple(range(min(self.axes), min(self.axes) + len(self.axes)))


@dataclass
class RegionPlan:
    domain: tuple[int, ...]
    cost: int  # operations per element
    may_raise: bool
    stmts: list[Stmt] = field(default_factory=list)
    reductions: list[Reduction] = field(default_factory=list)
    stores: list[tuple[Var, str, int]] = field(default_factory=list)  # (out, expr, depth)
    reads: dict = field(default_factory=dict)  # program array -> the index tuples it is read at

    @property
    def rank(self) -> int:
        return len(self.domain)

    @property
    def size(self) -> int:
        return int(np.prod(self.domain))

    @property
    def index(self) -> list[str]:
        return [f"i{k}" for k in range(self.rank)]


def region_cost(body: IR) -> int:
    """Operations per element of a region's loop: what decides whether waking
    threads pays (a 1M-element loop of 40 tanh does; a 1M-element add does not)."""
    return max(sum(e.prim.cost for e in body.eqns if e.prim not in MAPS), 1)


def singleton_region(e: Eqn) -> Eqn:
    """Wrap a lone compute equation (optimizer off) into a one-op region."""
    ins = [a for a in e.inputs if type(a) is Var]
    ren = {v: Var(v.aval) for v in dict.fromkeys(ins)}
    outs = tuple(Var(v.aval) for v in e.outvars)
    body_eqn = Eqn(
        e.prim, tuple(ren.get(a, a) if type(a) is Var else a for a in e.inputs), outs, e.params, e.src
    )
    body = IR([ren[v] for v in ren], [body_eqn], list(outs))
    return Eqn(fused_p, tuple(ren), e.outvars, {"body": body, "name": "loop"}, e.src)


def copy_region(e: Eqn) -> Eqn:
    """A shape operation (`e`: broadcast, transpose, slice, reshape, unslice) as a
    one-op region that materializes its result: the map becomes index arithmetic."""
    x = e.inputs[0]
    xin = Var(x.aval) if type(x) is Var else x
    mid, res = Var(e.outvars[0].aval), Var(e.outvars[0].aval)
    body = IR(
        [xin] if type(x) is Var else [],
        [Eqn(e.prim, (xin,), (mid,), e.params), Eqn(ew.stop_gradient_p, (mid,), (res,), {})],
        [res],
    )
    return Eqn(fused_p, (x,) if type(x) is Var else (), e.outvars, {"body": body, "name": "copy"}, e.src)


def _imports(ir: IR, target: str) -> list[str]:
    """The import lines of every primitive in `ir` and its regions, in first-use order."""
    from ..prims.control import regions

    out: dict[str, None] = {}
    for e in ir.eqns:
        out.update(dict.fromkeys(e.prim.imports.get(target, ())))
        for body in regions(e.params):
            out.update(dict.fromkeys(_imports(body, target)))
    return list(out)


class Lowering:
    """The walk over a program shared by every writer: names, constants, liveness.

    A writer subclasses it with `region(eqn)` (a fused region), `op_<prim>`
    methods (the other operations) and `scalar_ref(atom)` (how a loop reads a
    0-d program value)."""

    def __init__(self, ir: IR, target: Target):
        # the import lines the program's primitives ask for join the target's header
        extra = [ln for ln in _imports(ir, target.name) if ln not in target.header]
        self.ir, self.target = ir, (replace(target, header=target.header + extra) if extra else target)
        self.name = Names("v")
        self.consts: list[np.ndarray] = []  # array literals passed as arguments
        self.const_names: dict[int, str] = {}

    def const(self, lit: Lit) -> str:
        if lit.val.ndim == 0:
            return literal(lit.val, lit.aval.dtype)
        key = id(lit.val)
        if key not in self.const_names:
            self.const_names[key] = f"const{len(self.consts)}"
            self.consts.append(np.ascontiguousarray(lit.val, dtype=lit.aval.dtype))
        return self.const_names[key]

    def atom(self, a) -> str:
        return self.const(a) if type(a) is Lit else self.name(a)

    def scalar_ref(self, a) -> str:
        return self.atom(a)

    def array_ref(self, a, arr: str, index: list[str]) -> str:
        """How a loop reads the array `a` (named `arr`) at `index`."""
        return f"{arr}[{', '.join(index)}]" if index else f"{arr}[()]"

    def group_ref(self, a, index: list[str]) -> str | None:
        """How a loop reads `a` at `index` when `a` is made inside the same loop
        nest (a writer that groups regions), else None."""
        return None

    def walk(self, eqns, outvars, owned) -> None:
        """Lower `eqns`, knowing which arrays this code owns and when each value is
        last read: an update (scatter) of an owned array read by nobody afterwards
        may store into it in place instead of copying it (an in-place loop is O(n))."""
        last: dict[Var, int] = {}
        for j, e in enumerate(eqns):
            for a in e.inputs:
                if type(a) is Var:
                    last[a] = j
        for o in outvars:
            if type(o) is Var:
                last[o] = len(eqns)
        saved = getattr(self, "ctx", None)
        self.ctx = ctx = {"last": last, "owned": set(owned), "base": {}, "j": 0}
        try:
            for j, e in enumerate(eqns):
                ctx["j"] = j
                self.eqn(e)
                if e.prim.may_alias and e.inputs and type(e.inputs[0]) is Var:
                    x = e.inputs[0]
                    ctx["base"].update((v, ctx["base"].get(x, x)) for v in e.outvars)
                elif not e.prim.may_alias:
                    ctx["owned"].update(e.outvars)
        finally:
            self.ctx = saved
            self.walked_bases = ctx["base"]  # (the views of the sequence just walked)

    def may_update(self, x) -> bool:
        """Can the value x be overwritten now (owned, and dead after this equation)?"""
        ctx = getattr(self, "ctx", None)
        if ctx is None or type(x) is not Var or x not in ctx["owned"] or ctx["last"].get(x) != ctx["j"]:
            return False
        j = ctx["j"]
        return not any(b is x and ctx["last"].get(v, -1) > j for v, b in ctx["base"].items())

    def base_of(self, x):
        """The array whose buffer x views (x itself if it is no view)."""
        ctx = getattr(self, "ctx", None)
        return ctx["base"].get(x, x) if ctx is not None else x

    def eqn(self, e: Eqn):
        p = e.prim
        if p is fused_p:
            self.region(e)
        elif p.kind == ELEMENTWISE or p in REDUCTIONS:
            self.region(singleton_region(e))
        else:
            method = getattr(self, f"op_{p.name}", None)
            if method is not None:
                method(e, *e.inputs, **e.params)
            elif self.target.name in p.call:
                self.library_call(e)
            else:
                raise EmitError(f"the {self.target.name} backend cannot compile {p.name} yet")

    def library_call(self, e: Eqn) -> None:
        """An operation the primitive writes as one call (`Primitive.call`): its
        outputs are fresh C-contiguous arrays (or scalars)."""
        expr = e.prim.call[self.target.name].format(*(self.call_arg(a) for a in e.inputs), **e.params)
        outs = [self.out_var(v) for v in e.outvars]
        self.emit(f"{', '.join(outs)}{',' if len(outs) == 1 and e.prim.nout != 1 else ''} = {expr}")

    def call_arg(self, a) -> str:
        return self.atom(a)

    def out_var(self, v: Var) -> str:
        return self.name(v)

    def region(self, e: Eqn) -> None:
        raise NotImplementedError

    def plan(self, e: Eqn) -> RegionPlan:
        return RegionLowering(self, e).run()


class RegionLowering:
    """One fused region -> its `RegionPlan`."""

    def __init__(self, prog: Lowering, eqn: Eqn):
        self.prog, self.eqn = prog, eqn
        self.body: IR = eqn.params["body"]
        first = next(e for e in self.body.eqns if e.prim not in MAPS)
        domain = first.inputs[0].aval.shape if first.prim in REDUCTIONS else first.outvars[0].aval.shape
        # an exception cannot leave a parallel loop: a writer runs loops that may raise serially
        may_raise = any(e.outvars[0].aval.dtype.kind in e.prim.raises_for for e in self.body.eqns)
        self.plan = RegionPlan(tuple(domain), region_cost(self.body), may_raise)
        self.rank = len(domain)
        self.tnames = Names(prog.name.fresh("r") + "_t")
        self.scalar: dict[Var, tuple[str, int]] = {}  # body var -> (expression, depth)
        self.index_def: dict[Var, Eqn] = {}
        self.outer = dict(zip(self.body.invars, eqn.inputs))  # body input -> program atom
        self.results = dict(zip(self.body.outvars, eqn.outvars))

    # --- loads ------------------------------------------------------------------------
    def load(self, v, index: list[str]) -> tuple[str, int]:
        """Scalar expression of `v` at `index` (index expressions of v's shape), and
        the loop level it depends on."""
        if type(v) is Lit:
            if v.val.ndim == 0:
                return literal(v.val, v.aval.dtype), 0
            return self.prog.array_ref(v, self.prog.const(v), index), self._depth(index)
        e = self.index_def.get(v)
        if e is not None:
            return self._load_mapped(e, v, index)
        if v in self.scalar:
            if index != self.plan.index:
                raise EmitError("internal: a loop value read at another index (fusion must split here)")
            return self.scalar[v]
        outer = self.outer[v]
        if v.aval.ndim == 0:
            return self.prog.scalar_ref(outer), 0
        ref = self.prog.group_ref(outer, index)  # a value of the loop nest's group
        if ref is not None:
            return ref, self._depth(index)
        if type(outer) is Var:
            self.plan.reads.setdefault(outer, set()).add(tuple(index))
        return self.prog.array_ref(outer, self.prog.atom(outer), index), self._depth(index)

    def _load_mapped(self, e: Eqn, v: Var, index: list[str]) -> tuple[str, int]:
        x = e.inputs[0]
        if e.prim is sh.broadcast_p:
            lead = len(e.params["shape"]) - x.aval.ndim
            sub = [
                "0" if d == 1 and e.params["shape"][lead + j] != 1 else index[lead + j]
                for j, d in enumerate(x.aval.shape)
            ]
            return self.load(x, sub)
        if e.prim is sh.unslice_p:
            return self._load_unslice(x, index, e.params["spec"], e.params["shape"], v.aval.dtype)
        if e.prim is sh.transpose_p:
            sub = [""] * x.aval.ndim
            for k, p in enumerate(e.params["perm"]):
                sub[p] = index[k]
            return self.load(x, sub)
        if e.prim is sh.slice_p:
            sub = []
            for i, (start, _stop, step) in zip(index, e.params["spec"]):
                sub.append(i if (start, step) == (0, 1) else f"({start} + {i} * {step})")
            return self.load(x, sub)
        return self.load(x, reshape_index(index, v.aval.shape, x.aval.shape))

    def _load_unslice(self, x, index, spec, shape, dt) -> tuple[str, int]:
        """x placed at a slice of zeros: a conditional load (no test on an axis the
        slice covers whole, as a batch axis)."""
        conds, sub = [], []
        for i, (start, _stop, step), n, full in zip(index, spec, x.aval.shape, shape):
            off = f"({i} - {start})"
            if (start, step) == (0, 1) and n == full:
                sub.append(i)
                continue
            if step == 1:
                j = off
                conds.append(f"0 <= {off} < {n}")
            else:
                j = f"({off} // {step})"
                conds.append(f"{off} % {step} == 0 and 0 <= {j} < {n}")
            sub.append(j)
        val, depth = self.load(x, sub)
        depth = max(depth, self._depth(index))
        cond = " and ".join(conds) or "True"
        return f"({val} if ({cond}) else {literal(0, dt)})", depth

    def _depth(self, index: list[str]) -> int:
        depth = 0
        for s in index:
            toks = tokens(s)
            for k in range(self.rank):
                if f"i{k}" in toks:
                    depth = max(depth, k + 1)
        return depth

    def _subscript(self, arr: str, index: list[str]) -> tuple[str, int]:
        return (f"{arr}[{', '.join(index)}]" if index else f"{arr}[()]"), self._depth(index)

    # --- the plan ---------------------------------------------------------------------
    def run(self) -> RegionPlan:
        plan, full = self.plan, self.plan.index
        for e in self.body.eqns:
            if e.prim in MAPS:
                self.index_def[e.outvars[0]] = e
            elif e.prim in REDUCTIONS:
                x = e.inputs[0]
                out = self.results[e.outvars[0]]
                kind = REDUCTIONS[e.prim]
                val, _ = self.load(x, full)
                acc = acc_dtype(kind, out.aval.dtype, self.prog.target)
                axes = tuple(e.params["axes"])
                plan.reductions.append(Reduction(kind, axes, val, x.aval.dtype, out, acc, len(plan.stmts)))
            else:
                ops = [self.load(a, full) for a in e.inputs]
                depth = max((d for _, d in ops), default=0)
                name = self.tnames(e.outvars[0])
                plan.stmts.append(Stmt(name, e.prim, e.outvars[0].aval.dtype, [x for x, _ in ops], depth))
                self.scalar[e.outvars[0]] = (name, depth)
        for bv, ov in self.results.items():  # elementwise results are stored at the full index
            if bv in self.scalar or bv in self.index_def or bv in self.outer:
                expr, depth = self.load(bv, full)
                plan.stores.append((ov, expr, depth))
        return plan


def tokens(s: str) -> set[str]:
    out, cur = set(), ""
    for ch in s + " ":
        if ch.isalnum() or ch == "_":
            cur += ch
        else:
            if cur:
                out.add(cur)
            cur = ""
    return out


def reshape_index(index: list[str], out_shape, in_shape) -> list[str]:
    """Index of `in_shape` for the element at `index` of the reshaped `out_shape`."""
    a = [(i, d) for i, d in zip(index, out_shape) if d != 1]
    b = [d for d in in_shape if d != 1]
    if [d for _, d in a] == b:  # only unit axes inserted or removed
        it = iter(i for i, _ in a)
        return [next(it) if d != 1 else "0" for d in in_shape]
    flat = "0"
    for i, d in zip(index, out_shape):
        flat = f"({flat}) * {d} + {i}"
    res, rest = [], flat
    strides = [int(np.prod(in_shape[k + 1 :])) for k in range(len(in_shape))]
    for d, st in zip(in_shape, strides):
        res.append(f"(({rest}) // {st}) % {d}" if st != 1 else f"({rest}) % {d}")
    return res
