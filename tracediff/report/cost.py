"""A cost model of an optimized program: floating-point operations, bytes moved,
bytes kept from the forward sweep for the backward one, and a time estimate.

The model counts what the compiled code does at the top level of a program:
each top-level equation (a fused loop nest, a GEMM, a library call, a copy)
reads its array operands from memory once and writes its results once; a fused
region's temporaries live in registers and are not counted. FLOPs: one per
element of an elementwise or reducing operation (a transcendental function is
one FLOP too; its weight in the time estimate is `Primitive.cost`), `2·m·n·k`
for a matrix product, the usual leading terms for factorizations. A loop's body
counts once per iteration where the trip count is known, once where it is not.

The time estimate is a roofline per top-level equation, max(compute, memory),
with a machine's rates (`Machine`), summed over the program.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core import CONTRACTION, ELEMENTWISE, IR, REDUCTION, SHAPE, Eqn, Var
from ..passes.stats import program_stats

# equations that cost nothing at run time where the compiled code makes views
_FREE = frozenset({"reshape", "stop_gradient", "broadcast", "barrier", "index_check"})


def _square(e: Eqn) -> int:
    a = e.inputs[0].aval
    return a.shape[-1] if a.ndim else 1


def _batch(e: Eqn) -> int:
    a = e.inputs[0].aval
    return max(1, a.size // max(1, _square(e) ** 2)) if a.ndim >= 2 else 1


# leading FLOP terms of the library operations (n: the matrices' order)
_LIBRARY_FLOPS = {
    "cholesky": lambda e: _batch(e) * _square(e) ** 3 // 3,
    "lu": lambda e: _batch(e) * 2 * _square(e) ** 3 // 3,
    "qr": lambda e: _batch(e) * 4 * _square(e) ** 3 // 3,
    "eigh": lambda e: _batch(e) * 9 * _square(e) ** 3,
    "svd": lambda e: _batch(e) * 12 * _square(e) ** 3,
    "expm": lambda e: _batch(e) * 20 * _square(e) ** 3,
    "slogdet": lambda e: _batch(e) * 2 * _square(e) ** 3 // 3,
    "solve": lambda e: _batch(e) * (2 * _square(e) ** 3 // 3 + 2 * e.inputs[1].aval.size * _square(e)),
    "triangular_solve": lambda e: e.inputs[1].aval.size * _square(e),
    "fft": lambda e: 5 * e.outvars[0].aval.size * max(1, e.outvars[0].aval.size.bit_length()),
}


def nbytes(a) -> int:
    return a.aval.size * a.aval.dtype.itemsize if type(a) is Var else 0


@dataclass
class Cost:
    """What one equation (with its body) does."""

    flops: int = 0  # floating-point operations
    work: float = 0.0  # elementwise work in additions (flops weighted by Primitive.cost)
    gemm_flops: int = 0  # the part done by matrix products (BLAS speed)
    read: int = 0  # bytes read from memory
    written: int = 0  # bytes written
    by_line: dict[str, float] = field(default_factory=dict)  # user line -> share of work

    def add(self, other: Cost, times: int = 1) -> None:
        self.flops += other.flops * times
        self.work += other.work * times
        self.gemm_flops += other.gemm_flops * times
        self.read += other.read * times
        self.written += other.written * times
        for k, v in other.by_line.items():
            self.by_line[k] = self.by_line.get(k, 0.0) + v * times

    @property
    def bytes(self) -> int:
        return self.read + self.written


def _inner(ir: IR, trips: dict) -> Cost:
    """The compute of a body whose temporaries are not memory traffic."""
    c = Cost()
    for e in ir.eqns:
        c.add(eqn_cost(e, top=False, trips=trips))
    return c


def _trips(e: Eqn, trips: dict) -> int:
    """A loop's trip count: known when traced, else as counted at the report's inputs
    (by source line), else one."""
    p = e.params
    if e.prim.name == "loop" and isinstance(p.get("n"), int):
        return p["n"]
    if e.prim.name == "scan" and isinstance(p.get("length"), int):
        return p["length"]
    return max(1, int(trips.get(e.src, 1)))


# indexing that compiled code does in place or on the touched elements only: the
# traffic is the elements moved, not the whole operand
_SPARSE = frozenset({"scatter", "scatter_add", "scatter_accum", "gather", "index_check"})


def _traffic(e: Eqn, skip: frozenset) -> tuple[int, int]:
    """(bytes read, bytes written) by a top-level equation."""
    name = e.prim.name
    if name in _FREE or (e.prim.may_alias and e.prim.kind == SHAPE):
        return 0, 0
    if name in _SPARSE:
        moved = sum(nbytes(a) for a in e.inputs[1:] if type(a) is Var and a not in skip)
        if name == "gather":
            return moved, sum(nbytes(v) for v in e.outvars)
        return moved, moved
    read = sum(nbytes(a) for a in {a for a in e.inputs if type(a) is Var and a not in skip})
    return read, sum(nbytes(v) for v in e.outvars if v not in skip)


def eqn_cost(e: Eqn, top: bool = True, trips: dict | None = None, skip: frozenset = frozenset()) -> Cost:
    """The cost of one equation; `top`: its operands and results are in memory
    (except the values in `skip`, which a fused loop nest keeps in registers);
    `trips`: loop trip counts by source line, where they are not known when traced."""
    trips = trips or {}
    c = Cost()
    name, kind = e.prim.name, e.prim.kind
    out = e.outvars[0].aval if e.outvars else None
    line = e.src or "(tracediff)"
    body = e.params.get("body")
    if isinstance(body, IR):
        if name == "fused":
            c.add(_inner(body, trips))
        else:  # a loop: its body's arrays are made each iteration
            inner = Cost()
            for b in body.eqns:
                inner.add(eqn_cost(b, top=True, trips=trips))
            if isinstance(e.params.get("cond"), IR):
                inner.add(_inner(e.params["cond"], trips))
            c.add(inner, _trips(e, trips))
    elif isinstance(e.params.get("branches"), tuple):
        costs = [_inner(b, trips) for b in e.params["branches"]]
        c.add(max(costs, key=lambda k: k.work))
    elif kind == CONTRACTION and name == "matmul":
        k = e.inputs[0].aval.shape[-1]
        c.flops = c.gemm_flops = 2 * out.size * k
        c.by_line[line] = float(c.flops)
    elif name in _LIBRARY_FLOPS:
        c.flops = c.gemm_flops = int(_LIBRARY_FLOPS[name](e))
        c.by_line[line] = float(c.flops)
    elif kind in (ELEMENTWISE, REDUCTION) or name in ("cumsum", "linrec"):
        n = max(a.aval.size for a in e.inputs) if kind == REDUCTION else (out.size if out else 0)
        if out is not None and out.dtype.kind in "fc" or any(a.aval.dtype.kind in "fc" for a in e.inputs):
            c.flops = n
        c.work = float(n * e.prim.cost)
        c.by_line[line] = c.work
    if top:
        r, w = _traffic(e, skip)
        c.read += r
        c.written += w
    return c


@dataclass
class Machine:
    """Rates of this machine, measured (`report.measure.calibrate`)."""

    bandwidth: float  # bytes/s, a large copy (read + write)
    gemm: dict[str, float]  # FLOP/s of a matrix product by dtype name
    elementwise: float  # additions/s of a vectorized loop in cache, one thread
    call: float  # seconds of a compiled call with nothing to do
    threads: int = 1  # what a parallel loop runs on
    parallel_min_work: float = float("inf")  # elements x cost from which a loop is parallel


@dataclass
class Region:
    """One top-level equation as the report lists it."""

    eqn: Eqn
    cost: Cost
    seconds: float  # estimated
    kept: int  # bytes of its results the backward sweep reads

    @property
    def intensity(self) -> float:
        """FLOPs per byte moved."""
        return self.cost.flops / self.cost.bytes if self.cost.bytes else float("inf")


@dataclass
class ProgramCost:
    eqns: int
    regions: list[Region]
    total: Cost
    kept_bytes: int
    peak_bytes: int  # most bytes of intermediate arrays alive at once
    seconds: float  # estimated time of a call

    def top_lines(self, k: int = 5) -> list[tuple[str, float, float]]:
        """(user line, estimated seconds, share of the program's time), most first."""
        per: dict[str, float] = {}
        for r in self.regions:
            shares = r.cost.by_line
            tot = sum(shares.values())
            if not tot:
                line = r.eqn.src or "(tracediff)"
                per[line] = per.get(line, 0.0) + r.seconds
                continue
            for line, w in shares.items():
                per[line] = per.get(line, 0.0) + r.seconds * w / tot
        total = sum(per.values()) or 1.0
        top = sorted(per.items(), key=lambda kv: -kv[1])[:k]
        return [(line, s, s / total) for line, s in top]


def estimate(c: Cost, dtype: str, m: Machine) -> float:
    """Seconds for one top-level equation: compute and memory overlap (roofline);
    a loop with enough work runs on every thread (as the CPU backend decides)."""
    gemm = c.gemm_flops / m.gemm.get(dtype, m.gemm["float64"])
    threads = m.threads if c.work >= m.parallel_min_work else 1
    compute = c.work / (m.elementwise * threads)
    return gemm + max(compute, c.bytes / m.bandwidth)


def _dtype(e: Eqn) -> str:
    for v in e.outvars:
        if v.aval.dtype.kind == "f":
            return v.aval.dtype.name
    return "float64"


def _grouped(ir: IR) -> frozenset:
    """Values the CPU backend keeps inside one loop nest (region groups: a row max
    feeding its row's sum), never in an array."""
    try:
        from ..backend.cpu.groups import Group, form_groups

        return frozenset(
            v for g in form_groups(list(ir.eqns), ir.outvars) if isinstance(g, Group) for v in g.scratch
        )
    except Exception:  # (a program the grouping does not take: nothing is kept in registers)
        return frozenset()


def _peak(ir: IR, skip: frozenset) -> int:
    """Most bytes of intermediate arrays alive at once: results of views and of
    values kept in registers take none."""
    last: dict[Var, int] = {}
    for i, e in enumerate(ir.eqns):
        for a in e.inputs:
            if type(a) is Var:
                last[a] = i
    n = len(ir.eqns)
    for v in ir.outvars:
        if type(v) is Var:
            last[v] = n
    for e in reversed(ir.eqns):  # a view keeps its base alive while it is read
        if e.prim.name in _FREE or (e.prim.may_alias and e.prim.kind == SHAPE):
            ends = [last[v] for v in e.outvars if v in last]
            for a in e.inputs:
                if type(a) is Var and ends:
                    last[a] = max(last.get(a, 0), *ends)
    live = peak = 0
    dying: dict[int, int] = {}
    for i, e in enumerate(ir.eqns):
        view = e.prim.name in _FREE or (e.prim.may_alias and e.prim.kind == SHAPE)
        for v in () if view else e.outvars:
            if v in last and v not in skip:
                live += nbytes(v)
                dying[last[v]] = dying.get(last[v], 0) + nbytes(v)
        peak = max(peak, live)
        live -= dying.pop(i, 0)
    return peak


def program_cost(ir: IR, machine: Machine, trips: dict | None = None) -> ProgramCost:
    """The cost of an optimized program; `trips`: trip counts of loops whose count
    depends on values, by source line (counted at the report's inputs)."""
    defined = {v: e for e in ir.eqns for v in e.outvars}
    kept_by: dict[int, int] = {}
    seen: set[Var] = set()
    for e in ir.eqns:
        if "bwd" not in e.phase:
            continue
        for a in e.inputs:
            d = defined.get(a) if type(a) is Var else None
            if d is not None and d.phase == "fwd" and a.aval.ndim > 0 and a not in seen:
                seen.add(a)
                kept_by[id(d)] = kept_by.get(id(d), 0) + nbytes(a)
    skip = _grouped(ir)
    regions, total = [], Cost()
    seconds = machine.call
    for e in ir.eqns:
        c = eqn_cost(e, trips=trips, skip=skip)
        s = estimate(c, _dtype(e), machine)
        seconds += s
        total.add(c)
        regions.append(Region(e, c, s, kept_by.get(id(e), 0)))
    return ProgramCost(
        eqns=len(ir.eqns),
        regions=regions,
        total=total,
        kept_bytes=program_stats(ir)["kept_bytes"],
        peak_bytes=_peak(ir, skip),
        seconds=seconds,
    )
