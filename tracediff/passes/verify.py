"""The IR verifier: SSA, types and shapes, re-derived from each primitive's rule."""

from __future__ import annotations

from ..core import IR, Lit, TracediffError, Var
from ..prims.control import regions


class VerifyError(TracediffError, AssertionError):
    pass


def verify(ir: IR, where: str = "") -> IR:
    """Check `ir`; raise `VerifyError` naming the first bad equation."""
    tag = f" after {where}" if where else ""
    defined: set[Var] = set()
    for v in ir.invars:
        if v in defined:
            raise VerifyError(f"input {v} defined twice{tag}")
        defined.add(v)
    for k, e in enumerate(ir.eqns):
        for a in e.inputs:
            if type(a) is Var and a not in defined:
                raise VerifyError(f"eqn {k} ({e.prim.name}) reads {a} before it is defined{tag}")
            if type(a) is not Var and type(a) is not Lit:
                raise VerifyError(f"eqn {k} ({e.prim.name}) has a non-atom input {a!r}{tag}")
        try:
            avals = e.prim.out_avals([a.aval for a in e.inputs], e.params)
        except Exception as err:
            raise VerifyError(f"eqn {k} ({e.prim.name}) is ill-typed{tag}: {err}") from err
        if len(avals) != len(e.outvars):
            raise VerifyError(
                f"eqn {k} ({e.prim.name}) has {len(e.outvars)} outputs, expected {len(avals)}{tag}"
            )
        for v, a in zip(e.outvars, avals):
            if v in defined:
                raise VerifyError(f"eqn {k} ({e.prim.name}) redefines {v}: not SSA{tag}")
            if v.aval.shape != a.shape or v.aval.dtype != a.dtype:
                raise VerifyError(f"eqn {k} ({e.prim.name}) output is {v.aval}, rule says {a}{tag}")
            defined.add(v)
        for body in regions(e.params):
            verify(body, where)
    for v in ir.outvars:
        if type(v) is Var and v not in defined:
            raise VerifyError(f"output {v} is never defined{tag}")
    return ir
