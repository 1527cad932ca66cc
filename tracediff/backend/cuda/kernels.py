"""The CUDA writer of one fused region: its plan becomes one kernel or a few.

- No reduction: one grid-stride kernel over the flattened domain; statements
  that depend on no index run once per thread, before the loop.
- Reductions over every axis: each thread folds a grid-stride share, the block
  folds its threads' values in a shared-memory tree, and a second one-block
  kernel folds the blocks' partial results in order (deterministic: the grid
  is fixed by the size). A domain that one block covers needs no second pass.
- Reductions keeping some axes: one thread per kept index folding the reduced
  axes in order ("rows"), or, for few kept indices and long reductions, one
  block per kept index folding them with a tree ("blocks").
Reductions with different kept axes in one region get a kernel each, each
recomputing what it needs; the elementwise stores go with the first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..base import combine, identity
from ..literals import dtype_ctor
from ..lower import Reduction, RegionPlan, tokens
from .support import MAX_BLOCKS, THREADS

if TYPE_CHECKING:
    from .writer import CudaWriter

# a reduction is folded by one block (rather than one thread) per kept index when
# it is longer than this and there are fewer kept indices than ROWS_MIN
BLOCK_FOLD_MIN = 16 if THREADS < 32 else 256
ROWS_MIN = 8 if THREADS < 32 else 8192


def decompose(flat: str, axes: list[int], domain) -> list[str]:
    """Lines setting i<a> for each of `axes` from the row-major flat index `flat`."""
    dims = [domain[a] for a in axes]
    lines = []
    for j, a in enumerate(axes):
        inner = int(np.prod(dims[j + 1 :]))
        if dims[j] == 1:
            expr = "0"
        elif j == 0:
            expr = flat if inner == 1 else f"{flat} // {inner}"
        else:
            expr = f"{flat} % {dims[j]}" if inner == 1 else f"({flat} // {inner}) % {dims[j]}"
        lines.append(f"i{a} = {expr}")
    return lines


def tree(reds: list[tuple[str, str]], kind_of: dict[str, str]) -> list[str]:
    """Fold each shared array `sh` (kind from kind_of) into its element 0; every
    thread of the block runs it. TPB, the threads per block (a power of two), is
    a constant of the generated module."""
    lines = ["cuda.syncthreads()", "s_ = TPB // 2", "while s_ > 0:", "    if t_ < s_:"]
    for sh, _ in reds:
        lines.append("        " + combine(kind_of[sh], f"{sh}[t_]", f"{sh}[t_ + s_]"))
    lines += ["    cuda.syncthreads()", "    s_ //= 2"]
    return lines


class RegionKernels:
    def __init__(self, prog: CudaWriter, plan: RegionPlan):
        self.prog, self.plan = prog, plan

    def run(self) -> None:
        plan, prog = self.plan, self.prog
        for r in plan.reductions:
            prog.alloc(r.out)
        for ov, _, _ in plan.stores:
            prog.alloc(ov)
        groups: dict[tuple, list[Reduction]] = {}
        for r in plan.reductions:
            keep = tuple(k for k in range(plan.rank) if k not in r.axes)
            groups.setdefault(keep, []).append(r)
        stores = plan.stores
        if not groups:
            self.elementwise(stores)
        for keep, reds in groups.items():
            if keep:
                self.partial(keep, reds, stores)
            else:
                self.full(reds, stores)
            stores = []

    # --- pieces -----------------------------------------------------------------------
    def needed(self, exprs: list[str]) -> list:
        """The plan's statements `exprs` read, directly or not, in order."""
        want = set().union(*(tokens(x) for x in exprs)) if exprs else set()
        keep = []
        for s in reversed(self.plan.stmts):
            if s.name in want:
                keep.append(s)
                for a in s.args:
                    want |= tokens(a)
        return keep[::-1]

    def split(self, stmts, inner_index: set[str]) -> tuple[list, list]:
        """(the statements that read none of `inner_index`, directly or not; the rest)."""
        inner_names, outer, inner = set(inner_index), [], []
        for s in stmts:
            used = set().union(*(tokens(a) for a in s.args)) if s.args else set()
            if used & inner_names:
                inner_names.add(s.name)
                inner.append(s)
            else:
                outer.append(s)
        return outer, inner

    def code(self, stmts) -> list[str]:
        return [f"{s.name} = {s.code(self.prog.target)}" for s in stmts]

    def store_lines(self, stores) -> list[str]:
        out = []
        for ov, expr, _ in stores:
            at = ", ".join(self.plan.index) if ov.aval.ndim else "0"
            out.append(f"{self.prog.name(ov)}[{at}] = {expr}")
        return out

    def fold(self, r: Reduction, acc: str) -> str:
        v = f"{dtype_ctor(r.acc)}({r.value})" if r.acc != r.value_dtype else r.value
        return combine(r.kind, acc, v)

    def out_ref(self, r: Reduction, keep: tuple) -> str:
        at = ", ".join(f"i{k}" for k in keep) if keep else "0"
        return f"{self.prog.name(r.out)}[{at}]"

    # --- kernels ----------------------------------------------------------------------
    def elementwise(self, stores) -> None:
        plan = self.plan
        exprs = [x for _, x, _ in stores]
        outer, inner = map(self.code, self.split(self.needed(exprs), set(plan.index)))
        if plan.rank == 0:
            body = ["if cuda.grid(1) == 0:"] + ["    " + s for s in outer + inner + self.store_lines(stores)]
            self.prog.kernel(body, 1, 1)
            return
        loop = decompose("f_", list(range(plan.rank)), plan.domain) + inner + self.store_lines(stores)
        body = outer + [f"for f_ in range(cuda.grid(1), {plan.size}, cuda.gridsize(1)):"]
        body += ["    " + s for s in loop]
        self.prog.kernel(body, self.prog.blocks(plan.size), THREADS)

    def full(self, reds: list[Reduction], stores) -> None:
        """Reductions over the whole domain (two passes when one block is not enough)."""
        plan, prog = self.plan, self.prog
        exprs = [r.value for r in reds] + [x for _, x, _ in stores]
        outer, inner = map(self.code, self.split(self.needed(exprs), set(plan.index)))
        nblocks = prog.blocks(plan.size)
        accs = [f"acc{j}_" for j in range(len(reds))]
        shs = [f"sh{j}_" for j in range(len(reds))]
        body = ["t_ = cuda.threadIdx.x"]
        body += [f"{sh} = cuda.shared.array(TPB, {dtype_ctor(r.acc)})" for sh, r in zip(shs, reds)]
        body += [f"{a} = {identity(r.kind, r.acc)}" for a, r in zip(accs, reds)] + outer
        body.append(f"for f_ in range(cuda.grid(1), {plan.size}, cuda.gridsize(1)):")
        loop = decompose("f_", list(range(plan.rank)), plan.domain) + inner + self.store_lines(stores)
        loop += [self.fold(r, a) for r, a in zip(reds, accs)]
        body += ["    " + s for s in loop]
        body += [f"{sh}[t_] = {a}" for sh, a in zip(shs, accs)]
        body += tree(list(zip(shs, accs)), {sh: r.kind for sh, r in zip(shs, reds)})
        body.append("if t_ == 0:")
        if nblocks == 1:
            body += [
                f"    {self.out_ref(r, ())} = {dtype_ctor(r.out.aval.dtype)}({sh}[0])"
                for sh, r in zip(shs, reds)
            ]
            prog.kernel(body, 1, THREADS)
            return
        parts = [prog.scratch((nblocks,), r.acc) for r in reds]
        body += [f"    {p}[cuda.blockIdx.x] = {sh}[0]" for p, sh in zip(parts, shs)]
        prog.kernel(body, nblocks, THREADS)
        # the second pass: one block folds the partials in a fixed order
        fin = ["t_ = cuda.threadIdx.x"]
        fin += [f"{sh} = cuda.shared.array(TPB, {dtype_ctor(r.acc)})" for sh, r in zip(shs, reds)]
        fin += [f"{a} = {identity(r.kind, r.acc)}" for a, r in zip(accs, reds)]
        fin.append(f"for g_ in range(t_, {nblocks}, TPB):")
        fin += ["    " + combine(r.kind, a, f"{p}[g_]") for r, a, p in zip(reds, accs, parts)]
        fin += [f"{sh}[t_] = {a}" for sh, a in zip(shs, accs)]
        fin += tree(list(zip(shs, accs)), {sh: r.kind for sh, r in zip(shs, reds)})
        fin.append("if t_ == 0:")
        fin += [
            f"    {self.out_ref(r, ())} = {dtype_ctor(r.out.aval.dtype)}({sh}[0])" for sh, r in zip(shs, reds)
        ]
        prog.kernel(fin, 1, THREADS)
        for p in parts:
            prog.release_scratch(p)

    def partial(self, keep: tuple, reds: list[Reduction], stores) -> None:
        """Reductions keeping the axes `keep`: a thread or a block per kept index."""
        plan, prog = self.plan, self.prog
        red_axes = [k for k in range(plan.rank) if k not in keep]
        n_keep = int(np.prod([plan.domain[k] for k in keep]))
        n_red = int(np.prod([plan.domain[k] for k in red_axes]))
        exprs = [r.value for r in reds] + [x for _, x, _ in stores]
        outer0, rest = self.split(self.needed(exprs), set(plan.index))
        mid, inner = self.split(rest, {f"i{k}" for k in red_axes})
        outer0, mid, inner = self.code(outer0), self.code(mid), self.code(inner)
        accs = [f"acc{j}_" for j in range(len(reds))]
        loop = decompose("h_", red_axes, plan.domain) + inner + self.store_lines(stores)
        loop += [self.fold(r, a) for r, a in zip(reds, accs)]
        init = [f"{a} = {identity(r.kind, r.acc)}" for a, r in zip(accs, reds)]
        final = [f"{self.out_ref(r, keep)} = {dtype_ctor(r.out.aval.dtype)}({a})" for r, a in zip(reds, accs)]
        if n_red <= BLOCK_FOLD_MIN or n_keep >= ROWS_MIN:  # a thread per kept index
            body = outer0 + [f"for g_ in range(cuda.grid(1), {n_keep}, cuda.gridsize(1)):"]
            per = decompose("g_", list(keep), plan.domain) + mid + init + [f"for h_ in range({n_red}):"]
            per += ["    " + s for s in loop] + final
            body += ["    " + s for s in per]
            prog.kernel(body, prog.blocks(n_keep), THREADS)
            return
        shs = [f"sh{j}_" for j in range(len(reds))]
        body = ["t_ = cuda.threadIdx.x"]
        body += [f"{sh} = cuda.shared.array(TPB, {dtype_ctor(r.acc)})" for sh, r in zip(shs, reds)]
        body += outer0 + [f"for g_ in range(cuda.blockIdx.x, {n_keep}, cuda.gridDim.x):"]
        per = decompose("g_", list(keep), plan.domain) + mid + init
        per += [f"for h_ in range(t_, {n_red}, TPB):"] + ["    " + s for s in loop]
        per += [f"{sh}[t_] = {a}" for sh, a in zip(shs, accs)]
        per += tree(list(zip(shs, accs)), {sh: r.kind for sh, r in zip(shs, reds)})
        per.append("if t_ == 0:")
        per += [
            f"    {self.out_ref(r, keep)} = {dtype_ctor(r.out.aval.dtype)}({sh}[0])"
            for r, sh in zip(reds, shs)
        ]
        per.append("cuda.syncthreads()")  # the shared arrays are reused for the next kept index
        body += ["    " + s for s in per]
        prog.kernel(body, max(1, min(n_keep, MAX_BLOCKS)), THREADS)
