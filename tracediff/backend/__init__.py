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


def source_of(ir: IR, target: str, **options) -> str:
    if target == "cpu":
        from .cpu import source

        return source(ir, **options)[0]
    if target == "cuda":
        from .cuda import source

        return source(ir, cache=options.get("cache", True))[0]
    raise NotImplementedError(f"no source for target {target!r} yet")
