"""`td.report`: what a function's forward and gradient programs cost, and whether
to trust the gradient at given inputs.

It compiles both programs (`td.jit(f)` and `td.jit(td.grad(f, argnums))`),
models their cost (cost.py), measures them (measure.py) and runs the trust
checks (checks.py); `render.py` writes the text, HTML and Graphviz forms.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import pytree
from ..core import IR
from ..staging import Transformed, _is_dynamic, _name
from .checks import (
    Finding,
    directional_check,
    float32_sums,
    loop_trips,
    nan_unsafe_selects,
    nested_unsafe_selects,
    promotions,
)
from .cost import ProgramCost, program_cost
from .measure import calibrate, median_time, peak_memory

CHEAP_GRADIENT_BOUND = 4.0  # t(grad)/t(f) a reverse-mode gradient should stay under (Griewank)
FD_TOLERANCE = {"float64": 1e-5, "float32": 3e-2}


@dataclass
class ProgramReport:
    """One program (the forward or the gradient) of the report."""

    title: str
    traced_eqns: int
    ir: IR  # optimized
    cost: ProgramCost
    fused_regions: int
    loops: int | None  # loops in the generated code (None: not compiled)
    parallel_loops: int | None
    compile_s: float | None
    from_cache: bool | None
    seconds: float | None  # measured median
    peak_measured: int | None  # bytes


@dataclass
class Report:
    """The report; `str(r)` is its text, `r._repr_html_()` its HTML (Jupyter),
    `r.dot()` the gradient program as a Graphviz digraph annotated with costs."""

    name: str
    signature: str
    target: str
    argnums: Any
    forward: ProgramReport
    gradient: ProgramReport | None
    findings: list[Finding] = field(default_factory=list)
    fd: tuple[float, float, float] | None = None  # (finite difference, gradient·v, relative error)

    @property
    def ratio(self) -> float | None:
        """t(grad)/t(f) measured."""
        g, f = self.gradient, self.forward
        if g is None or not g.seconds or not f.seconds:
            return None
        return g.seconds / f.seconds

    def kinds(self) -> list[str]:
        return [f.kind for f in self.findings]

    def __str__(self) -> str:
        from .render import text

        return text(self)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        from .render import html

        return html(self)

    def dot(self, program: str = "gradient") -> str:
        from .render import dot

        return dot(self, program)


def _leaf_counts(args: Sequence[Any]) -> list[int]:
    return [sum(1 for x in pytree.flatten(a)[0] if _is_dynamic(x)) for a in args]


def _is_int_arg(a: Any) -> bool:
    leaves = pytree.flatten(a)[0]
    return bool(leaves) and all(np.asarray(x).dtype.kind in "biu" for x in leaves)


def _compiled_info(entry) -> tuple[int | None, int | None, bool | None]:
    """(loops, parallel loops, loaded from the disk cache) of an entry's compiled code."""
    runner = entry.runner
    src = getattr(runner, "source", None)
    if src is None:
        return None, None, None
    lines = src.splitlines()
    loops = sum(1 for s in lines if s.lstrip().startswith("for ") and " in " in s)
    par = sum(1 for s in lines if s.lstrip().startswith("for ") and "prange(" in s)
    cached = None
    mod = getattr(runner, "module", None)
    if mod is not None:  # loaded from disk: every compiled function of the module was
        hits = misses = 0
        for v in vars(mod).values():
            stats = getattr(v, "stats", None)
            if stats is not None and hasattr(stats, "cache_hits"):
                hits += sum(stats.cache_hits.values())
                misses += sum(stats.cache_misses.values())
        cached = hits > 0 and misses == 0 if hits or misses else None
    return loops, par, cached


def _program(title: str, fn: Transformed, args, measure: bool, machine, trips: dict) -> ProgramReport:
    """Compile, time (not yet the memory: see `report`) and model one program."""
    compile_s = None
    if fn.target != "interpret":
        t0 = time.perf_counter()
        fn.compile(*args)
        compile_s = time.perf_counter() - t0
    fn(*args)  # warm (and, interpreted, the entry made and cached)
    entry = fn.entry(*args)
    seconds = median_time(lambda: fn(*args)) if measure else None
    loops, par, cached = _compiled_info(entry)
    return ProgramReport(
        title=title,
        traced_eqns=len(entry.traced_ir.eqns),
        ir=entry.ir,
        cost=program_cost(entry.ir, machine, trips),
        fused_regions=sum(1 for e in entry.ir.eqns if e.prim.name == "fused"),
        loops=loops,
        parallel_loops=par,
        compile_s=compile_s,
        from_cache=cached,
        seconds=seconds,
        peak_measured=None,
    )


