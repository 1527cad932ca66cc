"""What the region primitives (cond, while, loop, scan) share: checking a region's
inputs, running it with NumPy, and keeping loop results from sharing memory."""

from __future__ import annotations

import numpy as np

from ..core import IR, Aval, Lit


def same(a: Aval, b: Aval) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype


def check_inputs(name: str, region: IR, avals, what: str) -> None:
    if len(avals) != len(region.invars) or not all(same(a, v.aval) for a, v in zip(avals, region.invars)):
        got = ", ".join(map(str, avals))
        want = ", ".join(str(v.aval) for v in region.invars)
        raise TypeError(f"{name}: {what} takes ({want}), got ({got})")


def interpreter(region: IR, donate: tuple = ()):
    """The region's interpreter (cached); `donate`: inputs the caller hands over."""
    key = f"_interpreter{donate}"
    run = region.__dict__.get(key)
    if run is None:
        from ..interpret import Interpreter

        run = region.__dict__[key] = Interpreter(region, donate)
    return run


def own(values):
    """Arrays a loop may update in place: copies of the caller's, no two the same."""
    return [np.array(v, copy=True, order="C") if isinstance(v, np.ndarray) else v for v in values]


def _root(a: np.ndarray) -> np.ndarray:
    """The array that owns a's memory (a itself if it is no view)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def roots(arrays) -> set[int]:
    return {id(_root(a)) for a in arrays if isinstance(a, np.ndarray)}


def literal_roots(region: IR) -> frozenset:
    """ids of the buffers of the region's array literals, nested regions' included
    (cached on the region): the program's constants, which nothing may write."""
    got = region.__dict__.get("_literal_roots")
    if got is None:
        ids: set[int] = set()

        def visit(ir: IR) -> None:
            for e in ir.eqns:
                ids.update(roots(a.val for a in e.inputs if isinstance(a, Lit)))
                for v in e.params.values():
                    for sub in v if isinstance(v, tuple) else (v,):
                        if isinstance(sub, IR):
                            visit(sub)
            ids.update(roots(a.val for a in ir.outvars if isinstance(a, Lit)))

        visit(region)
        got = region.__dict__["_literal_roots"] = frozenset(ids)
    return got


def distinct(values, keep=frozenset()):
    """Loop results as the next iteration's carries, which it may update in place: no
    two share memory, and none is (a view of) an array in `keep` (ids of the buffers
    of the loop's constants, its body's literals, its rows), which a carry reset to
    `np.zeros(3)` each iteration was, and the interpreter wrote into the literal."""
    out, seen = [], set()
    for v in values:
        if isinstance(v, np.ndarray):
            r = id(_root(v))
            if r in seen or r in keep:
                v = v.copy()
                r = id(v)
            seen.add(r)
        out.append(v)
    return out


def fresh(results, args, region: IR | None = None):
    """Region results that share memory with an argument (the caller may own it) or
    with one of the region's literals are copied: the caller may update a result."""
    keep = roots(args) | (literal_roots(region) if region is not None else frozenset())
    return [
        np.array(r, copy=True) if isinstance(r, np.ndarray) and id(_root(r)) in keep else r for r in results
    ]
