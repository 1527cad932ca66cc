"""IR -> Python source of one Numba function: the emitter every target shares.

The whole optimized program becomes one function `kernel(inputs..., consts...)`
returning its computed outputs. A fused region becomes a loop nest over its
domain: elementwise values are scalars in registers, placed at the outermost
loop level they depend on (loop-invariant code motion), index maps
(broadcast/reshape) become index arithmetic, reductions become accumulators
(float32 sums accumulate in float64). Contractions go to BLAS (`np.dot`).

A `Target` supplies what differs: the decorator, the parallel loop form and
the scalar code of each primitive.

Split by concern: `emit_region` (fused regions), `emit_indexing` (gathers,
scatters, scans along an axis), `emit_control` (cond, loops, scans over
tapes), `base` (targets, names, dtype checks).
"""

from __future__ import annotations

import numpy as np

from ..core import ELEMENTWISE, IR, REGION, Eqn, Lit, Var
from ..prims import elementwise as ew
from ..prims import indexing as ix
from ..prims import linalg as la
from ..prims import shape as sh
from ..prims.region import fused_p
from .base import REDUCTIONS, SUPPORTED_DTYPES, EmitError, Names, Target, _slice_txt, check_dtypes
from .emit_control import ControlFlowEmitter
from .emit_indexing import IndexingEmitter
from .emit_region import RegionEmitter, _free_names, _header_names, _singleton_region
from .literals import dtype_ctor, literal


