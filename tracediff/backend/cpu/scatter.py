"""Scatter stores: a region whose only work is to place the outputs of one earlier
region at slices of zeros and add them up is written by that earlier region
itself, which adds each value into the result at its place.

The gradient of `x[1:]` and `x[:-1]` (any stencil: Rosenbrock, finite
differences, total variation) is two cotangents over the slice's shape, each
placed back in x's shape (`unslice`) and summed: a loop over the slice writing
two arrays, and a loop over x reading them back. Written as scatter stores it
is one array of zeros and one loop, `g[i + 1] += a; g[i] += b`, as one writes
it by hand.

Each element of the result is then the sum of the same terms, added in the
loop's order instead of the program's: for two terms the same number (only a
zero's sign may differ), for more a reassociated sum, as the optimizer's
reductions; so more than two terms are gathered this way in gradients only.
A scatter store crosses a parallel loop's chunks: the earlier region keeps to
one thread, so only regions below the parallel threshold are rewritten.

Placed sums (`placed_sums`): the gradient of a stack of slices `x[h]` (heads,
time steps) is a sum of values each placed at its own slice, most often
products. Written as a loop it reads every value at every slice behind a test;
instead each value is written into its slice of the result, a product by BLAS
straight into it (`bl.gemm_into(a, b, out)`), and nothing is added: the slices do not
overlap, so each element is its one value, as in the program.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core import Eqn, Var
from ...prims import elementwise as ew
from ...prims import linalg as la
from ...prims import shape as sh
from ...prims.region import fused_p
from ..lower import region_cost
from .groups import WriterMarker, region_domain


def _placed_terms(body) -> list[tuple[int, tuple]] | None:
    """(body input index, slice spec) of each term when the region's body is only
    a sum of its inputs placed at slices of zeros; else None."""
    if len(body.outvars) != 1:
        return None
    pos = {v: k for k, v in enumerate(body.invars)}
    term: dict[Var, list] = {}
    for e in body.eqns:
        if e.prim is sh.unslice_p and type(e.inputs[0]) is Var and e.inputs[0] in pos:
            term[e.outvars[0]] = [(pos[e.inputs[0]], e.params["spec"])]
        elif e.prim is ew.add_p and all(type(a) is Var and a in term for a in e.inputs):
            term[e.outvars[0]] = term.pop(e.inputs[0]) + term.pop(e.inputs[1])
        else:
            return None
    root = body.outvars[0]
    if root not in term or len(term) != 1:
        return None
    return term[root]


def _readers(eqns: list, outvars) -> tuple[dict[Var, int], set[Var]]:
    """(how many times each value is read, the program's results)."""
    readers: dict[Var, int] = {}
    for e in eqns:
        for a in e.inputs:
            if type(a) is Var:
                readers[a] = readers.get(a, 0) + 1
    return readers, {v for v in outvars if type(v) is Var}


def scatter_stores(eqns: list, outvars, parallel_min_work: int) -> tuple[list, dict]:
    """`eqns` without the regions that become scatter stores, and for each value of
    the earlier regions so stored: [(the result it is added into, slice spec)]."""
    readers, final = _readers(eqns, outvars)
    made_by: dict[Var, int] = {}
    scatters: dict[Var, list] = {}
    dropped: set[int] = set()
    for j, e in enumerate(eqns):
        for v in e.outvars:
            made_by[v] = j
        if e.prim is sh.unslice_p:  # one value placed (outside a region)
            terms = [(0, e.params["spec"])]
        elif e.prim is fused_p:
            terms = _placed_terms(e.params["body"])
        else:
            continue
        if terms is None or (len(terms) > 2 and e.phase != "bwd"):
            continue
        ins = e.inputs
        if any(type(a) is not Var or made_by.get(a) is None for a in ins):
            continue
        sources = {made_by[a] for a in ins}
        if any(
            eqns[i].prim is not fused_p or i in dropped or _work(eqns[i].params["body"]) >= parallel_min_work
            for i in sources
        ):
            continue
        # every value placed is an elementwise output of an earlier region over its
        # whole domain, read by this sum only
        out = e.outvars[0]
        counts: dict[Var, int] = {}
        for a in ins:
            counts[a] = counts.get(a, 0) + 1
        ok = all(
            a.aval.shape == tuple(region_domain(eqns[made_by[a]].params["body"]))
            and a.aval.dtype == out.aval.dtype
            and a not in final
            and readers[a] == counts[a]
            and _elementwise_output(eqns[made_by[a]], a)
            for a in ins
        )
        if not ok:
            continue
        for k, spec in terms:
            scatters.setdefault(ins[k], []).append((out, spec))
        dropped.add(j)
    return [e for j, e in enumerate(eqns) if j not in dropped], scatters


def _work(body) -> int:
    size = 1
    for d in region_domain(body):
        size *= d
    return size * region_cost(body)


def _elementwise_output(e: Eqn, v: Var) -> bool:
    """Is `v` an output of region `e` stored at every index of its domain (not a reduction)?"""
    from ..base import REDUCTIONS

    body = e.params["body"]
    bv = body.outvars[list(e.outvars).index(v)]
    return not any(be.prim in REDUCTIONS and bv in be.outvars for be in body.eqns)


def scatter_index(index: list[str], spec) -> list[str]:
    """The result's index of the element a loop at `index` adds into."""
    out = []
    for i, (start, _stop, step) in zip(index, spec):
        j = i if step == 1 else f"{i} * {step}"
        out.append(j if start == 0 else f"{start} + {j}")
    return out


# --- placed sums ------------------------------------------------------------------------


PLACED = WriterMarker("placed_sum")


@dataclass
class Placed:
    """Looks like an equation to the walk: `out` is zeros with each term's value at
    `out[index]`; a term's product (`made`, moved here) is written there by BLAS."""

    out: Var
    terms: list  # (index of the leading axes, value, the equation making it here or None)
    covered: bool  # the terms fill the result (no zeros to write)
    inputs: tuple
    src: str = ""
    phase: str = "bwd"
    prim: WriterMarker = PLACED

    @property
    def outvars(self) -> tuple:
        return (self.out,)

    @property
    def params(self) -> dict:
        return {}


def _stacked_terms(body) -> list[list[tuple[int, tuple]]] | None:
    """For each output of the body: (body input index, index of the leading axes) of
    each term, when the output is a sum of inputs each placed at one index of the
    leading axes (`unslice` of a reshape adding those unit axes), at distinct
    indices; else None."""
    pos = {v: k for k, v in enumerate(body.invars)}
    lifted: dict[Var, int] = {}  # reshape (1, ..., 1, *x.shape) of input x -> x's position
    term: dict[Var, list] = {}
    for e in body.eqns:
        x = e.inputs[0] if e.inputs else None
        if e.prim is sh.reshape_p and type(x) is Var and x in pos:
            shape = e.params["shape"]
            lead = len(shape) - x.aval.ndim
            if tuple(shape[lead:]) != x.aval.shape or any(d != 1 for d in shape[:lead]):
                return None
            lifted[e.outvars[0]] = pos[x]
        elif e.prim is sh.unslice_p and type(x) is Var and (x in pos or x in lifted):
            k = pos[x] if x in pos else lifted[x]
            spec, full = e.params["spec"], e.params["shape"]
            if x in pos:  # the unit axes are the value's own: those before the full ones
                lead = 0
                while lead < len(full) and spec[lead] != (0, full[lead], 1) and x.aval.shape[lead] == 1:
                    lead += 1
            else:
                lead = len(full) - body.invars[k].aval.ndim
            if any(sp != (0, n, 1) for sp, n in zip(spec[lead:], full[lead:])):
                return None
            # (step first: a reversed slice's stop may be None)
            if lead == 0 or any(step != 1 or stop - start != 1 for start, stop, step in spec[:lead]):
                return None
            term[e.outvars[0]] = [(k, tuple(start for start, _, _ in spec[:lead]))]
        elif e.prim is ew.add_p and all(type(a) is Var and a in term for a in e.inputs):
            term[e.outvars[0]] = term.pop(e.inputs[0]) + term.pop(e.inputs[1])
        else:
            return None
    if set(term) != set(body.outvars) or len(body.outvars) != len(set(body.outvars)):
        return None
    out = [term[v] for v in body.outvars]
    for terms in out:
        if len({ix for _, ix in terms}) != len(terms):
            return None  # two values at one place: a sum, not a placement
    return out


def _product(e: Eqn) -> bool:
    """A floating-point product of two matrices (BLAS writes it into a slice)."""
    return (
        e.prim is la.matmul_p
        and e.outvars[0].aval.ndim == 2
        and all(type(a) is Var and a.aval.ndim == 2 for a in e.inputs)
        and e.outvars[0].aval.dtype.kind == "f"
    )


def placed_sums(eqns: list, outvars) -> list:
    """`eqns` with each region that is a placed sum replaced by a `Placed`, and the
    products only it reads moved into it."""
    readers, final = _readers(eqns, outvars)
    made_by: dict[Var, int] = {}
    for j, e in enumerate(eqns):
        for v in e.outvars:
            made_by[v] = j
    out, moved = list(eqns), set()
    for j, e in enumerate(eqns):
        if e.prim is not fused_p:
            continue
        sums = _stacked_terms(e.params["body"])
        if sums is None or any(type(a) is not Var for a in e.inputs):
            continue
        uses: dict[Var, int] = {}  # how often the region reads each value
        for terms in sums:
            for k, _ in terms:
                uses[e.inputs[k]] = uses.get(e.inputs[k], 0) + 1

        def only_here(v: Var, n: int) -> bool:
            return v not in final and readers.get(v) == n

        group = []
        for res, terms in zip(e.outvars, sums):
            placed, ins = [], []
            for k, ix in terms:
                v = e.inputs[k]
                made, i = None, made_by.get(v)
                if i is not None and only_here(v, 1) and uses[v] == 1 and _product(eqns[i]):
                    made = eqns[i]
                elif i is not None and only_here(v, 1) and uses[v] == 1 and eqns[i].prim is sh.transpose_p:
                    t = eqns[i].inputs[0]  # (a b)^T written as b^T a^T
                    i2 = made_by.get(t)
                    if i2 is not None and only_here(t, 1) and _product(eqns[i2]):
                        made = (eqns[i2], eqns[i])
                if isinstance(made, tuple):
                    moved.update(id(m) for m in made)
                    ins += list(made[0].inputs)
                elif made is not None:
                    moved.add(id(made))
                    ins += list(made.inputs)
                else:
                    ins.append(v)
                placed.append((ix, v, made))
            lead = len(terms[0][1])
            covered = len(terms) == int(np.prod(res.aval.shape[:lead]))
            group.append(Placed(res, placed, covered, tuple(dict.fromkeys(ins)), e.src, e.phase))
        out[j] = group
    flat = []
    for e in out:
        flat.extend(e if isinstance(e, list) else [e])
    return [e for e in flat if id(e) not in moved]
