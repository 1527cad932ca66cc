"""The IR printer: typed SSA text, names given at print time."""

from __future__ import annotations

import numpy as np

from .core import IR, Lit, Var, dtype_name, set_ir_text

_COMMENT_COL = 50


def _names():
    k = 0
    while True:
        n, s = k, ""
        while True:
            s = chr(ord("a") + n % 26) + s
            n = n // 26 - 1
            if n < 0:
                break
        yield s
        k += 1


class _Namer:
    def __init__(self):
        self.names: dict[Var, str] = {}
        self.gen = _names()

    def __call__(self, v: Var) -> str:
        if v not in self.names:
            self.names[v] = next(self.gen)
        return self.names[v]


def _lit(a: Lit) -> str:
    v = a.val
    dt = dtype_name(a.aval.dtype)
    if v.ndim == 0:
        return f"{v.item()!r}:{dt}"
    if v.size <= 6:
        return "[" + ",".join(repr(x) for x in v.ravel().tolist()) + f"]:{a.aval}"
    return f"const:{a.aval}"


def _param(v) -> str:
    if isinstance(v, np.dtype):
        return dtype_name(v)
    if isinstance(v, type) and issubclass(v, np.generic):
        return dtype_name(np.dtype(v))
    if isinstance(v, tuple) and v and all(isinstance(s, tuple) for s in v):
        return "(" + ", ".join(_slice_txt(s) for s in v) + ")"
    return repr(v)


def _slice_txt(s) -> str:
    if len(s) == 3 and all(x is None or isinstance(x, int) for x in s):
        a, b, c = s
        return f"{a}:{'' if b is None else b}" + (f":{c}" if c != 1 else "")
    return repr(s)


def _is_region(v) -> bool:
    return isinstance(v, IR) or (isinstance(v, tuple) and bool(v) and all(isinstance(x, IR) for x in v))


def ir_to_text(ir: IR, namer: _Namer | None = None, indent: str = "  ") -> str:
    name = namer or _Namer()

    def atom(a) -> str:
        return name(a) if type(a) is Var else _lit(a)

    def decl(v: Var) -> str:
        return f"{name(v)}:{v.aval}"

    lines = ["{ lambda " + " ".join(decl(v) for v in ir.invars) + " ."]
    for e in ir.eqns:
        subs = [(k, v) for k, v in e.params.items() if _is_region(v)]
        params = {k: v for k, v in e.params.items() if not _is_region(v)}
        ptxt = "[" + ", ".join(f"{k}={_param(v)}" for k, v in sorted(params.items())) + "]" if params else ""
        lhs = " ".join(decl(v) for v in e.outvars)
        rhs = " ".join(atom(a) for a in e.inputs)
        text = f"{indent}{lhs} = {e.prim.name}{ptxt} {rhs}".rstrip()
        if e.src:
            text = text.ljust(_COMMENT_COL) + f"  # {e.src}"
        lines.append(text)
        for k, v in subs:
            many = isinstance(v, tuple)
            for j, body in enumerate(v if many else (v,)):
                if len(subs) > 1 or many:  # cond branches, a loop's test and body: labelled
                    lines.append(f"{indent}    {k}[{j}]:" if many else f"{indent}    {k}:")
                inner = ir_to_text(body, name, indent + "    ")
                lines.extend(indent + "    " + ln for ln in inner.splitlines())
    lines.append(f"{indent}in (" + " ".join(atom(v) for v in ir.outvars) + ") }")
    return "\n".join(lines)


set_ir_text(ir_to_text)  # str(ir) is this text
