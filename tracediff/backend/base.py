"""What every emitter shares: targets, names, reductions' identities, dtype checks."""

from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass, field

import numpy as np

from ..core import IR, REGION, Eqn, Var
from ..prims import reduce as rd
from ..prims import shape as sh
from ..prims.control import regions
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


def acc_dtype(kind: str, dt: np.dtype, target: Target | None = None) -> np.dtype:
    wide = target is None or target.wide_float_sums
    if wide and dt == np.dtype(np.float32) and kind in ("sum", "prod"):
        return np.dtype(np.float64)  # accumulate float32 sums in float64
    if wide and dt == np.dtype(np.complex64) and kind in ("sum", "prod"):
        return np.dtype(np.complex128)
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
    # a top-level while loop's large tapes come from buffers the caller passes in and
    # gets back (grown): a later call reuses them instead of faulting in fresh pages
    reuse_tapes: bool = False
    # float32 sums and products accumulate in float64 (CPU: free, and as accurate
    # as the interpreter); a GPU keeps float32 and sums in trees instead
    wide_float_sums: bool = True

    def scalar_code(self, prim, dt_out: np.dtype) -> str:
        """The primitive's scalar code for this target, most specific first:
        `<target>:fast:<dtype>` (math="fast" only), `<target>:<dtype>`,
        `<target>:kind:<kind>`, `<target>`, then the portable `kind:<kind>` and `any`."""
        dt = np.dtype(dt_out)
        keys = [f"{self.name}:fast:{dt.name}"] if self.math == "fast" else []
        keys += [f"{self.name}:{dt.name}", f"{self.name}:kind:{dt.kind}", self.name, f"kind:{dt.kind}", "any"]
        tpl = next((prim.scalar[k] for k in keys if k in prim.scalar), None)
        if tpl is None:
            raise EmitError(f"{prim.name}: no scalar code for target {self.name}")
        return tpl.replace("{dt}", dtype_ctor(dt))


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


def _msg(text: str, e: Eqn) -> str:
    return repr(text + (f" (at {e.src})" if e.src else ""))


SUPPORTED_DTYPES = {
    np.dtype(t)
    for t in (
        "float32",
        "float64",
        "complex64",
        "complex128",
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
            if v.aval.dtype not in SUPPORTED_DTYPES or (v.aval.dtype.kind == "c" and target != "cpu"):
                raise TypeError(
                    f"{e.prim.name}: dtype {v.aval.dtype} ({v.aval}) is not supported by target "
                    f"{target!r}"
                    + (f" (at {e.src})" if e.src else "")
                    + "; use float32/float64, or target='interpret'"
                )
            if -1 in v.aval.shape and e.prim.name != "scan":
                # a length known at run time (a while loop's tape) is read only by
                # loops; compiled code for anything else would loop over -1 elements
                raise EmitError(
                    f"internal error: {e.prim.name} of a value of run-time length {v.aval}"
                    + (f" (at {e.src})" if e.src else "")
                    + "; please report it, and use target='interpret' meanwhile"
                )


def _slice_txt(spec) -> str:
    parts = []
    for start, stop, step in spec:
        parts.append(f"{start}:{'' if stop is None else stop}:{step}")
    return ", ".join(parts)


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


def header_names(header: list[str]) -> set[str]:
    """The module-level names a target's header imports (np, math, vm, ...)."""
    names = set()
    for ln in header:
        m = re.match(r"\s*(?:from\s+\S+\s+)?import\s+(.+)", ln)
        if m:
            for part in m.group(1).split(","):
                names.add(part.split(" as ")[-1].strip().split(".")[0])
    return names


def free_names(lines: list[str]) -> set[str]:
    """Names a block of generated code reads but does not assign."""
    used, assigned = set(), set()
    for ln in lines:
        used |= set(re.findall(r"(?<![.\w])([A-Za-z_]\w*)", ln))
        m = re.match(r"\s*([A-Za-z_]\w*)\s*(?:[-+*/]?=)(?!=)", ln) or re.match(r"\s*for\s+(\w+)\s+in\b", ln)
        if m:
            assigned.add(m.group(1))
    return used - assigned - _BUILTINS - set(keyword.kwlist) - set(dir(builtins))
