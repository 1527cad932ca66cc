"""Indexing and scans along an axis in generated code: gathers, scatters, bounds
checks, cumsum, argmax/argmin. A mixin of `CpuWriter` (tracediff.backend.cpu.writer)."""

from __future__ import annotations

import numpy as np

from ..base import _msg
from ..literals import dtype_ctor, literal


class IndexingEmitter:
    def flat(self, name: str, a) -> None:
        """`name` = a raveled (a 1-element array for a scalar)."""
        if a.aval.ndim == 0:
            self.emit(f"{name} = np.empty(1, {dtype_ctor(a.aval.dtype)})")
            self.emit(f"{name}[0] = {self.atom(a)}")
        else:
            self.emit(f"{name} = {self.contiguous(a)}.reshape(-1)")

    def unflat(self, o: str, shape) -> None:
        self.emit(f"{o} = {o}[0]" if len(shape) == 0 else f"{o} = {o}.reshape({tuple(shape)})")

    def index_loop(self, e, o: str, n: int, size: int, body: str) -> None:
        """for each of the n flat indices q_ in {o}_i (bounds-checked): body."""
        self.emit(f"for j_ in range({n}):")
        self.emit(f"q_ = {o}_i[j_]", 2)
        self.emit(f"if q_ < 0 or q_ >= {size}:", 2)
        self.emit(f"raise IndexError({_msg(e.prim.name + ': index out of bounds', e)})", 3)
        self.emit(body, 2)

    def _one_index(self, e, idx, size: int) -> str:
        """A 0-d index, bounds-checked: the flat position, as a name."""
        q = self.name.fresh("q")
        self.emit(f"{q} = {self.atom(idx)}")
        self.emit(f"if {q} < 0 or {q} >= {size}:")
        self.emit(f"raise IndexError({_msg(e.prim.name + ': index out of bounds', e)})", 2)
        return q

    def _flat_ref(self, s: str, a) -> str:
        return s if a.aval.ndim == 1 else f"{s}.reshape(-1)"

    def op_index_check(self, e, i, *, n):
        o = self.out(e)
        msg = _msg(f"index out of bounds for an axis of size {n}", e)
        if i.aval.ndim == 0:
            s = self.atom(i)
            self.emit(f"if {s} < {-n} or {s} >= {n}:")
            self.emit(f"raise IndexError({msg})", 2)
            self.emit(f"{o} = {s} + {n} if {s} < 0 else {s}")
            return
        self.emit(f"{o} = {self.contiguous(i)}.copy().reshape(-1)")
        self.emit(f"for j_ in range({o}.size):")
        self.emit(f"if {o}[j_] < {-n} or {o}[j_] >= {n}:", 2)
        self.emit(f"raise IndexError({msg})", 3)
        self.emit(f"if {o}[j_] < 0:", 2)
        self.emit(f"{o}[j_] += {n}", 3)
        self.unflat(o, i.aval.shape)

    def op_gather(self, e, x, idx):
        if idx.aval.ndim == 0 and x.aval.ndim > 0:  # one element: no index array
            o = self.out(e)
            q = self._one_index(e, idx, x.aval.size)
            self.emit(f"{o} = {self._flat_ref(self.contiguous(x), x)}[{q}]")
            return
        o = self.out(e)
        self.flat(f"{o}_x", x)
        self.flat(f"{o}_i", idx)
        self.emit(f"{o} = np.empty({idx.aval.size}, {dtype_ctor(e.outvars[0].aval.dtype)})")
        self.index_loop(e, o, idx.aval.size, x.aval.size, f"{o}[j_] = {o}_x[q_]")
        self.unflat(o, idx.aval.shape)

    def op_scatter_add(self, e, upd, idx, *, shape):
        o = self.out(e)
        out_dt = e.outvars[0].aval.dtype
        acc = dtype_ctor(np.float64 if out_dt.kind == "f" else out_dt)  # sums as NumPy's bincount
        size = int(np.prod(shape))
        self.flat(f"{o}_u", upd)
        self.flat(f"{o}_i", idx)
        self.emit(f"{o}_a = np.zeros({size}, {acc})")
        self.index_loop(e, o, idx.aval.size, size, f"{o}_a[q_] += {o}_u[j_]")
        self.emit(f"{o} = {o}_a.astype({dtype_ctor(out_dt)}).reshape({tuple(shape)})")

    def _scatter_into(self, e, x, upd, idx, store: str):
        if idx.aval.ndim == 0 and x.aval.ndim > 0:  # one element: no index array
            inplace = self.may_update(x)
            o = self.out(e)
            q = self._one_index(e, idx, x.aval.size)
            self.emit(f"{o} = {self.atom(x)}" if inplace else f"{o} = {self.contiguous(x)}.copy()")
            if inplace and self.layout.get(x, "C") != "C":
                self.emit(f"{o} = np.ascontiguousarray({o})")
            ref = self._flat_ref(o, x)
            op = "+=" if "+=" in store else "="
            self.emit(f"{ref}[{q}] {op} {self.atom(upd)}")
            return
        o = self.out(e)
        self.flat(f"{o}_x", x)
        self.flat(f"{o}_u", upd)
        self.flat(f"{o}_i", idx)
        # in place when x is ours and dead from here on; else a copy (x may be the caller's)
        self.emit(f"{o} = {o}_x" if self.may_update(x) else f"{o} = {o}_x.copy()")
        self.index_loop(e, o, idx.aval.size, x.aval.size, store.format(o=o))
        self.unflat(o, x.aval.shape)

    def op_scatter(self, e, x, upd, idx, *, unique):
        self._scatter_into(e, x, upd, idx, "{o}[q_] = {o}_u[j_]")

    def op_scatter_accum(self, e, x, upd, idx):
        self._scatter_into(e, x, upd, idx, "{o}[q_] += {o}_u[j_]")

    def _axis_loops(self, shape, axis, o):
        """Loops over every axis but `axis`; returns (index names, indent)."""
        idx, ind = [], 1
        for k, d in enumerate(shape):
            if k == axis:
                idx.append("ia_")
                continue
            name = f"i{k}_"
            self.emit(f"for {name} in range({d}):", ind)
            idx.append(name)
            ind += 1
        return idx, ind

    def op_cumsum(self, e, x, *, axis):
        o = self.out(e)
        a = e.outvars[0].aval
        xs = self.atom(x)
        self.emit(f"{o} = np.empty({tuple(a.shape)}, {dtype_ctor(a.dtype)})")
        idx, ind = self._axis_loops(a.shape, axis, o)
        at = ", ".join(idx)
        self.emit(f"acc_ = {literal(0, a.dtype)}", ind)
        self.emit(f"for ia_ in range({a.shape[axis]}):", ind)
        self.emit(f"acc_ += {xs}[{at}]", ind + 1)
        self.emit(f"{o}[{at}] = acc_", ind + 1)

    def _arg(self, e, x, axis, op):
        o = self.out(e)
        a = x.aval
        xs = self.atom(x)
        out_shape = tuple(d for k, d in enumerate(a.shape) if k != axis)
        self.emit(f"{o} = np.empty({out_shape}, np.int64)")
        idx, ind = self._axis_loops(a.shape, axis, o)
        at = ", ".join(idx)
        oat = ", ".join(i for i in idx if i != "ia_")
        self.emit("ia_ = 0", ind)
        self.emit(f"best_ = {xs}[{at}]", ind)
        self.emit("arg_ = 0", ind)
        self.emit(f"for ia_ in range(1, {a.shape[axis]}):", ind)
        self.emit(f"w_ = {xs}[{at}]", ind + 1)
        self.emit(f"if w_ {op} best_ or (w_ != w_ and best_ == best_):", ind + 1)
        self.emit("best_ = w_", ind + 2)
        self.emit("arg_ = ia_", ind + 2)
        if out_shape:
            self.emit(f"{o}[{oat}] = arg_", ind)
        else:
            self.emit(f"{o} = arg_", ind)

    def op_argmax(self, e, x, *, axis):
        self._arg(e, x, axis, ">")

    def op_argmin(self, e, x, *, axis):
        self._arg(e, x, axis, "<")
