"""The CPU writer: the whole optimized program becomes one Numba function
`kernel(inputs..., consts...)` returning its computed outputs.

Fused regions are loop nests (`regions.py`), contractions go to BLAS
(`np.dot`), control flow becomes Python statements (`control.py`), gathers,
scatters and scans along an axis become loops (`indexing.py`). The walk,
names, constants and region plans are the shared lowering (`..lower`).
"""

from __future__ import annotations

import re

import numpy as np

from ...core import IR, Eqn, Lit, Var
from ..base import Target, _slice_txt, check_dtypes, free_names, header_names
from ..literals import dtype_ctor
from ..lower import Lowering, copy_region
from .control import ControlFlowEmitter
from .groups import NotGroupable, form_groups
from .indexing import IndexingEmitter
from .lib.blas import BLAS
from .nest import write_group
from .regions import RegionWriter, flat_index
from .scatter import placed_sums, scatter_stores

SMALL_K = 16  # float products with at most this inner dimension are loops, not BLAS


class CpuWriter(Lowering, ControlFlowEmitter, IndexingEmitter):
    """Writes the kernel source of one top-level program."""

    def __init__(self, ir: IR, target: Target):
        super().__init__(ir, target)
        self.lines: list[str] = []
        self.functions: list[str] = []  # outlined chunk bodies (whole functions), before the kernel
        self.layout: dict[Var, str] = {}  # "C", "F" or "A" (NumPy view of any layout)
        self.depth = 0  # regions open around the statement being written
        # tape buffers passed in and returned: (argument, row shape, dtype, returned name)
        self.workspaces: list[tuple[str, tuple, np.dtype, str]] = []
        self.group = None  # the region group being lowered (groups.py)
        self.flat_views: set[str] = set()
        self.scatters: dict = {}  # region value -> the results it is added into (scatter.py)
        # small results whose arrays the caller allocates and passes in: Numba boxing an
        # array it made costs ~0.3 us a call, a NumPy allocation in the caller ~0.13 us
        self.out_slots: dict[str, Var] = {}  # name -> result, until a region writes it
        self.out_args: list[tuple[Var, bool]] = []  # (result passed in, zero-filled)

    def emit(self, line: str, indent: int = 1):
        self.lines.append("    " * indent + line)

    def empty(self, name: str, shape, dt: np.dtype, zeros: bool = False) -> list[str]:
        """The lines allocating an uninitialized array (zeros: filled with zeros); none
        for a small result of the program, which the caller passes in (`out_slots`)."""
        v = self.out_slots.pop(name, None)
        if v is not None and tuple(shape) == v.aval.shape and np.dtype(dt) == v.aval.dtype:
            self.out_args.append((v, zeros))
            return []
        if zeros:
            return [f"{name} = np.zeros({tuple(shape)}, {dtype_ctor(dt)})"]
        lines = [f"{name} = np.empty({tuple(shape)}, {dtype_ctor(dt)})"]
        t = self.target
        if t.fresh_array_call and int(np.prod(shape)) * np.dtype(dt).itemsize >= t.fresh_array_min_bytes:
            lines.append(t.fresh_array_call.format(name))
        return lines

    def outline(self, start: int, indent: int) -> None:
        """Move the lines from `start` (a prange chunk's body, at `indent`) into a
        function of their own, called from the chunk. Numba's parfor passes then
        see one call instead of a long body: a 40-step chain compiled in minutes
        inside prange, and in seconds this way."""
        body = self.lines[start:]
        del self.lines[start:]
        pad = "    " * (indent - 1)
        body = [ln[len(pad) :] if ln.startswith(pad) else ln for ln in body]
        bound = header_names(self.target.header) | {"lo_", "hi_", "c_"}
        params = ["lo_", "hi_", "c_"] + sorted(free_names(body) - bound)
        fname = f"chunk{len(self.functions)}"
        deco = "@@CHUNK_DECORATOR@@"
        self.functions.append(f"{deco}\ndef {fname}({', '.join(params)}):\n" + "\n".join(body))
        # np.int64(c_): parfor types the prange index int64 first and uint64 when
        # lowering; without the cast the chunk function compiles twice
        self.emit(f"{fname}({', '.join(['lo_', 'hi_', 'np.int64(c_)'] + params[3:])})", indent)

    def contiguous(self, a) -> str:
        s = self.atom(a)
        if type(a) is Var and a.aval.ndim > 0 and self.layout.get(a, "C") != "C":
            return f"np.ascontiguousarray({s})"
        return s

    # --- program --------------------------------------------------------------------
    def run(self) -> str:
        ir = self.ir
        check_dtypes(ir, self.target.name)
        for v in ir.invars:
            self.layout[v] = "C"
        # the caller's arrays are never written; regions sharing leading loops form groups
        eqns, self.scatters = scatter_stores(ir.eqns, ir.outvars, self.target.parallel_min_work)
        self.out_slots = self.passed_in_results()
        self.walk(form_groups(placed_sums(eqns, ir.outvars), ir.outvars), ir.outvars, owned=())
        passed = {v for v, _ in self.out_args}
        made = dict.fromkeys(v for v in ir.outvars if type(v) is Var and v not in set(ir.invars) | passed)
        self.returned = list(made)
        outs = [self.atom(v) for v in made]
        outs += [back for _, _, _, back in self.workspaces]  # after the results: the grown tapes
        self.single = len(outs) == 1 and not self.workspaces  # returned bare: boxing a tuple costs a call
        if self.single:
            self.emit(f"return {outs[0]}")
        elif outs:
            self.emit(f"return ({', '.join(outs)},)")
        else:
            self.emit("return None")
        args = [self.name(v) for v in ir.invars] + [f"const{i}" for i in range(len(self.consts))]
        args += [self.name(v) for v, _ in self.out_args]
        args += [w for w, _, _, _ in self.workspaces]
        head = list(self.target.header)
        if any(re.search(r"\bbl\.", ln) for ln in self.lines + self.functions):  # (named: in the cache key)
            head += ["import tracediff.backend.cpu.lib.blas as bl", f"# matrix products: {BLAS}"]
        for fn in self.functions:
            head += ["", "", fn]
        head += ["", "", self.target.decorator or "@@DECORATOR@@", f"def kernel({', '.join(args)}):"]
        return "\n".join(head + self.lines) + "\n"

    def passed_in_results(self) -> dict[str, Var]:
        """The results the caller may allocate: arrays below the huge-page size, each
        once, not an input (the writer takes those a region writes whole)."""
        ir, seen, slots = self.ir, set(self.ir.invars), {}
        for v in ir.invars:  # (named first: the kernel's parameters read in order)
            self.name(v)
        for v in ir.outvars:
            if type(v) is not Var or v in seen or v.aval.ndim == 0:
                continue
            seen.add(v)
            if v.aval.size * v.aval.dtype.itemsize < self.target.fresh_array_min_bytes:
                slots[self.name(v)] = v
        return slots

    def plan(self, e: Eqn):
        self.flat_views = set()  # flat views emitted for this region (emitted again for the next)
        return super().plan(e)

    def region(self, e: Eqn) -> None:
        RegionWriter(self, self.plan(e)).run()

    def op_region_group(self, g, *inputs) -> None:
        """Regions sharing leading loops as one nest (groups.py); separate nests when
        a member reads a value of the group at another prefix index."""
        self.group = g
        self.flat_views = set()
        try:
            plans = [super(CpuWriter, self).plan(m) for m in g.members]
        except NotGroupable:
            plans = None
        finally:
            self.group = None
        if plans is None:
            self.members_apart(g)
            return
        t, d0 = self.target, plans[0].domain[0]
        work = sum(pl.size * pl.cost for pl in plans)
        parallel = (
            work >= t.parallel_min_work
            and d0 > 1
            and not any(pl.may_raise for pl in plans)
            and not any(ov in self.scatters for pl in plans for ov, _, _ in pl.stores)
        )
        writers = [RegionWriter(self, pl, parallel, g) for pl in plans]
        for w in writers:
            w.build()
        write_group(self, writers, g.prefix)

    def members_apart(self, g) -> None:
        """The group's members as separate nests, in order. The walk sees the group as
        one equation, so an input it reads last is dead after it; while a later
        member still reads it, an earlier one must not store into it in place (a
        vmapped gradient's first nest stored into the scatter result its last nest
        then read: wrong per-example gradients)."""
        ctx = self.ctx
        reads = [{a for a in m.inputs if type(a) is Var} for m in g.members]
        for k, m in enumerate(g.members):
            live = set().union(*reads[k + 1 :])
            held = {v: ctx["last"][v] for v in live if ctx["last"].get(v) == ctx["j"]}
            ctx["last"].update(dict.fromkeys(held, ctx["j"] + 1))  # read after this member
            try:
                self.region(m)
            finally:
                ctx["last"].update(held)

    def array_ref(self, a, arr: str, index: list[str]) -> str:
        """A C-contiguous array of two or more axes is read through a flat view with
        constant strides: indexing it by axes multiplies by strides Numba holds at
        run time, and LLVM does not vectorize a loop loading at unknown strides
        (P[j, 0] for j in a loop: 3x slower than p0[j])."""
        shape = a.aval.shape
        if len(shape) < 2 or (type(a) is Var and self.layout.get(a, "C") != "C"):
            return super().array_ref(a, arr, index)
        flat = f"{arr}_fl"
        if flat not in self.flat_views:
            self.flat_views.add(flat)
            self.emit(f"{flat} = {arr}.reshape(-1)")
        return f"{flat}[{flat_index(index, shape)}]"

    def group_ref(self, a, index: list[str]) -> str | None:
        g = self.group
        if g is None or type(a) is not Var or a not in g.made:
            return None
        p = g.prefix
        if index[:p] != [f"i{k}" for k in range(p)]:
            raise NotGroupable
        rest = index[p:] if a in g.scratch else index
        return f"{self.name(a)}[{', '.join(rest)}]" if rest else self.name(a)

    def call_arg(self, a) -> str:
        return self.contiguous(a)

    def out_var(self, v: Var) -> str:
        self.layout[v] = "C"
        return self.name(v)

    def out(self, e: Eqn, layout: str = "C") -> str:
        v = e.outvars[0]
        self.layout[v] = layout
        return self.name(v)

    # --- top-level operations -------------------------------------------------------
    def op_placed_sum(self, p, *inputs) -> None:
        """Values placed at disjoint slices of the result (scatter.py): each written
        into its slice, a product by BLAS directly."""
        o = self.out_var(p.out)
        a = p.out.aval
        for ln in self.empty(o, a.shape, a.dtype, zeros=not p.covered):
            self.emit(ln)
        for ix, v, made in p.terms:
            view = f"{o}[{', '.join(str(i) for i in ix)}]"
            if made is None and v.aval.ndim == a.ndim:  # the value has the unit axes: slices
                self.emit(f"{o}[{', '.join(f'{i}:{i + 1}' for i in ix)}] = {self.atom(v)}")
            elif made is None:
                self.emit(f"{view}[...] = {self.atom(v)}" if v.aval.ndim else f"{view} = {self.atom(v)}")
            elif isinstance(made, tuple):  # (x y)^T = y^T x^T
                x, y = made[0].inputs
                self.emit(f"bl.gemm_into({self.blas_operand(y)}.T, {self.blas_operand(x)}.T, {view})")
            else:
                x, y = made.inputs
                self.emit(f"bl.gemm_into({self.blas_operand(x)}, {self.blas_operand(y)}, {view})")

    def blas_operand(self, a) -> str:
        """A matrix as BLAS reads it: C or F order as it is, else a C copy."""
        return self.atom(a) if self.layout.get(a, "C") in "CF" else self.contiguous(a)

    def op_matmul(self, e, x, y):
        dt = e.outvars[0].aval.dtype
        if dt.kind not in "fc":  # BLAS has no integer or boolean product
            self.matmul_loops(e, x, y)
            return
        o = self.out(e)
        # float32/float64 through NumPy's own BLAS (lib/blas.py), complex through Numba's
        mm, mv = ("bl.gemm", "bl.gemv") if dt.kind == "f" else ("np.dot", "np.dot")
        xs, ys = (self.blas_operand(a) for a in (x, y))
        if e.outvars[0].aval.ndim == 2:
            (m, k), n = x.aval.shape, y.aval.shape[1]
            if dt.kind == "f" and 1 <= k <= SMALL_K and n >= 8 and m > 1:
                self.small_k_matmul(e, x, y)
            elif n == 1 and k > 1:  # matrix @ vector: BLAS gemv, not gemm with n = 1
                self.emit(f"{o} = {mv}({xs}, {self.contiguous(y)}.reshape({k})).reshape(({m}, 1))")
            elif m == 1 and k > 1:  # vector @ matrix: (y^T x^T)^T
                self.emit(f"{o} = {mv}({ys}.T, {self.contiguous(x)}.reshape({k})).reshape((1, {n}))")
            else:
                self.emit(f"{o} = {mm}({xs}, {ys})")
            return
        bshape = e.outvars[0].aval.shape[:-2]
        nb = int(np.prod(bshape))
        m, k = x.aval.shape[-2:]
        n = y.aval.shape[-1]
        self.emit(f"{o}_x = {self.contiguous(x)}.reshape(({nb}, {m}, {k}))")
        self.emit(f"{o}_y = {self.contiguous(y)}.reshape(({nb}, {k}, {n}))")
        self.emit(f"{o} = np.empty(({nb}, {m}, {n}), {dtype_ctor(dt)})")
        self.emit(f"for b_ in range({nb}):")
        if dt.kind == "f":
            self.emit(f"bl.gemm_into({o}_x[b_], {o}_y[b_], {o}[b_])", 2)
        else:
            self.emit(f"{o}[b_] = np.dot({o}_x[b_], {o}_y[b_])", 2)
        self.emit(f"{o} = {o}.reshape({tuple(e.outvars[0].aval.shape)})")

    def small_k_matmul(self, e, x, y):
        """A product with a short inner dimension (k <= SMALL_K: `d @ W.T` with 10
        classes) as loops: each result row is k rows of y scaled and added, by FMA
        in order as BLAS does, vectorized along the row; the literal k is unrolled.
        OpenBLAS takes twice as long on these shapes (its packing and threads do
        not pay for 10 multiply-adds an element)."""
        o = self.out(e)
        (m, k), n = x.aval.shape, y.aval.shape[1]
        dt = e.outvars[0].aval.dtype
        for ln in self.empty(o, (m, n), dt):
            self.emit(ln)
        xs = self.atom(x)
        self.emit(f"{o}_fl = {o}.reshape(-1)")
        self.emit(f"{o}_y = {self.contiguous(y)}.reshape(-1)")  # rows of y contiguous: vector loads
        self.emit(f"for i_ in range({m}):")
        self.emit(f"for j_ in range({n}):", 2)
        self.emit(f"{o}_acc = {dtype_ctor(dt)}(0.0)", 3)
        self.emit(f"for k_ in range({k}):", 3)
        self.emit(f"{o}_acc = vm.fma({xs}[i_, k_], {o}_y[k_ * {n} + j_], {o}_acc)", 4)
        self.emit(f"{o}_fl[i_ * {n} + j_] = {o}_acc", 3)

    def matmul_loops(self, e, x, y):
        """Integer and boolean matmul as loops: integers wrap around as NumPy's do,
        booleans are an `or` of `and`s."""
        o = self.out(e)
        a = e.outvars[0].aval
        nb = int(np.prod(a.shape[:-2]))
        (m, k), n = x.aval.shape[-2:], y.aval.shape[-1]
        dt = dtype_ctor(a.dtype)
        self.emit(f"{o}_x = {self.contiguous(x)}.reshape(({nb}, {m}, {k}))")
        self.emit(f"{o}_y = {self.contiguous(y)}.reshape(({nb}, {k}, {n}))")
        self.emit(f"{o} = np.zeros(({nb}, {m}, {n}), {dt})")
        self.emit(f"for b_ in range({nb}):")
        self.emit(f"for i_ in range({m}):", 2)
        self.emit(f"for k_ in range({k}):", 3)
        self.emit(f"a_ = {o}_x[b_, i_, k_]", 4)
        self.emit(f"for j_ in range({n}):", 4)
        if a.dtype == np.dtype(bool):
            self.emit(f"{o}[b_, i_, j_] = {o}[b_, i_, j_] or (a_ and {o}_y[b_, k_, j_])", 5)
        else:
            self.emit(f"{o}[b_, i_, j_] += a_ * {o}_y[b_, k_, j_]", 5)
        self.emit(f"{o} = {o}.reshape({tuple(a.shape)})")

    def op_transpose(self, e, x, *, perm):
        if perm == (1, 0):  # .T keeps Numba's layout type (C <-> F), so BLAS takes it as is
            o = self.out(e, {"C": "F", "F": "C"}.get(self.layout.get(x, "C"), "A"))
            self.emit(f"{o} = {self.atom(x)}.T")
            return
        o = self.out(e, "A")
        self.emit(f"{o} = np.transpose({self.atom(x)}, {tuple(perm)})")

    def op_reshape(self, e, x, *, shape):
        o = self.out(e)
        if x.aval.ndim == 0:
            self.emit(f"{o} = np.full({tuple(shape)}, {self.atom(x)}, {dtype_ctor(x.aval.dtype)})")
        elif len(shape) == 0:
            self.emit(f"{o} = {self.contiguous(x)}.reshape(-1)[0]")
        else:
            self.emit(f"{o} = {self.contiguous(x)}.reshape({tuple(shape)})")

    def op_broadcast(self, e, x, *, shape):
        o = self.out(e)
        dt = dtype_ctor(e.outvars[0].aval.dtype)
        if len(shape) == 0:  # a scalar stays a scalar
            self.emit(f"{o} = {dt}({self.atom(x)})")
            return
        if (type(x) is Lit and x.val.ndim == 0) or x.aval.ndim == 0:
            self.emit(f"{o} = np.full({tuple(shape)}, {self.atom(x)}, {dt})")
            return
        self.region(copy_region(e))  # materialized by a one-op loop: index arithmetic

    def op_barrier(self, e, x, *after):
        o = self.out(e, self.layout.get(x, "C") if type(x) is Var else "C")
        self.emit(f"{o} = {self.atom(x)}")

    def op_slice(self, e, x, *, spec):
        shape = x.aval.shape
        if (
            spec
            and type(x) is Var
            and self.layout.get(x, "C") == "C"
            and spec[0][2] == 1
            and all(tuple(sp) == (0, n, 1) for sp, n in zip(spec[1:], shape[1:]))
        ):
            # rows of a C array: `x[a:b]` keeps Numba's C layout (x[a:b:1, 0:n:1] would be
            # typed "A"), so loops read it through a flat view at constant strides
            o = self.out(e, "C")
            self.emit(f"{o} = {self.atom(x)}[{spec[0][0]}:{spec[0][1]}]")
            return
        o = self.out(e, "A")
        self.emit(f"{o} = {self.atom(x)}[{_slice_txt(spec)}]" if spec else f"{o} = {self.atom(x)}")

    def op_unslice(self, e, x, *, shape, spec):
        o = self.out(e)
        self.emit(f"{o} = np.zeros({tuple(shape)}, {dtype_ctor(e.outvars[0].aval.dtype)})")
        self.emit(f"{o}[{_slice_txt(spec)}] = {self.atom(x)}")

    def op_concatenate(self, e, *xs, axis):
        # Numba types the result of transposed (F) parts as of any layout: no flat view
        c = all(type(x) is not Var or self.layout.get(x, "C") == "C" for x in xs)
        o = self.out(e, "C" if c else "A")
        parts = ", ".join(self.atom(x) for x in xs)
        self.emit(f"{o} = np.concatenate(({parts},), axis={axis})")
