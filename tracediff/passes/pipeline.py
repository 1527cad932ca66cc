"""The pass pipeline every program goes through before it runs, on every target."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from ..core import IR, Eqn
from ..prims.control import cond_p, loop_p, while_p
from ..prims.scan import scan_p
from .boundary import fresh_outputs
from .dce import dce
from .fuse import fuse
from .inline import inline_custom
from .loops import hoist_invariants, merge_primal_loops, prune_loops
from .simplify import cse, simplify
from .stats import program_stats
from .verify import verify

# TRACEDIFF_VERIFY=1 checks the IR after every pass (the tests set it);
# TRACEDIFF_OPT=0 turns the optimizer off (only DCE runs).
VERIFY = os.environ.get("TRACEDIFF_VERIFY", "") not in ("", "0")
ENABLED = os.environ.get("TRACEDIFF_OPT", "1") != "0"

PASSES = [
    ("loops", merge_primal_loops),
    ("simplify", simplify),
    ("cse", cse),
    ("dce", dce),
    ("prune loops", prune_loops),
    ("hoist", hoist_invariants),
    ("boundary", fresh_outputs),
    ("fuse", fuse),
]
# without the optimizer: what every program needs to run
ESSENTIAL = [("dce", dce), ("boundary", fresh_outputs)]


CONTROL = (cond_p, while_p, loop_p, scan_p)


def optimize(ir: IR, enabled: bool | None = None) -> IR:
    """Run the pipeline; `ir.stats` records each pass (equations, arrays, bytes, time)."""
    if VERIFY:
        verify(ir, "tracing")
    ir = inline_custom(ir)  # user derivative rules are used up: their bodies are plain code
    on = ENABLED if enabled is None else enabled
    stats = PassStats([("input", 0.0, ir)])
    for name, p in PASSES if on else ESSENTIAL:
        t0 = time.perf_counter()
        ir = p(ir)
        ms = (time.perf_counter() - t0) * 1e3
        if VERIFY:
            verify(ir, name)
        stats.passes.append((name, ms, ir))
    ir = _prune_again(_in_regions(ir, on), on)
    return IR(ir.invars, ir.eqns, ir.outvars, stats)


class PassStats(Sequence):
    """Per pass: equations, arrays, bytes kept, time (dicts). Computed when read: a
    liveness walk per pass costs a long program's first call a quarter second."""

    def __init__(self, passes: list):
        self.passes = passes  # (name, ms, the program after the pass)
        self._done: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.passes)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = range(len(self))[i]
        if i not in self._done:
            name, ms, ir = self.passes[i]
            self._done[i] = dict(program_stats(ir), name=name, ms=ms)
        return self._done[i]


def _prune_again(ir: IR, on: bool) -> IR:
    """Once the regions are optimized, what they no longer read: a loop's inputs, and
    then the ys of the loop that made them."""
    for _ in range(4 if on else 0):
        new = prune_loops(ir)
        if new is ir:
            break
        ir = new
        if VERIFY:
            verify(ir, "prune loops (after the regions)")
    return ir


def _in_regions(ir: IR, on: bool) -> IR:
    """The pipeline inside every `cond` branch and loop body (their inputs and
    outputs stay as they are; a region's results are made fresh by its backend)."""
    eqns, changed = [], False
    for e in ir.eqns:
        if e.prim in CONTROL:
            params = {}
            for k, v in e.params.items():
                if isinstance(v, IR):
                    v = _optimize_region(v, on)
                elif isinstance(v, tuple) and v and all(isinstance(x, IR) for x in v):
                    v = tuple(_optimize_region(x, on) for x in v)
                params[k] = v
            e = Eqn(e.prim, e.inputs, e.outvars, params, e.src, e.phase)
            changed = True
        eqns.append(e)
    return IR(ir.invars, eqns, ir.outvars, ir.stats) if changed else ir


def _optimize_region(ir: IR, on: bool) -> IR:
    for name, p in PASSES if on else ESSENTIAL:
        if p is not fresh_outputs:
            ir = p(ir)
            if VERIFY:
                verify(ir, name + " (in a region)")
    return _prune_again(_in_regions(ir, on), on)
