"""The pass pipeline every program goes through before it runs, on every target."""

from __future__ import annotations

import os
import time

from ..core import IR
from .boundary import fresh_outputs
from .dce import dce
from .fuse import fuse
from .simplify import cse, simplify
from .stats import program_stats
from .verify import verify

# TRACEDIFF_VERIFY=1 checks the IR after every pass (the tests set it);
# TRACEDIFF_OPT=0 turns the optimizer off (only DCE runs).
VERIFY = os.environ.get("TRACEDIFF_VERIFY", "") not in ("", "0")
ENABLED = os.environ.get("TRACEDIFF_OPT", "1") != "0"

PASSES = [("simplify", simplify), ("cse", cse), ("dce", dce), ("boundary", fresh_outputs), ("fuse", fuse)]
# without the optimizer: what every program needs to run
ESSENTIAL = [("dce", dce), ("boundary", fresh_outputs)]


def optimize(ir: IR, enabled: bool | None = None) -> IR:
    """Run the pipeline; `ir.stats` records each pass (equations, arrays, bytes, time)."""
    if VERIFY:
        verify(ir, "tracing")
    on = ENABLED if enabled is None else enabled
    stats = [dict(program_stats(ir), name="input", ms=0.0)]
    for name, p in PASSES if on else ESSENTIAL:
        t0 = time.perf_counter()
        ir = p(ir)
        ms = (time.perf_counter() - t0) * 1e3
        if VERIFY:
            verify(ir, name)
        stats.append(dict(program_stats(ir), name=name, ms=ms))
    return IR(ir.invars, ir.eqns, ir.outvars, stats)
