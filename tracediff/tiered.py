"""Tiered execution: the first calls of a compiled program never wait for Numba.

On its first call a program is checked for what its code generation would
refuse (a dtype, an operation the target cannot compile: raised by that call,
as without tiering), and a background thread generates its code and has Numba
compile it (from the signature's second call: a program called once is never
compiled), or load it from its disk cache (a load still costs a process's first one 0.2-0.5 s: Numba initializes
its typing registries). Until the compiled kernel is ready, calls run the same optimized program with the NumPy interpreter; the
call after it is ready switches to it for good. Results agree either way to
rounding (the compiled program's vectorized math may differ from NumPy's
functions in the last bits).

Opt out with `td.jit(..., eager_first=False)` or `TRACEDIFF_EAGER_FIRST=0`;
`f.compile(*args)` waits for the compiled program of one signature.
"""

from __future__ import annotations

import collections
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


COMPILE_AFTER = 2  # calls of a signature before it is queued for compiling


class _Compiler:
    """One daemon thread compiling the queued programs in turn (Numba compiles one
    at a time anyway: a thread per program would only wait on its lock)."""

    def __init__(self):
        self.queue: collections.deque = collections.deque()
        self.cv = threading.Condition()
        self.thread: threading.Thread | None = None

    def submit(self, tier: Tier) -> None:
        with self.cv:
            self.queue.append(tier)
            if self.thread is None:
                self.thread = threading.Thread(target=self._serve, name="tracediff-compile", daemon=True)
                self.thread.start()
            self.cv.notify()

    def _serve(self) -> None:
        while True:
            with self.cv:
                while not self.queue:
                    self.cv.wait()
                tier = self.queue.popleft()
                if tier.state != "queued":
                    continue
                tier.state = "running"
            tier.build_now()


_COMPILER = _Compiler()


class Tier:
    """Runs one program with the interpreter until its compiled code is ready: from
    its second call, the program is queued for the compiling thread, which
    generates its code, compiles it and installs the runner on the entry. A
    program called once is never compiled; `wait` compiles at once in the
    caller a program still in the queue."""

    __slots__ = ("interp", "error", "build", "install", "calls", "state", "dyn", "done")

    def __init__(self, ir, build: Callable, install: Callable):
        self.interp = Interpreter(ir)
        self.error: BaseException | None = None
        self.build, self.install = build, install  # install: a weak method of the entry
        self.calls = 0
        self.state = "new"  # new, queued, running, done
        self.dyn: list | None = None  # the arguments of the call that queued it (their types)
        self.done = threading.Event()

    def build_now(self) -> None:
        try:
            install = self.install()
            if install is not None:  # (the entry is gone: nobody will call it again)
                with _short_gil_slices():
                    runner = self.build()
                    dyn = self.dyn or []
                    sig = runner.signature(*dyn) if hasattr(runner, "signature") else None
                    if sig is not None and not runner.ready(sig):
                        runner.compile(sig)
                install(runner)
        except BaseException as e:  # surfaced by the next call (or `wait`)
            self.error = e
        finally:
            self.dyn = None
            self.state = "done"
            self.done.set()

    def __call__(self, *dyn):
        if self.error is not None:
            raise self.error
        res = self.interp(*dyn)
        self.calls += 1
        if self.calls >= COMPILE_AFTER and self.state == "new":
            # after the call's result: the compiler does not take the GIL from it
            with _COMPILER.cv:
                if self.state == "new":
                    self.dyn, self.state = list(dyn), "queued"
                    _COMPILER.submit(self)
        return res

    def wait(self, dyn: list) -> None:
        with _COMPILER.cv:
            mine = self.state in ("new", "queued")
            if mine:  # not started: compile here rather than behind the queue
                self.dyn = self.dyn or list(dyn)
                self.state = "running"
        if mine:
            self.build_now()
        self.done.wait()
        if self.error is not None:
            raise self.error
