"""The CPU writer of one fused region: a loop nest inside the kernel. Statements
sit at the loop level the plan gives them (loop-invariant code motion); a
reduction becomes a register accumulator, a per-chunk partial, or a block
buffer summed after each block (so LLVM vectorizes the compute loop); a large
loop runs in parallel chunks of its first axis, each chunk outlined into a
function of its own."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from ..base import combine, identity
from ..literals import dtype_ctor
from ..lower import Reduction, RegionPlan, tokens
from .scatter import scatter_index

if TYPE_CHECKING:
    from .writer import CpuWriter


class RegionWriter:
    """One fused region's plan -> a loop nest inside the kernel."""

    def __init__(self, prog: CpuWriter, plan: RegionPlan, parallel: bool | None = None, group=None):
        self.prog, self.plan = prog, plan
        self.domain, self.rank, self.size = plan.domain, plan.rank, plan.size
        self.group = group  # the Group this region is a member of (one loop nest), or None
        work = self.size * plan.cost
        # an exception cannot leave a parallel loop: loops that may raise run serially
        self.parallel = (
            (
                self.rank > 0
                and work >= prog.target.parallel_min_work
                and self.domain[0] > 1
                and not plan.may_raise
                and not any(ov in prog.scatters for ov, _, _ in plan.stores)
            )
            if parallel is None
            else parallel
        )
        self.nchunks = min(self.domain[0], prog.target.max_chunks) if self.parallel else 1
        # statements per loop level: 0 = before the loops, k = inside loop k-1
        self.pre = [[] for _ in range(self.rank + 1)]
        self.post = [[] for _ in range(self.rank + 1)]
        self.chunk_pre: list[str] = []
        self.chunk_post: list[str] = []
        self.prologue: list[str] = []
        self.epilogue: list[str] = []
        self.blocked: list[tuple] = []  # 1-D full reductions through block buffers
        self.acc_init: list[str] = []
        self.accums: dict[str, tuple] = {}  # innermost fold statement -> (kind, target, summand, dtype)
        self.flat_lines: list[str] = []  # flat views of the arrays allocated in the prologue
        self.taken: set = set()  # inputs an output is stored into in place

    def idx(self, k: int) -> str:
        return f"i{k}"

    def run(self):
        self.build()
        self.write()

    def build(self):
        """The statements of each loop level, prologue and epilogue (written by `write`)."""
        prog, plan = self.prog, self.plan
        reds = sorted(plan.reductions, key=lambda r: r.after)  # in the region's order
        for j, s in enumerate([*plan.stmts, None]):
            while reds and reds[0].after == j:
                prog.layout[reds[0].out] = "C"
                self.reduction(reds.pop(0))
            if s is not None:
                self.pre[s.depth].append(f"{s.name} = {s.code(prog.target)}")
        for ov, expr, _ in plan.stores:
            prog.layout[ov] = "C"
            o = prog.name(ov)
            if ov in prog.scatters:
                self.scatter_store(ov, expr)
            elif self.rank == 0:
                self.pre[0].append(f"{o} = {expr}")
            elif self.group is not None and ov in self.group.scratch:
                self.store_scratch(o, ov, plan.index, expr, self.rank)
            else:
                src = self.dead_input_for(ov)
                if src is not None:
                    # stored through the very view the loads read: through a second view
                    # of the same buffer LLVM cannot prove the loop free of overlap and
                    # runs it scalar (W2's tanh pass took 1.5 ms instead of 0.2)
                    self.prologue.append(f"{o} = {prog.name(src)}")
                    o = prog.name(src)
                else:
                    self.prologue += prog.empty(o, self.domain, ov.aval.dtype)
                self.pre[self.rank].append(f"{self.flat(o, self.domain, plan.index)} = {expr}")

    def dead_input_for(self, ov):
        """An input array `ov` may be stored into in place, or None: one the kernel
        made (not the caller's), C-contiguous, of `ov`'s shape and dtype, read by
        nothing after this region and by the region only at the element each
        iteration stores (so it is read before it is overwritten), not read by a
        store, and not yet taken by another output. W2's tanh pass then writes
        into the GEMM's output and its backward into the other GEMM's: no fresh
        1 MB arrays, and the stores land on lines already in cache."""
        prog, plan = self.prog, self.plan
        if self.group is not None:  # another member may read it later in the same iteration
            return None
        full = {tuple(plan.index)}
        # every array the region reads, by the buffer it views: a transposed view of x,
        # read in the same loop, would see x's elements after they are overwritten
        bases = [prog.base_of(a) for a in plan.reads]
        store_tokens = set().union(*(tokens(expr) for _, expr, _ in plan.stores))
        for x, at in plan.reads.items():
            if (
                x not in self.taken
                and at == full
                and x.aval.shape == self.domain
                and x.aval.dtype == ov.aval.dtype
                and prog.layout.get(x) == "C"
                and prog.may_update(x)
                and bases.count(x) == 1
                and not store_tokens & {prog.name(x), f"{prog.name(x)}_fl"}
            ):
                self.taken.add(x)
                return x
        return None

    def scatter_store(self, ov, expr: str) -> None:
        """`ov` is not stored: added into the results it is placed in (scatter.py)."""
        prog = self.prog
        for res, spec in prog.scatters[ov]:
            r = prog.name(res)
            if res not in prog.layout:
                prog.layout[res] = "C"
                self.prologue += prog.empty(r, res.aval.shape, res.aval.dtype, zeros=True)
            at = self.flat(r, res.aval.shape, scatter_index(self.plan.index, spec))
            self.pre[self.rank].append(f"{at} += {expr}")

    def store_scratch(self, o: str, ov, index: list[str], expr: str, level: int) -> None:
        """A value only later members of the group read, at the same prefix index:
        a scalar, or a buffer over the axes past the prefix (one per chunk)."""
        p = self.group.prefix
        rest = index[p:]
        if rest:
            alloc = f"{o} = np.empty({tuple(ov.aval.shape[p:])}, {dtype_ctor(ov.aval.dtype)})"
            (self.chunk_pre if self.parallel else self.prologue).append(alloc)
            self.post_or_pre(level).append(f"{o}[{', '.join(rest)}] = {expr}")
        else:
            self.post_or_pre(level).append(f"{o} = {expr}")

    def reduction(self, r: Reduction):
        prog = self.prog
        kind, axes, val, out, adt = r.kind, r.axes, r.value, r.out, r.acc
        o = prog.name(out)
        out_dt = out.aval.dtype
        ident = identity(kind, adt)
        cast = dtype_ctor(adt)
        v = f"{cast}({val})" if adt != out_dt else val
        keep = [self.idx(k) for k in range(self.rank) if k not in axes]
        out_shape = out.aval.shape
        suffix_from = min(axes)
        is_suffix = tuple(axes) == tuple(range(suffix_from, self.rank))
        acc = f"{o}_acc"
        final = dtype_ctor(out_dt)
        wide = np.dtype(adt) == np.float64 and np.dtype(r.value_dtype) == np.float32
        if is_suffix and suffix_from > 0:
            # a register accumulator inside loop `suffix_from - 1`
            self.pre[suffix_from].append(f"{acc} = {ident}")
            self.accumulate(kind, acc, v, adt, wide)
            if self.group is not None and out in self.group.scratch:
                self._post_level = suffix_from
                self.store_scratch(o, out, keep, f"{final}({acc})", suffix_from)
                self._post_level = None
            else:
                self.prologue += prog.empty(o, out_shape, out_dt)
                self.post[suffix_from].append(f"{self.flat(o, out_shape, keep)} = {final}({acc})")
        elif is_suffix and self.rank == 1 and self.group is None:
            # a 1-D full reduction: summands go to a block buffer and are summed
            # after each block, so the compute loop has no FP reduction in it and
            # LLVM vectorizes it (a strict in-order reduction would stop that)
            # the buffer keeps the summands' own dtype (widened when folded): a
            # float64 buffer in a float32 loop would halve LLVM's vector width
            buf = f"{o}_buf"
            self.blocked.append((buf, acc, kind, cast, dtype_ctor(r.value_dtype)))
            self.pre[self.rank].append(f"{buf}[i0 - b0_] = {val}")
            if self.parallel:
                part = f"{o}_part"
                self.prologue.append(f"{part} = np.empty({self.nchunks}, {cast})")
                self.chunk_post.append(f"{part}[c_] = {acc}")
                self.epilogue.append(f"{acc} = {ident}")
                self.epilogue.append(f"for c_ in range({self.nchunks}):")
                self.epilogue.append("    " + combine(kind, acc, f"{part}[c_]"))
            self.epilogue.append(f"{o} = {final}({acc})")
            self.acc_init.append(f"{acc} = {ident}")
        elif is_suffix:  # a full reduction to a scalar
            if self.parallel:
                part = f"{o}_part"
                self.prologue.append(f"{part} = np.empty({self.nchunks}, {cast})")
                self.chunk_pre.append(f"{acc} = {ident}")
                self.accumulate(kind, acc, v, adt, wide)
                self.chunk_post.append(f"{part}[c_] = {acc}")
                self.epilogue.append(f"{acc} = {ident}")
                self.epilogue.append(f"for c_ in range({self.nchunks}):")
                self.epilogue.append("    " + combine(kind, acc, f"{part}[c_]"))
                self.epilogue.append(f"{o} = {final}({acc})")
            else:
                self.prologue.append(f"{acc} = {ident}")
                self.accumulate(kind, acc, v, adt, wide)
                self.epilogue.append(f"{o} = {final}({acc})")
        elif 0 in axes and self.parallel:
            # per-chunk partial results, combined after the parallel loop
            part = f"{o}_part"
            self.prologue.append(f"{part} = np.full(({self.nchunks},) + {out_shape}, {ident}, {cast})")
            self.accumulate(kind, self.flat(part, (self.nchunks, *out_shape), ["c_", *keep]), v, adt, wide)
            self.epilogue.append(f"{acc} = {part}[0].copy()")
            self.epilogue.append(f"for c_ in range(1, {self.nchunks}):")
            self.epilogue.append(f"    {acc}_f = {acc}.reshape(-1)")
            self.epilogue.append(f"    {part}_f = {part}[c_].reshape(-1)")
            self.epilogue.append(f"    for j_ in range({acc}_f.size):")
            self.epilogue.append("        " + combine(kind, f"{acc}_f[j_]", f"{part}_f[j_]"))
            self.epilogue.append(f"{o} = {acc}.astype({final})")
        else:  # accumulate in place into an array (rows never shared between chunks)
            self.prologue.append(f"{acc} = np.full({out_shape}, {ident}, {cast})")
            self.accumulate(kind, self.flat(acc, out_shape, keep), v, adt, wide)
            self.epilogue.append(f"{o} = {acc}.astype({final})" if adt != out_dt else f"{o} = {acc}")

    _post_level = None  # a reduction's result is stored after its loop closes

    def flat(self, name: str, shape, index: list[str]) -> str:
        """An element of an array this region allocates (C order, in the prologue),
        through a flat view with constant strides (see CpuWriter.array_ref)."""
        if len(shape) < 2:
            return f"{name}[{', '.join(index)}]"
        view = f"{name}_fl"
        line = f"{view} = {name}.reshape(-1)"
        if line not in self.flat_lines and view not in self.prog.flat_views:
            self.flat_lines.append(line)
        return f"{view}[{flat_index(index, shape)}]"

    def accumulate(self, kind: str, target: str, v: str, adt, wide: bool = False) -> None:
        """Fold the summand `v` into `target` in the innermost loop (`buffer_folds`
        may move the fold after the loop); `wide`: a float32 summand, float64 sum."""
        stmt = combine(kind, target, v)
        self.pre[self.rank].append(stmt)
        self.accums[stmt] = (kind, target, v, adt, wide)

    def buffer_folds(self) -> None:
        """The innermost loop's folds moved after it (`buffered_folds`)."""
        r = self.rank
        if r < 2 or self.blocked:
            return
        alloc = self.chunk_pre if self.parallel else self.prologue
        body, fold = buffered_folds(self.prog, self.pre[r], self.accums, self.domain[r - 1], r - 1, alloc)
        if fold:
            self.pre[r] = body
            self.post[r - 1][:0] = fold

    def post_or_pre(self, level: int) -> list[str]:
        return self.post[level] if self._post_level == level else self.pre[level]

    def write(self):
        self.buffer_folds()
        emit = self.prog.emit
        for s in self.prologue + self.flat_lines + self.pre[0]:
            emit(s)
        if self.rank == 0:
            for s in self.epilogue:
                emit(s)
            return
        d0 = self.domain[0]
        if self.blocked:
            self.write_blocked(d0)
            return
        if self.parallel:
            ind = self.chunk_header(d0)
            start = len(self.prog.lines)
            for s in self.chunk_pre:
                emit(s, ind)
            emit(f"for {self.idx(0)} in range(lo_, hi_):", ind)
        else:
            ind = 1
            emit(f"for {self.idx(0)} in range({d0}):", ind)
        base = ind
        for k in range(1, self.rank + 1):
            for s in self.pre[k]:
                emit(s, base + k)
            if k < self.rank:
                emit(f"for {self.idx(k)} in range({self.domain[k]}):", base + k)
        # post statements of level k run after loop k closes, inside loop k-1;
        # deeper ones first, so each dedent closes the loops below it
        for k in range(self.rank - 1, 0, -1):
            for s in self.post[k]:
                emit(s, base + k)
        if self.parallel:
            for s in self.chunk_post:
                emit(s, base)
            self.prog.outline(start, ind)
        for s in self.epilogue:
            emit(s)

    def write_blocked(self, d0: int):
        """A 1-D loop in blocks: compute into buffers, then fold each buffer in order."""
        emit = self.prog.emit
        ind = self.chunk_header(d0)
        start = len(self.prog.lines)
        for buf, _, _, _, buf_dt in self.blocked:
            emit(f"{buf} = np.empty({BLOCK}, {buf_dt})", ind)
        for s in self.acc_init + self.chunk_pre:
            emit(s, ind)
        emit(f"for b0_ in range(lo_, hi_, {BLOCK}):", ind)
        emit(f"b1_ = min(b0_ + {BLOCK}, hi_)", ind + 1)
        emit(f"for {self.idx(0)} in range(b0_, b1_):", ind + 1)
        for s in self.pre[1]:
            emit(s, ind + 2)
        for buf, acc, kind, cast, buf_dt in self.blocked:
            emit("for j_ in range(b1_ - b0_):", ind + 1)
            emit(combine(kind, acc, f"{buf}[j_]" if cast == buf_dt else f"{cast}({buf}[j_])"), ind + 2)
        if self.parallel:
            for s in self.chunk_post:
                emit(s, ind)
            self.prog.outline(start, ind)
        for s in self.epilogue:
            emit(s)

    def chunk_header(self, d0: int) -> int:
        """Open the parallel loop over chunks of axis 0 (or one chunk); [lo_, hi_) is the range."""
        emit = self.prog.emit
        if not self.parallel:
            emit("lo_ = 0")
            emit(f"hi_ = {d0}")
            return 1
        emit(f"for c_ in prange({self.nchunks}):")
        emit(f"lo_ = c_ * {d0} // {self.nchunks}", 2)
        emit(f"hi_ = (c_ + 1) * {d0} // {self.nchunks}", 2)
        return 2


