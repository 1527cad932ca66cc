"""The pass pipeline every program goes through before it runs."""

from __future__ import annotations

import os

from ..core import IR
from .dce import dce
from .verify import verify

# TRACEDIFF_VERIFY=1 checks the IR after every pass (the tests set it)
VERIFY = os.environ.get("TRACEDIFF_VERIFY", "") not in ("", "0")


def optimize(ir: IR) -> IR:
    if VERIFY:
        verify(ir, "tracing")
    out = dce(ir)
    if VERIFY:
        verify(out, "dce")
    return out
