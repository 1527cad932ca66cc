"""Backends: compile an optimized program for a target."""

from __future__ import annotations

from collections.abc import Callable

from ..core import IR


def compile_ir(ir: IR, target: str, **options) -> Callable:
    if target == "cpu":
        from .cpu import CpuRunner

        return CpuRunner(ir, **options)
    if target == "cuda":
        raise NotImplementedError("the CUDA backend is not built yet; use target='cpu'")
    raise ValueError(f"unknown target {target!r}")


def source_of(ir: IR, target: str, **options) -> str:
    if target == "cpu":
        from .cpu import source

        return source(ir, **options)[0]
    raise NotImplementedError(f"no source for target {target!r} yet")
