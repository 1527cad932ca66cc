"""Tracing: tracer objects stand in for arrays and record equations.

The tracing layer in one place, for the modules above it; each part lives in
a module of its own, lowest first:

- `provenance`: the source line and sweep recorded on each equation
  (`user_src`, `at`, `src_context`, `phase_context`, `restage_context`);
- `tracer`: the `Tracer` and `TracerError`;
- `builder`: `Builder`, the per-thread stack of builders, `bind` and `trace`
  (only the IR below it, so primitive rules can use it);
- `numpy_api`: the NumPy front end the Tracer's operators call, which installs
  itself in `tracer` when imported (imported here, so tracers work once this
  module is).
"""

from __future__ import annotations

from . import numpy_api  # noqa: F401  (installs the front end the Tracer's operators call)
from .builder import (
    Builder,
    bind,
    current_builder,
    innermost_builder,
    is_tracing,
    localize,
    pop_builder,
    push_builder,
    trace,
)
from .numpy_api.inplace import restore_localized
from .provenance import at, phase_context, restage_context, src_context, user_src
from .tracer import Tracer, TracerError

__all__ = [
    "Builder",
    "Tracer",
    "TracerError",
    "at",
    "bind",
    "current_builder",
    "innermost_builder",
    "is_tracing",
    "localize",
    "phase_context",
    "pop_builder",
    "push_builder",
    "restage_context",
    "restore_localized",
    "src_context",
    "trace",
    "user_src",
]
