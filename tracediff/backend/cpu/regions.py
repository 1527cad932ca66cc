"""The CPU writer of one fused region: a loop nest inside the kernel. Statements
sit at the loop level the plan gives them (loop-invariant code motion); a
reduction becomes a register accumulator, a per-chunk partial, or a block
buffer summed after each block (so LLVM vectorizes the compute loop); a large
loop runs in parallel chunks of its first axis, each chunk outlined into a
function of its own."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..base import combine, identity
from ..literals import dtype_ctor
from ..lower import Reduction, RegionPlan

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
            if self.rank == 0:
                self.pre[0].append(f"{o} = {expr}")
            elif self.group is not None and ov in self.group.scratch:
                self.store_scratch(o, ov, plan.index, expr, self.rank)
            else:
                self.prologue += prog.empty(o, self.domain, ov.aval.dtype)
                self.pre[self.rank].append(f"{o}[{', '.join(plan.index)}] = {expr}")

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
        if is_suffix and suffix_from > 0:
            # a register accumulator inside loop `suffix_from - 1`
            self.pre[suffix_from].append(f"{acc} = {ident}")
            self.accumulate(kind, acc, v, adt)
            if self.group is not None and out in self.group.scratch:
                self._post_level = suffix_from
                self.store_scratch(o, out, keep, f"{final}({acc})", suffix_from)
                self._post_level = None
            else:
                self.prologue += prog.empty(o, out_shape, out_dt)
                self.post[suffix_from].append(f"{o}[{', '.join(keep)}] = {final}({acc})")
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
                self.accumulate(kind, acc, v, adt)
                self.chunk_post.append(f"{part}[c_] = {acc}")
                self.epilogue.append(f"{acc} = {ident}")
                self.epilogue.append(f"for c_ in range({self.nchunks}):")
                self.epilogue.append("    " + combine(kind, acc, f"{part}[c_]"))
                self.epilogue.append(f"{o} = {final}({acc})")
            else:
                self.prologue.append(f"{acc} = {ident}")
                self.accumulate(kind, acc, v, adt)
                self.epilogue.append(f"{o} = {final}({acc})")
        elif 0 in axes and self.parallel:
            # per-chunk partial results, combined after the parallel loop
            part = f"{o}_part"
            at = ", ".join(["c_"] + keep)
            self.prologue.append(f"{part} = np.full(({self.nchunks},) + {out_shape}, {ident}, {cast})")
            self.accumulate(kind, f"{part}[{at}]", v, adt)
            self.epilogue.append(f"{acc} = {part}[0].copy()")
            self.epilogue.append(f"for c_ in range(1, {self.nchunks}):")
            self.epilogue.append(f"    {acc}_f = {acc}.reshape(-1)")
            self.epilogue.append(f"    {part}_f = {part}[c_].reshape(-1)")
            self.epilogue.append(f"    for j_ in range({acc}_f.size):")
            self.epilogue.append("        " + combine(kind, f"{acc}_f[j_]", f"{part}_f[j_]"))
            self.epilogue.append(f"{o} = {acc}.astype({final})")
        else:  # accumulate in place into an array (rows never shared between chunks)
            self.prologue.append(f"{acc} = np.full({out_shape}, {ident}, {cast})")
            self.accumulate(kind, f"{acc}[{', '.join(keep)}]", v, adt)
            self.epilogue.append(f"{o} = {acc}.astype({final})" if adt != out_dt else f"{o} = {acc}")

    _post_level = None  # a reduction's result is stored after its loop closes

    def accumulate(self, kind: str, target: str, v: str, adt) -> None:
        """Fold the summand `v` into `target` in the innermost loop (`buffer_folds`
        may move the fold after the loop)."""
        stmt = combine(kind, target, v)
        self.pre[self.rank].append(stmt)
        self.accums[stmt] = (kind, target, v, adt)

    def buffer_folds(self) -> None:
        """Summands of the innermost loop into buffers, folded after the loop.

        A fold into a scalar (or into the same element on every iteration) is a
        strict, in-order floating-point reduction: LLVM may not vectorize a loop
        that carries one, so a loop of exp and divisions ran scalar. Stored per
        iteration instead, the compute loop has no loop-carried dependence and
        vectorizes; the folds run after it, in the same order (the same result,
        to the bit). Only where the loop does enough work per element to pay for
        the buffers' stores and loads."""
        r = self.rank
        if r < 2 or self.blocked or not self.accums:
            return
        body = self.pre[r]
        if not any("vm." in s for s in body) and len(body) < BUFFER_MIN_STMTS:
            return
        n, inner = self.domain[r - 1], self.idx(r - 1)
        new_body, folds = [], []
        for s in body:
            acc = self.accums.get(s)
            if acc is None:
                new_body.append(s)
                continue
            kind, target, v, adt = acc
            buf = f"{self.prog.name.fresh('fb')}"
            (self.chunk_pre if self.parallel else self.prologue).append(
                f"{buf} = np.empty({n}, {dtype_ctor(adt)})"
            )
            new_body.append(f"{buf}[{inner}] = {v}")
            folds.append(combine(kind, re.sub(rf"\b{inner}\b", "j_", target), f"{buf}[j_]"))
        self.pre[r] = new_body
        self.post[r - 1][:0] = [f"for j_ in range({n}): " + "; ".join(folds)]

    def post_or_pre(self, level: int) -> list[str]:
        return self.post[level] if self._post_level == level else self.pre[level]

    def write(self):
        self.buffer_folds()
        emit = self.prog.emit
        for s in self.prologue + self.pre[0]:
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


BLOCK = 2048
BUFFER_MIN_STMTS = 6  # an innermost loop without vm calls buffers its folds from this size


def _write_blocked(self, d0: int):
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


def _chunk_header(self, d0: int) -> int:
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


RegionWriter.write_blocked = _write_blocked
RegionWriter.chunk_header = _chunk_header


def write_group(prog: CpuWriter, writers: list[RegionWriter], p: int) -> None:
    """Members of a group (built, sharing loops 0..p-1 and their parallel chunks) as
    one nest: at loop level p each member's own loops and statements, in order."""
    emit, first = prog.emit, writers[0]
    for w in writers:
        if w.rank > p:  # a member's own innermost loop
            w.buffer_folds()
    for w in writers:
        for s in w.prologue + w.pre[0]:
            emit(s)
    d0 = first.domain[0]
    if first.parallel:
        ind = first.chunk_header(d0)
        start = len(prog.lines)
        for w in writers:
            for s in w.chunk_pre:
                emit(s, ind)
        emit("for i0 in range(lo_, hi_):", ind)
    else:
        ind = 1
        emit(f"for i0 in range({d0}):", ind)
    base = ind
    for k in range(1, p):  # the shared loops
        for w in writers:
            for s in w.pre[k]:
                emit(s, base + k)
        emit(f"for i{k} in range({first.domain[k]}):", base + k)
    for w in writers:  # each member's part at level p
        for s in w.pre[p]:
            emit(s, base + p)
        for k in range(p, w.rank):
            emit(f"for i{k} in range({w.domain[k]}):", base + k)
            for s in w.pre[k + 1]:
                emit(s, base + k + 1)
        for k in range(w.rank - 1, p - 1, -1):
            for s in w.post[k]:
                emit(s, base + k)
    for k in range(p - 1, 0, -1):
        for w in writers:
            for s in w.post[k]:
                emit(s, base + k)
    if first.parallel:
        for w in writers:
            for s in w.chunk_post:
                emit(s, base)
        prog.outline(start, ind)
    for w in writers:
        for s in w.epilogue:
            emit(s)
