"""Liveness and program statistics.

`liveness` says, for each top-level equation, which arrays die after it (a
backend can reuse or free their buffers) and the peak of live bytes.
`program_stats` is what dumps report per pass: equations, arrays
materialized, and bytes kept from the forward sweep for the backward sweep.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core import IR, Var


def nbytes(v: Var) -> int:
    return v.aval.size * v.aval.dtype.itemsize


@dataclass
class Liveness:
    last_use: dict[Var, int]  # var -> index of the last eqn that reads it (len(eqns) = an output)
    dies_after: list[list[Var]]  # per eqn: vars whose last reader it is
    peak_bytes: int  # most bytes of intermediate arrays alive at once


def liveness(ir: IR) -> Liveness:
    n = len(ir.eqns)
    last: dict[Var, int] = {}
    for i, e in enumerate(ir.eqns):
        for a in e.inputs:
            if type(a) is Var:
                last[a] = i
    for v in ir.outvars:
        if type(v) is Var:
            last[v] = n
    dies: list[list[Var]] = [[] for _ in range(n)]
    inputs = set(ir.invars)
    for v, i in last.items():
        if i < n and v not in inputs:
            dies[i].append(v)
    live = peak = 0
    for i, e in enumerate(ir.eqns):
        live += sum(nbytes(v) for v in e.outvars if v in last)
        peak = max(peak, live)
        live -= sum(nbytes(v) for v in dies[i])
    return Liveness(last, dies, peak)


def program_stats(ir: IR) -> dict:
    defined_by = {}
    for e in ir.eqns:
        for v in e.outvars:
            defined_by[v] = e
    kept = set()
    for e in ir.eqns:
        if "bwd" not in e.phase:
            continue
        for a in e.inputs:
            d = defined_by.get(a) if type(a) is Var else None
            if d is not None and d.phase == "fwd" and a.aval.ndim > 0:
                kept.add(a)
    arrays = sum(1 for e in ir.eqns for v in e.outvars if v.aval.ndim > 0)
    return {
        "eqns": len(ir.eqns),
        "arrays": arrays,
        "kept_bytes": sum(nbytes(v) for v in kept),
        "peak_bytes": liveness(ir).peak_bytes,
    }


def stats_text(ir: IR) -> str:
    rows = ["pass        eqns  arrays   kept (MB)   peak (MB)     ms"]
    for s in getattr(ir, "stats", []) or []:
        rows.append(
            f"{s['name']:<10} {s['eqns']:>5} {s['arrays']:>7} {s['kept_bytes'] / 1e6:>11.3f} "
            f"{s['peak_bytes'] / 1e6:>11.3f} {s['ms']:>6.2f}"
        )
    return "\n".join(rows)
