"""Backends: compile an optimized program for a target."""

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
