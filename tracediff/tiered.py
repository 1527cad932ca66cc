"""Tiered execution: the first calls of a compiled program never wait for Numba.

On its first call a program's code is generated (fast: errors such as an
operation the target cannot compile surface here, as without tiering) and
Numba compiles it in a background thread, or loads it from its disk cache
there (a load still costs a process's first one 0.2-0.5 s: Numba initializes
its typing registries). Until the compiled kernel is ready, calls run the same optimized program with the NumPy interpreter; the
call after it is ready switches to it for good. Results agree either way to
rounding (the compiled program's vectorized math may differ from NumPy's
functions in the last bits).

Opt out with `td.jit(..., eager_first=False)` or `TRACEDIFF_EAGER_FIRST=0`;
`f.compile(*args)` waits for the compiled program of one signature.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from .interpret import Interpreter

DEFAULT_EAGER_FIRST = os.environ.get("TRACEDIFF_EAGER_FIRST", "1").lower() not in ("0", "false", "no", "off")


def worth_tiering(compiled, dyn: list) -> tuple | None:
    """The signature to compile in the background, or None: the target compiles
    eagerly, or the kernel is compiled in this process already."""
    if not hasattr(compiled, "signature"):
        return None
    sig = compiled.signature(*dyn)
    return None if compiled.ready(sig) else sig


class Tier:
    """Runs one program with the interpreter while a thread compiles it, then
    installs the compiled runner on the entry (`install`)."""

    __slots__ = ("interp", "error", "thread", "started")

    def __init__(self, ir, compiled, sig: tuple, install: Callable, name: str):
        self.interp = Interpreter(ir)
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._build, args=(compiled, sig, install), name=f"tracediff-compile-{name}", daemon=True
        )
        self.started = threading.Lock()

    def start(self) -> None:
        """Start compiling (once): after the first call's result, so that the
        compiler does not take the GIL from the call the user is waiting for."""
        if self.started.acquire(blocking=False):
            self.thread.start()

    def _build(self, compiled, sig: tuple, install: Callable) -> None:
        try:
            compiled.compile(sig)
        except BaseException as e:  # surfaced by the next call (or `wait`)
            self.error = e
            return
        install(compiled)

    def __call__(self, *dyn):
        if self.error is not None:
            raise self.error
        try:
            return self.interp(*dyn)
        finally:
            self.start()

    def wait(self) -> None:
        self.start()
        self.thread.join()
        if self.error is not None:
            raise self.error