class ProgramEmitter(ControlFlowEmitter, IndexingEmitter):
    """Emits the kernel source of one top-level program."""

    def __init__(self, ir: IR, target: Target):
        self.ir, self.target = ir, target
        self.name = Names("v")
        self.lines: list[str] = []
        self.functions: list[str] = []  # outlined chunk bodies (whole functions), before the kernel
        self.consts: list[np.ndarray] = []  # array literals passed as arguments
        self.const_names: dict[int, str] = {}
        self.layout: dict[Var, str] = {}  # "C", "F" or "A" (NumPy view of any layout)
        self.depth = 0  # regions open around the statement being written
        # tape buffers passed in and returned: (argument, row shape, dtype, returned name)
        self.workspaces: list[tuple[str, tuple, np.dtype, str]] = []

    # --- atoms ----------------------------------------------------------------------
    def const(self, lit: Lit) -> str:
        if lit.val.ndim == 0:
            return literal(lit.val, lit.aval.dtype)
        key = id(lit.val)
        if key not in self.const_names:
            self.const_names[key] = f"k{len(self.consts)}"
            self.consts.append(np.ascontiguousarray(lit.val, dtype=lit.aval.dtype))
        return self.const_names[key]

    def atom(self, a) -> str:
        return self.const(a) if type(a) is Lit else self.name(a)

    def emit(self, line: str, indent: int = 1):
        self.lines.append("    " * indent + line)

    def empty(self, name: str, shape, dt: np.dtype) -> list[str]:
        """The lines allocating an uninitialized array."""
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
        bound = _header_names(self.target.header) | {"lo_", "hi_", "c_"}
        params = ["lo_", "hi_", "c_"] + sorted(_free_names(body) - bound)
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
        self.walk(ir.eqns, ir.outvars, owned=())  # the caller's arrays are never written
        outs = [self.atom(v) for v in ir.outvars if type(v) is Var and v not in set(ir.invars)]
        outs += [back for _, _, _, back in self.workspaces]  # after the results: the grown tapes
        self.single = len(outs) == 1 and not self.workspaces  # returned bare: boxing a tuple costs a call
        self.emit(f"return {outs[0]}" if self.single else f"return ({', '.join(outs)}{',' if outs else ''})")
        args = [self.name(v) for v in ir.invars] + [f"k{i}" for i in range(len(self.consts))]
        args += [w for w, _, _, _ in self.workspaces]
        head = list(self.target.header)
        for fn in self.functions:
            head += ["", "", fn]
        head += ["", "", self.target.decorator or "@@DECORATOR@@", f"def kernel({', '.join(args)}):"]
        return "\n".join(head + self.lines) + "\n"

    def walk(self, eqns, outvars, owned) -> None:
        """Emit `eqns`, knowing which arrays this code owns and when each value is
        last read: an update (scatter) of an owned array read by nobody afterwards
        stores into it in place instead of copying it (an in-place loop is O(n))."""
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

    def may_update(self, x) -> bool:
        """Can the value x be overwritten now (owned, and dead after this equation)?"""
        ctx = getattr(self, "ctx", None)
        if ctx is None or type(x) is not Var or x not in ctx["owned"] or ctx["last"].get(x) != ctx["j"]:
            return False
        j = ctx["j"]
        return not any(b is x and ctx["last"].get(v, -1) > j for v, b in ctx["base"].items())

    def eqn(self, e: Eqn):
        p = e.prim
        if p is fused_p:
            RegionEmitter(self, e).run()
        elif p.kind == ELEMENTWISE or p in REDUCTIONS:
            RegionEmitter(self, _singleton_region(e)).run()
        else:
            method = getattr(self, f"op_{p.name}", None)
            if method is None:
                raise EmitError(f"the {self.target.name} backend cannot compile {p.name} yet")
            method(e, *e.inputs, **e.params)

    def out(self, e: Eqn, layout: str = "C") -> str:
        v = e.outvars[0]
        self.layout[v] = layout
        return self.name(v)

    # --- top-level operations -------------------------------------------------------
    def op_matmul(self, e, x, y):
        if e.outvars[0].aval.dtype.kind not in "fc":  # BLAS has no integer or boolean product
            self.matmul_loops(e, x, y)
            return
        o = self.out(e)
        xs, ys = (self.atom(a) if self.layout.get(a, "C") in "CF" else self.contiguous(a) for a in (x, y))
        if e.outvars[0].aval.ndim == 2:
            (m, k), n = x.aval.shape, y.aval.shape[1]
            if n == 1 and k > 1:  # matrix @ vector: BLAS gemv, not gemm with n = 1
                self.emit(f"{o} = np.dot({xs}, {self.contiguous(y)}.reshape({k})).reshape(({m}, 1))")
            elif m == 1 and k > 1:  # vector @ matrix
                self.emit(f"{o} = np.dot({self.contiguous(x)}.reshape({k}), {ys}).reshape((1, {n}))")
            else:
                self.emit(f"{o} = np.dot({xs}, {ys})")
            return
        bshape = e.outvars[0].aval.shape[:-2]
        nb = int(np.prod(bshape))
        m, k = x.aval.shape[-2:]
        n = y.aval.shape[-1]
        dt = dtype_ctor(e.outvars[0].aval.dtype)
        self.emit(f"{o}_x = {self.contiguous(x)}.reshape(({nb}, {m}, {k}))")
        self.emit(f"{o}_y = {self.contiguous(y)}.reshape(({nb}, {k}, {n}))")
        self.emit(f"{o} = np.empty(({nb}, {m}, {n}), {dt})")
        self.emit(f"for b_ in range({nb}):")
        self.emit(f"{o}[b_] = np.dot({o}_x[b_], {o}_y[b_])", 2)
        self.emit(f"{o} = {o}.reshape({tuple(e.outvars[0].aval.shape)})")

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
        # materialize through a one-op loop: the broadcast becomes index arithmetic
        xin = Var(x.aval) if type(x) is Var else x
        mid, res = Var(e.outvars[0].aval), Var(e.outvars[0].aval)
        body = IR(
            [xin] if type(x) is Var else [],
            [
                Eqn(sh.broadcast_p, (xin,), (mid,), {"shape": shape}),
                Eqn(ew.stop_gradient_p, (mid,), (res,), {}),
            ],
            [res],
        )
        region = Eqn(fused_p, (x,) if type(x) is Var else (), e.outvars, {"body": body, "name": "copy"})
        RegionEmitter(self, region).run()

    def op_slice(self, e, x, *, spec):
        o = self.out(e, "A")
        self.emit(f"{o} = {self.atom(x)}[{_slice_txt(spec)}]" if spec else f"{o} = {self.atom(x)}")

    def op_unslice(self, e, x, *, shape, spec):
        o = self.out(e)
        self.emit(f"{o} = np.zeros({tuple(shape)}, {dtype_ctor(e.outvars[0].aval.dtype)})")
        self.emit(f"{o}[{_slice_txt(spec)}] = {self.atom(x)}")

    def op_concatenate(self, e, *xs, axis):
        o = self.out(e)
        parts = ", ".join(self.atom(x) for x in xs)
        self.emit(f"{o} = np.concatenate(({parts},), axis={axis})")


def emit_program(ir: IR, target: Target) -> tuple[str, list[np.ndarray]]:
    em = ProgramEmitter(ir, target)
    src = em.run()
    return src, em.consts


__all__ = ["emit_program", "Target", "EmitError", "SUPPORTED_DTYPES", "REGION", "ew", "ix", "la"]
