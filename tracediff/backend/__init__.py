"""Backends: compile an optimized program for a target.

One lowering, one writer per target: `lower.py` turns a program into names,
liveness and region plans (loop structure, index maps, reductions, stores);
`cpu/` writes one `@numba.njit` function from it, `cuda/` writes numba.cuda
kernels and a host function. `base.py` holds what every writer shares
(targets, the scalar-code lookup, dtype checks).
"""

from __future__ import annotations

from collections.abc import Callable

from ..core import IR


def compile_ir(ir: IR, target: str, **options) -> Callable:
    if target == "cpu":
        from .cpu import CpuRunner

        return CpuRunner(ir, **options)
    if target == "cuda":
        from .cuda import CudaRunner

        return CudaRunner(ir, **options)
    raise ValueError(f"unknown target {target!r}")


def precheck(ir: IR, target: str) -> None:
    """The errors the writer of `target` would raise for a dtype it does not support
    or an operation it cannot compile, raised without generating code."""
    from ..prims.control import regions
    from .base import check_dtypes

    if target == "cpu":
        from .cpu.writer import CpuWriter as writer
    elif target == "cuda":
        from .cuda.writer import CudaWriter as writer
    else:
        return
    check_dtypes(ir, target)
    _check_ops(ir, writer, target, regions)


def _check_ops(ir: IR, writer, target: str, regions) -> None:
    from ..core import ELEMENTWISE
    from ..prims.region import fused_p
    from .base import REDUCTIONS, EmitError

    for e in ir.eqns:
        p = e.prim
        if not (
            p is fused_p
            or p.kind == ELEMENTWISE
            or p in REDUCTIONS
            or hasattr(writer, f"op_{p.name}")
            or target in p.call
        ):
            raise EmitError(f"the {target} backend cannot compile {p.name} yet")
        for body in regions(e.params):
            _check_ops(body, writer, target, regions)


def source_of(ir: IR, target: str, **options) -> str:
    if target == "cpu":
        from .cpu import source

        return source(ir, **options)[0]
    if target == "cuda":
        from .cuda import source

        return source(ir, cache=options.get("cache", True))[0]
    raise NotImplementedError(f"no source for target {target!r} yet")
