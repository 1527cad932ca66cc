"""Tiered execution: the first calls of a compiled program never wait for Numba.

On its first call a program is checked for what its code generation would
refuse (a dtype, an operation the target cannot compile: raised by that call,
as without tiering), and a background thread generates its code and has Numba
compile it, or load it from its disk cache (a load still costs a process's first one 0.2-0.5 s: Numba initializes
its typing registries). Until the compiled kernel is ready, calls run the same optimized program with the NumPy interpreter; the
call after it is ready switches to it for good. Results agree either way to
rounding (the compiled program's vectorized math may differ from NumPy's
functions in the last bits).

Opt out with `td.jit(..., eager_first=False)` or `TRACEDIFF_EAGER_FIRST=0`;
`f.compile(*args)` waits for the compiled program of one signature.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable

from .interpret import Interpreter

DEFAULT_EAGER_FIRST = os.environ.get("TRACEDIFF_EAGER_FIRST", "1").lower() not in ("0", "false", "no", "off")


def precheck(ir, target: str) -> None:
    """Raise now what code generation would raise for a reason the user can act
    on (a dtype or an operation the target cannot compile), so that tiering
    defers only the slow part."""
    from .backend import precheck as backend_precheck

    backend_precheck(ir, target)


_switch = {"n": 0, "saved": None}
_switch_lock = threading.Lock()


@contextlib.contextmanager
def _short_gil_slices():
    """While a compile runs beside interpreted calls: a NumPy call that released
    the GIL waits for the compiling thread's slice to end before it goes on (5 ms
    by default), and a program of hundreds of NumPy calls then ran 10x slower; the
    slice is 0.5 ms until the last compile in flight ends."""
    with _switch_lock:
        if _switch["n"] == 0:
            _switch["saved"] = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch["saved"], 0.0005))
        _switch["n"] += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch["n"] -= 1
            if _switch["n"] == 0:
                sys.setswitchinterval(_switch["saved"])


class Tier:
    """Runs one program with the interpreter while a thread generates its code and
    compiles it, then installs the compiled runner on the entry (`install`)."""

    __slots__ = ("interp", "error", "thread", "started")

    def __init__(self, ir, build: Callable, dyn: list, install: Callable, name: str):
        self.interp = Interpreter(ir)
        self.error: BaseException | None = None
        self.thread = threading.Thread(
            target=self._build, args=(build, dyn, install), name=f"tracediff-compile-{name}", daemon=True
        )
        self.started = threading.Lock()

    def start(self) -> None:
        """Start compiling (once): after the first call's result, so that the
        compiler does not take the GIL from the call the user is waiting for."""
        if self.started.acquire(blocking=False):
            self.thread.start()

    def _build(self, build: Callable, dyn: list, install: Callable) -> None:
        try:
            with _short_gil_slices():
                runner = build()
                sig = runner.signature(*dyn) if hasattr(runner, "signature") else None
                if sig is not None and not runner.ready(sig):
                    runner.compile(sig)
        except BaseException as e:  # surfaced by the next call (or `wait`)
            self.error = e
            return
        install(runner)

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