def report(
    f: Callable,
    *args: Any,
    argnums: int | Sequence[int] = 0,
    target: str = "cpu",
    format: str = "text",
    measure: bool = True,
    seed: int = 0,
) -> Report | str:
    """Cost and trust report of `f`'s forward and gradient programs at `args`.

    `f` returns a float scalar (a loss). The report gives, for `td.jit(f)` and
    `td.jit(td.grad(f, argnums))`: equations traced and optimized, fused
    regions and loops generated; modelled FLOPs, bytes moved, bytes kept from
    the forward for the backward sweep, peak memory, per-region arithmetic
    intensity and the costliest source lines; measured compile time, call
    times and t(grad)/t(f); and the trust checks (NaN-unsafe `np.where`,
    float32 promoted to float64, long float32 sums, integer `argnums`, a
    finite-difference check along a random direction). `measure=False` skips
    the timing and memory measurements (the programs are still compiled).

    `format="text"` gives a `Report` (text when printed, HTML in Jupyter);
    `format="dot"` the gradient program as a Graphviz digraph annotated with
    each region's cost and kept bytes.
    """
    from ..transforms import Grad, Jit

    if format not in ("text", "dot"):
        raise ValueError(f"report: format must be 'text' or 'dot', got {format!r}")
    if target not in ("cpu", "cuda", "interpret"):
        raise ValueError(f"report: target must be 'cpu', 'cuda' or 'interpret', got {target!r}")
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not -len(args) <= i < len(args):
            raise ValueError(f"report: argnums {i} is out of range for {len(args)} argument(s)")
    nums = tuple(i % len(args) for i in nums)
    machine = calibrate()
    findings: list[Finding] = []
    ints = [i for i in nums if _is_int_arg(args[i])]
    for i in ints:
        findings.append(
            Finding(
                "int-argnum",
                "",
                f"argument {i} is an integer array or number: it has no gradient (td.grad raises)",
                f"pass it as a float (np.asarray(x, float)) or leave {i} out of argnums",
            )
        )
    wrt = tuple(i for i in nums if i not in ints)
    fwd_fn = Jit(f, target=target, eager_first=False)
    entry = fwd_fn.entry(*args)
    traced = entry.traced_ir  # what reverse mode differentiates: the trust checks' subject
    leaves = [x for x in pytree.flatten((args, {}))[0] if _is_dynamic(x)]
    values = leaves + list(entry.captured)
    # trip counts of loops whose count depends on values, for the cost model
    trips = loop_trips(traced, values) if any(e.prim.name == "while" for e in traced.eqns) else {}
    forward = _program("forward", fwd_fn, args, measure, machine, trips)
    gradient = g_fn = None
    grads = None
    if wrt:
        g_argnums = wrt[0] if isinstance(argnums, int) else wrt
        g_fn = Jit(Grad(f, argnums=g_argnums), target=target, eager_first=False)
        gradient = _program("gradient", g_fn, args, measure, machine, trips)
        out = g_fn(*args)
        grads = [out] if isinstance(argnums, int) else list(out)
    if measure and target == "cpu":  # after every timing: see measure.peak_memory
        forward.peak_measured = peak_memory(lambda: fwd_fn(*args))
        if gradient is not None:
            gradient.peak_measured = peak_memory(lambda: g_fn(*args))

    counts = _leaf_counts(args)
    mask = [i in wrt for i, n in enumerate(counts) for _ in range(n)]
    mask += [False] * (len(traced.invars) - len(mask))
    findings += nan_unsafe_selects(traced, values, mask)
    findings += promotions(traced)
    findings += float32_sums(traced)
    fd = None
    if grads is not None:
        g_leaves = [x for g in grads for x in pytree.flatten(g)[0]]
        if not all(np.all(np.isfinite(g)) for g in g_leaves):
            n_bad = sum(int(np.sum(~np.isfinite(g))) for g in g_leaves)
            if not any(f.kind == "nan-unsafe-select" for f in findings):
                findings += nested_unsafe_selects(traced, g_leaves, _safe_grad(f, args, argnums, wrt))
            findings.append(
                Finding(
                    "non-finite-gradient",
                    "",
                    f"the gradient has {n_bad} NaN or infinite entries at these inputs",
                    "see the nan-unsafe-select findings, if any; check the inputs' domain",
                )
            )
        else:
            fd = _fd_check(f, args, wrt, grads, seed, fwd_fn)
            dt = "float32" if any(np.asarray(g).dtype == np.float32 for g in g_leaves) else "float64"
            if fd is not None and fd[2] > FD_TOLERANCE[dt]:
                findings.append(
                    Finding(
                        "finite-differences",
                        "",
                        f"the gradient disagrees with a central finite difference along a random "
                        f"direction: {fd[1]:.9g} against {fd[0]:.9g} (relative error {fd[2]:.2g})",
                        "a custom_vjp rule, a non-differentiable point (a kink of abs/max, a "
                        "branch boundary) or a discontinuity near these inputs",
                    )
                )
    rep = Report(
        name=_name(f),
        signature=", ".join(_sig(a) for a in args),
        target=target,
        argnums=argnums,
        forward=forward,
        gradient=gradient,
        findings=findings,
        fd=fd,
    )
    r = rep.ratio
    if r is not None and r > CHEAP_GRADIENT_BOUND:
        top = gradient.cost.top_lines(1)
        rep.findings.append(
            Finding(
                "slow-gradient",
                top[0][0] if top else "",
                f"t(grad)/t(f) = {r:.1f}, above the cheap-gradient bound (~{CHEAP_GRADIENT_BOUND:.0f} "
                "forward evaluations)" + (f"; the costliest line is {top[0][0]}" if top else ""),
                "see the regions of the gradient below; loops with many iterations keep a tape "
                "(td.grad(..., loop_checkpoint=k) trades memory for recomputation)",
            )
        )
    if format == "dot":
        from ..inspection import DumpText

        return DumpText(rep.dot())
    return rep


