"""What the region primitives (cond, while, loop, scan) share: checking a region's
inputs, running it with NumPy, and keeping loop results from sharing memory."""

from __future__ import annotations

import numpy as np

from ..core import IR, Aval


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


def distinct(values):
    """Loop results: one carried array may not be two carries."""
    out, seen = [], set()
    for v in values:
        if isinstance(v, np.ndarray) and id(v) in seen:
            v = v.copy()
        seen.add(id(v))
        out.append(v)
    return out


def fresh(results, args):
    """A region result that is one of its arguments is copied: results never
    share memory with the operands (the caller may own them)."""
    return [np.array(r, copy=True) if any(r is a for a in args) else r for r in results]
