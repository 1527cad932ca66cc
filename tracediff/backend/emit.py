"""IR -> Python source of one Numba function: the emitter every target shares.

The whole optimized program becomes one function `kernel(inputs..., consts...)`
returning its computed outputs. A fused region becomes a loop nest over its
domain: elementwise values are scalars in registers, placed at the outermost
loop level they depend on (loop-invariant code motion), index maps
(broadcast/reshape) become index arithmetic, reductions become accumulators
(float32 sums accumulate in float64). Contractions go to BLAS (`np.dot`).

A `Target` supplies what differs: the decorator, the parallel loop form and
the scalar code of each primitive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..core import ELEMENTWISE, IR, REGION, Eqn, Lit, Var
from ..prims import elementwise as ew
from ..prims import indexing as ix
from ..prims import linalg as la
from ..prims import reduce as rd
from ..prims import shape as sh
from ..prims.control import regions
from ..prims.region import fused_p
from .emit_control import ControlFlowEmitter
from .literals import dtype_ctor, literal

INDEX_OPS = (sh.broadcast_p, sh.reshape_p, sh.unslice_p)
REDUCTIONS = {
    rd.reduce_sum_p: "sum",
    rd.reduce_prod_p: "prod",
    rd.reduce_max_p: "max",
    rd.reduce_min_p: "min",
}


class EmitError(NotImplementedError):
    pass


def acc_dtype(kind: str, dt: np.dtype) -> np.dtype:
    if dt == np.dtype(np.float32) and kind in ("sum", "prod"):
        return np.dtype(np.float64)  # accumulate float32 sums in float64
    if dt.kind in "biu" and kind in ("sum", "prod"):
        return np.dtype(np.int64)
    return dt


def identity(kind: str, dt: np.dtype) -> str:
    if kind == "sum":
        return literal(0, dt)
    if kind == "prod":
        return literal(1, dt)
    if dt.kind == "f":
        return literal(-np.inf if kind == "max" else np.inf, dt)
    info = np.iinfo(dt) if dt.kind in "iu" else None
    if info is None:
        return literal(kind == "min", dt)
    return literal(info.min if kind == "max" else info.max, dt)


def combine(kind: str, acc: str, v: str) -> str:
    """Statement folding `v` into `acc` (NaN propagates as in NumPy)."""
    if kind == "sum":
        return f"{acc} += {v}"
    if kind == "prod":
        return f"{acc} *= {v}"
    op = ">" if kind == "max" else "<"
    return f"{acc} = {v} if ({v} {op} {acc} or {v} != {v}) else {acc}"


@dataclass
class Target:
    name: str
    decorator: str
    header: list[str]
    parallel_min_work: int = 1 << 15  # elements x operations per element
    max_chunks: int = 32
    scalar: dict = field(default_factory=dict)

    math: str = "fast"  # "fast": vectorizable tracediff.backend.vmath; "libm": scalar calls
    # a call made on each freshly allocated large array ({0}: its name), e.g. to ask for huge pages
    fresh_array_call: str | None = None
    fresh_array_min_bytes: int = 1 << 22

    def scalar_code(self, prim, dt_out: np.dtype) -> str:
        tpl = None
        if self.math == "fast":
            tpl = prim.scalar.get(f"fast:{np.dtype(dt_out).name}")
        tpl = (
            tpl
            or prim.scalar.get(f"kind:{np.dtype(dt_out).kind}")
            or prim.scalar.get(self.name)
            or prim.scalar.get("any")
        )
        if tpl is None:
            raise EmitError(f"{prim.name}: no scalar code for target {self.name}")
        return tpl.replace("{dt}", dtype_ctor(dt_out))


class Names:
    def __init__(self, prefix: str):
        self.prefix, self.n, self.map = prefix, 0, {}

    def __call__(self, v: Var) -> str:
        if v not in self.map:
            self.map[v] = f"{self.prefix}{self.n}"
            self.n += 1
        return self.map[v]

    def fresh(self, stem: str = "") -> str:
        self.n += 1
        return f"{stem or self.prefix}{self.n}"


class ProgramEmitter(ControlFlowEmitter):
    """Emits the kernel source of one top-level program."""

    def __init__(self, ir: IR, target: Target):
        self.ir, self.target = ir, target
        self.name = Names("v")
        self.lines: list[str] = []
        self.functions: list[str] = []  # outlined chunk bodies (whole functions), before the kernel
        self.consts: list[np.ndarray] = []  # array literals passed as arguments
        self.const_names: dict[int, str] = {}
        self.layout: dict[Var, str] = {}  # "C", "F" or "A" (NumPy view of any layout)

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
        self.single = len(outs) == 1  # returned bare: boxing a tuple costs a call
        self.emit(f"return {outs[0]}" if self.single else f"return ({', '.join(outs)}{',' if outs else ''})")
        args = [self.name(v) for v in ir.invars] + [f"k{i}" for i in range(len(self.consts))]
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


def _msg(text: str, e: Eqn) -> str:
    return repr(text + (f" (at {e.src})" if e.src else ""))


SUPPORTED_DTYPES = {
    np.dtype(t)
    for t in (
        "float32",
        "float64",
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
    )
}


def check_dtypes(ir: IR, target: str) -> None:
    for e in ir.eqns:
        if e.prim.kind == REGION:  # name the operation inside, not the region
            for body in regions(e.params):
                check_dtypes(body, target)
        for v in list(e.inputs) + list(e.outvars):
            if v.aval.dtype not in SUPPORTED_DTYPES:
                raise TypeError(
                    f"{e.prim.name}: dtype {v.aval.dtype} ({v.aval}) is not supported by target "
                    f"{target!r}"
                    + (f" (at {e.src})" if e.src else "")
                    + "; use float32/float64, or target='interpret'"
                )


def _slice_txt(spec) -> str:
    parts = []
    for start, stop, step in spec:
        parts.append(f"{start}:{'' if stop is None else stop}:{step}")
    return ", ".join(parts)


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


def emit_program(ir: IR, target: Target) -> tuple[str, list[np.ndarray]]:
    em = ProgramEmitter(ir, target)
    src = em.run()
    return src, em.consts


__all__ = ["emit_program", "Target", "EmitError", "REGION", "ew", "ix", "la"]
