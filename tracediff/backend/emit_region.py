"""One fused region -> a loop nest inside the kernel: elementwise values are scalars in
registers, placed at the outermost loop level they depend on, index maps
(broadcast/reshape) become index arithmetic, reductions become accumulators
(float32 sums accumulate in float64)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from ..core import IR, Eqn, Lit, Var
from ..prims import shape as sh
from ..prims.region import fused_p
from .base import INDEX_OPS, REDUCTIONS, EmitError, Names, acc_dtype, combine, identity
from .literals import dtype_ctor, literal

if TYPE_CHECKING:
    from .emit import ProgramEmitter


def region_cost(body: IR) -> int:
    """Operations per element of a region's loop: what decides whether waking
    threads pays (a 1M-element loop of 40 tanh does; a 1M-element add does not)."""
    cost = 0
    for e in body.eqns:
        if e.prim in INDEX_OPS:
            continue
        cost += e.prim.cost
    return max(cost, 1)


def _singleton_region(e: Eqn) -> Eqn:
    """Wrap a lone compute equation (optimizer off) into a one-op region."""
    ins = [a for a in e.inputs if type(a) is Var]
    ren = {v: Var(v.aval) for v in dict.fromkeys(ins)}
    outs = tuple(Var(v.aval) for v in e.outvars)
    body_eqn = Eqn(
        e.prim, tuple(ren.get(a, a) if type(a) is Var else a for a in e.inputs), outs, e.params, e.src
    )
    body = IR([ren[v] for v in ren], [body_eqn], list(outs))
    return Eqn(fused_p, tuple(ren), e.outvars, {"body": body, "name": "loop"}, e.src)


class RegionEmitter:
    """One fused region -> a loop nest inside the kernel."""

    def __init__(self, prog: ProgramEmitter, eqn: Eqn):
        self.prog, self.eqn = prog, eqn
        self.body: IR = eqn.params["body"]
        first = next(e for e in self.body.eqns if e.prim not in INDEX_OPS)
        self.domain = first.inputs[0].aval.shape if first.prim in REDUCTIONS else first.outvars[0].aval.shape
        self.rank = len(self.domain)
        self.size = int(np.prod(self.domain))
        work = self.size * region_cost(self.body)
        # an exception cannot leave a parallel loop: loops that may raise run serially
        may_raise = any(e.outvars[0].aval.dtype.kind in e.prim.raises_for for e in self.body.eqns)
        self.parallel = (
            self.rank > 0 and work >= prog.target.parallel_min_work and self.domain[0] > 1 and not may_raise
        )
        self.nchunks = min(self.domain[0], prog.target.max_chunks) if self.parallel else 1
        self.tnames = Names(prog.name.fresh("r") + "_t")
        # statements per loop level: 0 = before the loops, k = inside loop k-1
        self.pre = [[] for _ in range(self.rank + 1)]
        self.post = [[] for _ in range(self.rank + 1)]
        self.chunk_pre: list[str] = []
        self.chunk_post: list[str] = []
        self.prologue: list[str] = []
        self.epilogue: list[str] = []
        self.blocked: list[tuple] = []  # 1-D full reductions through block buffers
        self.acc_init: list[str] = []
        self.scalar: dict[Var, tuple[str, int]] = {}  # body var -> (expression, depth)
        self.index_def: dict[Var, Eqn] = {}
        self.outer = dict(zip(self.body.invars, eqn.inputs))  # body input -> top-level atom
        self.results = dict(zip(self.body.outvars, eqn.outvars))

    def idx(self, k: int) -> str:
        return f"i{k}"

    # --- loads ------------------------------------------------------------------------
    def load(self, v, index: list[str]) -> tuple[str, int]:
        """Scalar expression of `v` at `index` (index expressions of v's shape)."""
        if type(v) is Lit:
            if v.val.ndim == 0:
                return literal(v.val, v.aval.dtype), 0
            return self._subscript(self.prog.const(v), index)
        e = self.index_def.get(v)
        if e is not None:
            x = e.inputs[0]
            if e.prim is sh.broadcast_p:
                lead = len(e.params["shape"]) - x.aval.ndim
                sub = [
                    "0" if d == 1 and e.params["shape"][lead + j] != 1 else index[lead + j]
                    for j, d in enumerate(x.aval.shape)
                ]
                return self.load(x, sub)
            if e.prim is sh.unslice_p:
                return self._load_unslice(x, index, e.params["spec"], v.aval.dtype)
            return self.load(x, _reshape_index(index, v.aval.shape, x.aval.shape))
        if v in self.scalar:
            if index != [self.idx(k) for k in range(self.rank)]:
                raise EmitError("internal: a loop value read at another index (fusion must split here)")
            return self.scalar[v]
        outer = self.outer[v]
        if v.aval.ndim == 0:
            return self.prog.atom(outer), 0
        return self._subscript(self.prog.atom(outer), index)

    def _load_unslice(self, x, index, spec, dt) -> tuple[str, int]:
        """x placed at a slice of zeros: a conditional load."""
        conds, sub = [], []
        for i, (start, _stop, step), n in zip(index, spec, x.aval.shape):
            off = f"({i} - {start})"
            if step == 1:
                j = off
                conds.append(f"0 <= {off} < {n}")
            else:
                j = f"({off} // {step})"
                conds.append(f"{off} % {step} == 0 and 0 <= {j} < {n}")
            sub.append(j)
        val, depth = self.load(x, sub)
        for i in index:
            for k in range(self.rank):
                if self.idx(k) in _tokens(i):
                    depth = max(depth, k + 1)
        cond = " and ".join(conds) or "True"
        return f"({val} if ({cond}) else {literal(0, dt)})", depth

    def _subscript(self, arr: str, index: list[str]) -> tuple[str, int]:
        depth = 0
        for s in index:
            for k in range(self.rank):
                if self.idx(k) in _tokens(s):
                    depth = max(depth, k + 1)
        return f"{arr}[{', '.join(index)}]" if index else f"{arr}[()]", depth

    # --- emission ---------------------------------------------------------------------
    def run(self):
        prog = self.prog
        full = [self.idx(k) for k in range(self.rank)]
        for o in self.eqn.outvars:
            prog.layout[o] = "C"
        for e in self.body.eqns:
            if e.prim in INDEX_OPS:
                self.index_def[e.outvars[0]] = e
                continue
            if e.prim in REDUCTIONS:
                self.reduction(e, full)
                continue
            ops = [self.load(a, full) for a in e.inputs]
            dt = e.outvars[0].aval.dtype
            code = prog.target.scalar_code(e.prim, dt).format(*[x for x, _ in ops])
            if dt.kind in "iu" and dt.itemsize < 8:
                # Numba computes narrow integers in 64 bits: wrap as NumPy does
                code = f"{dtype_ctor(dt)}({code})"
            depth = max((d for _, d in ops), default=0)
            name = self.tnames(e.outvars[0])
            self.pre[depth].append(f"{name} = {code}")
            self.scalar[e.outvars[0]] = (name, depth)
        # stores of elementwise results
        for bv, ov in self.results.items():
            if bv in self.scalar or bv in self.index_def or bv in self.outer:
                expr, _ = self.load(bv, full)
                o = prog.name(ov)
                if self.rank == 0:
                    self.pre[0].append(f"{o} = {expr}")
                else:
                    self.prologue += prog.empty(o, self.domain, ov.aval.dtype)
                    self.pre[self.rank].append(f"{o}[{', '.join(full)}] = {expr}")
        self.write()

    def reduction(self, e: Eqn, full: list[str]):
        prog = self.prog
        kind = REDUCTIONS[e.prim]
        axes = e.params["axes"]
        x = e.inputs[0]
        val, _ = self.load(x, full)
        out = self.results[e.outvars[0]]
        o = prog.name(out)
        out_dt = out.aval.dtype
        adt = acc_dtype(kind, out_dt)
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
            self.pre[self.rank].append(combine(kind, acc, v))
            self.prologue += prog.empty(o, out_shape, out_dt)
            self.post[suffix_from].append(f"{o}[{', '.join(keep)}] = {final}({acc})")
        elif is_suffix and self.rank == 1:
            # a 1-D full reduction: summands go to a block buffer and are summed
            # after each block, so the compute loop has no FP reduction in it and
            # LLVM vectorizes it (a strict in-order reduction would stop that)
            # the buffer keeps the summands' own dtype (widened when folded): a
            # float64 buffer in a float32 loop would halve LLVM's vector width
            buf = f"{o}_buf"
            self.blocked.append((buf, acc, kind, cast, dtype_ctor(x.aval.dtype)))
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
                self.pre[self.rank].append(combine(kind, acc, v))
                self.chunk_post.append(f"{part}[c_] = {acc}")
                self.epilogue.append(f"{acc} = {ident}")
                self.epilogue.append(f"for c_ in range({self.nchunks}):")
                self.epilogue.append("    " + combine(kind, acc, f"{part}[c_]"))
                self.epilogue.append(f"{o} = {final}({acc})")
            else:
                self.prologue.append(f"{acc} = {ident}")
                self.pre[self.rank].append(combine(kind, acc, v))
                self.epilogue.append(f"{o} = {final}({acc})")
        elif 0 in axes and self.parallel:
            # per-chunk partial results, combined after the parallel loop
            part = f"{o}_part"
            at = ", ".join(["c_"] + keep)
            self.prologue.append(f"{part} = np.full(({self.nchunks},) + {out_shape}, {ident}, {cast})")
            self.pre[self.rank].append(combine(kind, f"{part}[{at}]", v))
            self.epilogue.append(f"{acc} = {part}[0].copy()")
            self.epilogue.append(f"for c_ in range(1, {self.nchunks}):")
            self.epilogue.append(f"    {acc}_f = {acc}.reshape(-1)")
            self.epilogue.append(f"    {part}_f = {part}[c_].reshape(-1)")
            self.epilogue.append(f"    for j_ in range({acc}_f.size):")
            self.epilogue.append("        " + combine(kind, f"{acc}_f[j_]", f"{part}_f[j_]"))
            self.epilogue.append(f"{o} = {acc}.astype({final})")
        else:  # accumulate in place into an array (rows never shared between chunks)
            self.prologue.append(f"{acc} = np.full({out_shape}, {ident}, {cast})")
            self.pre[self.rank].append(combine(kind, f"{acc}[{', '.join(keep)}]", v))
            self.epilogue.append(f"{o} = {acc}.astype({final})" if adt != out_dt else f"{o} = {acc}")

    def write(self):
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


RegionEmitter.write_blocked = _write_blocked
RegionEmitter.chunk_header = _chunk_header


_BUILTINS = {
    "range",
    "min",
    "max",
    "abs",
    "True",
    "False",
    "None",
    "and",
    "or",
    "not",
    "if",
    "else",
    "in",
    "for",
    "is",
}


def _header_names(header: list[str]) -> set[str]:
    """The module-level names a target's header imports (np, math, vm, ...)."""
    names = set()
    for ln in header:
        m = re.match(r"\s*(?:from\s+\S+\s+)?import\s+(.+)", ln)
        if m:
            for part in m.group(1).split(","):
                names.add(part.split(" as ")[-1].strip().split(".")[0])
    return names


def _free_names(lines: list[str]) -> set[str]:
    """Names a block of generated code reads but does not assign."""
    used, assigned = set(), set()
    for ln in lines:
        used |= set(re.findall(r"(?<![.\w])([A-Za-z_]\w*)", ln))
        m = re.match(r"\s*([A-Za-z_]\w*)\s*(?:[-+*/]?=)(?!=)", ln) or re.match(r"\s*for\s+(\w+)\s+in\b", ln)
        if m:
            assigned.add(m.group(1))
    return used - assigned - _BUILTINS


def _tokens(s: str) -> set[str]:
    out, cur = set(), ""
    for ch in s + " ":
        if ch.isalnum() or ch == "_":
            cur += ch
        else:
            if cur:
                out.add(cur)
            cur = ""
    return out


def _reshape_index(index: list[str], out_shape, in_shape) -> list[str]:
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
