"""Indexing and scans along an axis as CUDA kernels: gathers, scatters (atomics
where indices may repeat), bounds checks (an error code for the host), cumsum,
argmax/argmin. A mixin of `CudaWriter` (tracediff.backend.cuda.writer)."""

from __future__ import annotations

import numpy as np

from ..base import EmitError, _msg
from ..literals import dtype_ctor, literal

# dtypes numba.cuda's atomic add takes
ATOMIC_ADD = {np.dtype(t) for t in ("float32", "float64", "int32", "int64", "uint32", "uint64")}


class IndexingWriter:
    def _bounds(self, e, q: str, size: int, then: list[str]) -> list[str]:
        """Lines running `then` for an index q inside [0, size), flagging it otherwise."""
        code = self.error("IndexError", eval(_msg(e.prim.name + ": index out of bounds", e)))
        return [f"if {q} < 0 or {q} >= {size}:", f"    err_[0] = {code}", "else:"] + [
            "    " + s for s in then
        ]

    def op_index_check(self, e, i, *, n):
        msg = eval(_msg(f"index out of bounds for an axis of size {n}", e))
        if self.is_host(i):
            s, o = self.atom(i), self.name(e.outvars[0])
            self.on_host.add(e.outvars[0])
            self.emit(f"if {s} < {-n} or {s} >= {n}:")
            self.emit(f"raise IndexError({msg!r})", 1)
            self.emit(f"{o} = {s} + {n} if {s} < 0 else {s}")
            return
        code = self.error("IndexError", msg)
        o = self.alloc(e.outvars[0])
        self.emit(f"{o}_f, {o}_i = {o}.reshape({i.aval.size}), {self.flat(i)}")
        body = [f"q_ = {o}_i[f_]", f"if q_ < {-n} or q_ >= {n}:", f"    err_[0] = {code}"]
        body += [f"{o}_f[f_] = q_ + {n} if q_ < 0 else q_"]
        self.flat_kernel(i.aval.size, body)

    def op_gather(self, e, x, idx):
        o = self.alloc(e.outvars[0])
        n = idx.aval.size if idx.aval.ndim else 1
        self.emit(f"{o}_f, {o}_x = {o}.reshape({n}), {self.flat(x)}")
        if idx.aval.ndim:
            self.emit(f"{o}_i = {self.flat(idx)}")
        body = [f"q_ = {self.scalar_ref(idx) if idx.aval.ndim == 0 else o + '_i[f_]'}"]
        body += self._bounds(e, "q_", x.aval.size, [f"{o}_f[f_] = {o}_x[q_]"])
        self.flat_kernel(n, body)

    def _scatter(self, e, o: str, upd, idx, size: int, store: str, serial: bool) -> None:
        """For each j: q = idx[j] (bounds-checked), then `store` (with {o}_f, {o}_u, q_, f_)."""
        if idx.aval.ndim:
            self.emit(f"{o}_i = {self.flat(idx)}")
        u = self.scalar_ref(upd) if upd.aval.ndim == 0 else f"{o}_u[f_]"
        if upd.aval.ndim:
            self.emit(f"{o}_u = {self.flat(upd)}")
        self.emit(f"{o}_f = {o}.reshape({size})")
        q = self.scalar_ref(idx) if idx.aval.ndim == 0 else f"{o}_i[f_]"
        body = [f"q_ = {q}"] + self._bounds(e, "q_", size, [store.format(o=o, u=u)])
        n = idx.aval.size if idx.aval.ndim else 1
        if serial:  # repeated indices: the last write wins, as in NumPy
            lines = ["if cuda.grid(1) == 0:", f"    for f_ in range({n}):"]
            self.kernel(lines + ["        " + s for s in body], 1, 1)
        else:
            self.flat_kernel(n, body)

    def _atomic(self, e, dt) -> None:
        if np.dtype(dt) not in ATOMIC_ADD:
            raise EmitError(
                f"{e.prim.name}: target 'cuda' adds into {np.dtype(dt)} arrays with atomics, which CUDA "
                "has only for float32/float64/int32/int64/uint32/uint64" + (f" (at {e.src})" if e.src else "")
            )

    def op_scatter_add(self, e, upd, idx, *, shape):
        dt = e.outvars[0].aval.dtype
        self._atomic(e, dt)
        o = self.name(e.outvars[0])
        self.emit(f"{o} = rt.fill(pool, {tuple(shape)}, {dtype_ctor(dt)}, 0)")
        self.pooled.add(e.outvars[0])
        self._scatter(e, o, upd, idx, int(np.prod(shape)), "cuda.atomic.add({o}_f, q_, {u})", False)

    def _copy_of(self, e, x) -> str:
        o = self.name(e.outvars[0])
        if self.may_update(x):  # ours and dead from here on: updated in place (a loop's carry too)
            self.emit(f"{o} = {self.atom(x)}")
            if x in self.pooled:
                self.pooled.discard(x)
                self.pooled.add(e.outvars[0])
        else:
            self.emit(f"{o} = rt.copy(pool, {self.device(x)})")
            self.pooled.add(e.outvars[0])
        return o

    def op_scatter(self, e, x, upd, idx, *, unique):
        o = self._copy_of(e, x)
        self._scatter(e, o, upd, idx, x.aval.size, "{o}_f[q_] = {u}", not unique and idx.aval.size > 1)

    def op_scatter_accum(self, e, x, upd, idx):
        o = self._copy_of(e, x)
        atomic = x.aval.dtype in ATOMIC_ADD
        store = "cuda.atomic.add({o}_f, q_, {u})" if atomic else "{o}_f[q_] += {u}"
        self._scatter(e, o, upd, idx, x.aval.size, store, not atomic and idx.aval.size > 1)

    def _lines_over(self, shape, axis) -> tuple[int, list[str]]:
        """(number of lines along `axis`, the lines setting the other axes' indices from f_)."""
        other = [k for k in range(len(shape)) if k != axis]
        n = int(np.prod([shape[k] for k in other]))
        dims = [shape[k] for k in other]
        lines = []
        for j, k in enumerate(other):
            inner = int(np.prod(dims[j + 1 :]))
            lines.append(f"i{k}_ = (f_ // {inner}) % {dims[j]}")
        return n, lines

    def op_cumsum(self, e, x, *, axis):
        a = e.outvars[0].aval
        o = self.alloc(e.outvars[0])
        n, lines = self._lines_over(a.shape, axis)
        at = ", ".join("ia_" if k == axis else f"i{k}_" for k in range(a.ndim))
        body = lines + [f"acc_ = {literal(0, a.dtype)}", f"for ia_ in range({a.shape[axis]}):"]
        body += [f"    acc_ += {self.atom(x)}[{at}]", f"    {o}[{at}] = acc_"]
        self.flat_kernel(n, body)

    def _arg(self, e, x, axis, op):
        o = self.alloc(e.outvars[0])
        shape = x.aval.shape
        n, lines = self._lines_over(shape, axis)
        at = ", ".join("ia_" if k == axis else f"i{k}_" for k in range(len(shape)))
        oat = ", ".join(f"i{k}_" for k in range(len(shape)) if k != axis) or "0"
        xs = self.atom(x)
        body = lines + ["ia_ = 0", f"best_ = {xs}[{at}]", "arg_ = 0", f"for ia_ in range(1, {shape[axis]}):"]
        body += [f"    w_ = {xs}[{at}]", f"    if w_ {op} best_ or (w_ != w_ and best_ == best_):"]
        body += ["        best_ = w_", "        arg_ = ia_", f"{o}[{oat}] = arg_"]
        self.flat_kernel(n, body)

    def op_argmax(self, e, x, *, axis):
        self._arg(e, x, axis, ">")

    def op_argmin(self, e, x, *, axis):
        self._arg(e, x, axis, "<")