def _sig(a: Any) -> str:
    if isinstance(a, np.ndarray) or np.isscalar(a):
        from ..numpy_api import aval_of

        try:
            return str(aval_of(a))
        except TypeError:
            return type(a).__name__
    return type(a).__name__


def _safe_grad(f, args, argnums, wrt) -> list:
    """The gradient's leaves with NaN-safe selects (interpreted)."""
    from ..transforms import Grad, Jit

    nums = wrt[0] if isinstance(argnums, int) else wrt
    out = Jit(Grad(f, argnums=nums), target="interpret", nan_safe=True)(*args)
    return [x for g in ([out] if isinstance(argnums, int) else out) for x in pytree.flatten(g)[0]]


def _fd_check(f, args, wrt, grads, seed, compiled) -> tuple[float, float, float] | None:
    """Central finite difference of f along a random direction of the `wrt`
    arguments' array leaves, in float64, against the gradient's projection: with
    the compiled forward where the arguments are float64 already, else the
    interpreter (a float32 program's forward in float64 would compile anew)."""
    from ..transforms import Jit

    flat = [pytree.flatten(args[i]) for i in wrt]
    wrt_leaves = [np.asarray(x) for leaves, _ in flat for x in leaves]
    all64 = all(a.dtype == np.float64 for a in wrt_leaves)
    f64 = compiled if all64 else Jit(f, target="interpret")
    g_leaves = [x for g in grads for x in pytree.flatten(g)[0]]
    if any(a.dtype.kind not in "f" for a in wrt_leaves) or len(g_leaves) != len(wrt_leaves):
        return None

    def value(new_leaves):
        a = list(args)
        k = 0
        for i, (leaves, tree) in zip(wrt, flat):
            a[i] = pytree.unflatten(tree, new_leaves[k : k + len(leaves)])
            k += len(leaves)
        with np.errstate(all="ignore"):
            return float(np.asarray(f64(*a)))

    try:
        return directional_check(value, g_leaves, wrt_leaves, np.random.default_rng(seed))
    except (TypeError, ValueError):
        return None