BLOCK = 2048


def flat_index(index: list[str], shape) -> str:
    """The C-order flat offset of `index` in an array of `shape`, constant strides."""
    terms, stride = [], 1
    for i, d in zip(reversed(index), reversed(shape)):
        if i != "0":
            terms.append(i if stride == 1 else f"({i}) * {stride}")
        stride *= d
    return " + ".join(reversed(terms)) or "0"


BUFFER_MIN_STMTS = 6  # an innermost loop without vm calls buffers its folds from this size
BUFFER_MIN_EXTENT = 16  # shorter loops do not vectorize enough to pay for the buffers


def buffered_folds(prog, body: list[str], accums: dict, n: int, k: int, alloc: list[str], lo: str = "0"):
    """Summands of an innermost loop (over i{k}, n iterations from `lo`) into
    buffers, folded after the loop: (the new body, the fold line) or (body, None).

    A fold into a scalar (or into the same element on every iteration) is a
    strict, in-order floating-point reduction: LLVM may not vectorize a loop
    that carries one, so a loop of exp and divisions ran scalar. Stored per
    iteration instead, the compute loop has no loop-carried dependence and
    vectorizes; the folds run after it, in the same order (the same result, to
    the bit), except a float32 sum into one float64 accumulator, folded in four
    chains (`vm.wide_sum`: the float64 sum moves by ~1e-16 of itself, below the
    float32 rounding that follows). Only where the loop does enough work per element to pay for the
    buffers, and only folds whose accumulator the loop body does not otherwise
    touch (one set up and read inside the loop is a reduction of a deeper,
    unrolled loop)."""
    if n < BUFFER_MIN_EXTENT or not any(st in accums for st in body):
        return body, None
    if not any("vm." in st for st in body) and len(body) < BUFFER_MIN_STMTS:
        return body, None
    inner = f"i{k}"
    others = " ".join(st for st in body if st not in accums)
    new_body, folds, wide = [], [], []
    for st in body:
        acc = accums.get(st)
        if acc is not None:
            kind, target, v, adt, wide_ok = acc
            base = target.split("[")[0]
            if not re.search(rf"\b{base}\b", others):
                buf = prog.name.fresh("fb")
                alloc.append(f"{buf} = np.empty({n}, {dtype_ctor(adt)})")
                new_body.append(f"{buf}[{inner}] = {v}")
                if kind == "sum" and wide_ok and not re.search(rf"\b{inner}\b", target):
                    # one chain of adds a row: in four (float32 into float64 only)
                    wide.append(f"{target} += vm.wide_sum({buf}, {lo}, {lo} + {n})")
                else:
                    folds.append(combine(kind, re.sub(rf"\b{inner}\b", "j_", target), f"{buf}[j_]"))
                continue
        new_body.append(st)
    if not folds and not wide:
        return body, None
    lines = [f"for j_ in range({lo}, {lo} + {n}): " + "; ".join(folds)] if folds else []
    return new_body, lines + wide
