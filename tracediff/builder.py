"""Builders and `bind`: how operations become equations.

A `Builder` collects the equations of one function being traced. Builders
nest (tracing `grad(f)` inside `grad(...)`); each tracer belongs to one. An
operation goes to the innermost builder among its arguments; a tracer of an
outer builder used inside an inner one is captured as an extra input of the
inner program, so closures over outer values are differentiated correctly.

`bind(prim, *args, **params)` is the entry point of every operation: it records
an equation while tracing and runs the primitive's NumPy implementation
otherwise. This module needs only the IR (`core`), so primitive rules can call it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .core import IR, Atom, Aval, Eqn, Lit, Primitive, TracediffError, Var, with_context
from .provenance import at, current_phase, user_src
from .tracer import Tracer, TracerError


class _Builders(threading.local):
    """The builders of the traces under way, innermost last, per thread: two
    threads tracing at once never see each other's builders."""

    def __init__(self):
        self.stack: list[Builder] = []


_builders = _Builders()


class Builder:
    def __init__(self, region: bool = False):
        self.alive = True
        self.level = len(_builders.stack) + 1
        # a region (a branch or loop body) may update arrays of the enclosing traces in
        # place: each such root is moved into it while it is traced (`localize`)
        self.region = region
        self.localized: dict[int, tuple[Tracer, Builder, Var]] = {}
        self.invars: list[Var] = []
        self.eqns: list[Eqn] = []
        self.captured: dict[int, tuple[Tracer, Var]] = {}
        # NumPy arrays met while tracing, by id: one literal (one copy) per
        # array and dtype, however often it is used; holding the array keeps its id
        self.consts: dict[tuple, tuple[Any, Lit]] = {}

    def new_arg(self, aval: Aval) -> Tracer:
        v = Var(aval)
        self.invars.append(v)
        return Tracer(self, v)

    def atom(self, x: Any) -> Atom:
        if isinstance(x, Tracer):
            if x.builder is self:
                return x.tvar
            if not x.builder.alive:
                raise _leaked(x)
            if x.builder.level > self.level:
                raise TracerError(
                    "a traced value escaped the function that made it "
                    "(stored in a global or a closure?)" + at(user_src())
                )
            # a value of an enclosing trace: capture it as an extra input
            hit = self.captured.get(id(x))
            if hit is None:
                hit = (x, Var(x.aval))
                self.captured[id(x)] = hit
            return hit[1]
        if isinstance(x, Lit):
            return x
        return self.const(x)

    def const(self, x: Any, dtype: np.dtype | None = None, weak: bool = False) -> Lit:
        """The literal of a constant `x` (converted to `dtype`), copied once per trace."""
        if type(x) is not np.ndarray:
            arr = np.asarray(x) if dtype is None else np.asarray(x).astype(dtype, copy=False)
            return Lit(arr, Aval(arr.shape, arr.dtype, weak))
        key = (id(x), dtype, weak)
        hit = self.consts.get(key)
        if hit is None:
            arr = x if dtype is None else x.astype(dtype, copy=False)
            hit = self.consts[key] = (x, Lit(arr, Aval(arr.shape, arr.dtype, weak)))
        return hit[1]

    def emit(self, prim: Primitive, args: Sequence[Any], params: dict) -> list[Tracer]:
        ins = tuple(self.atom(a) for a in args)
        src = user_src()
        try:
            avals = prim.out_avals([a.aval for a in ins], params)
        except (ValueError, TypeError, IndexError) as e:
            if isinstance(e, TracediffError):
                raise
            raise with_context(e, f"{e}{at(src)}") from None
        if not prim.complex and (
            any(a.dtype.kind == "c" for a in avals) or any(a.aval.dtype.kind == "c" for a in ins)
        ):
            raise TypeError(
                f"{prim.name}: complex numbers are not supported by this operation yet ("
                + ", ".join(str(a.aval) for a in ins)
                + f"){at(src)}"
            )
        outs = tuple(Var(a) for a in avals)
        self.eqns.append(Eqn(prim, ins, outs, params, src, current_phase()))
        return [Tracer(self, v) for v in outs]


def current_builder() -> Builder:
    return _builders.stack[-1]


def push_builder(b: Builder) -> None:
    _builders.stack.append(b)


def pop_builder(b: Builder) -> None:
    assert _builders.stack[-1] is b
    _builders.stack.pop()


def localize(root: Tracer) -> None:
    """Move `root`, a traced array of an enclosing trace, into the innermost
    builder (a region) before an in-place update there; `restore_localized`
    (numpy_api.inplace) puts it back when the region is done. Raises when a
    non-region trace lies between."""
    stack = _builders.stack
    cur = stack[-1]
    if root.builder is cur:
        return
    lvl = root.builder.level
    if not (len(stack) >= lvl and stack[lvl - 1] is root.builder and all(b.region for b in stack[lvl:])):
        raise TracerError(
            f"in-place update of a traced array {root.aval} of an enclosing function (a closure "
            f"over a traced value) from inside a transformed function{at(user_src())}; return "
            "the new value instead"
        )
    if id(root) not in cur.localized:
        cur.localized[id(root)] = (root, root.builder, root.tvar)
    var = cur.atom(root)
    root.builder, root.tvar = cur, var


def is_tracing() -> bool:
    """Is this thread tracing a function now?"""
    return bool(_builders.stack)


def _leaked(t: Tracer) -> TracerError:
    return TracerError(
        f"a traced value {t.aval} escaped the function that made it (stored in a global, "
        f"a list or a closure, and used after that trace ended){at(user_src())}; return it "
        "from the function instead"
    )


def innermost_builder(args: Sequence[Any]) -> Builder | None:
    best = None
    for a in args:
        if isinstance(a, Tracer):
            if not a.builder.alive:
                raise _leaked(a)
            if best is None or a.builder.level > best.level:
                best = a.builder
    if best is not None:
        stack = _builders.stack
        if len(stack) < best.level or stack[best.level - 1] is not best:
            raise TracerError(
                f"a traced value of another thread's trace was used here{at(user_src())}; "
                "traced values belong to the thread tracing them: pass arrays, not tracers, "
                "between threads"
            )
        # inside a traced branch or loop body, work on enclosing values is that region's:
        # it runs only when the branch does (captured as the region's inputs)
        while best.level < len(stack) and stack[best.level].region:
            best = stack[best.level]
    return best


def bind(prim: Primitive, *args: Any, **params: Any) -> Any:
    """Apply `prim`: record it if any argument is traced, else run it."""
    b = innermost_builder(args)
    if b is None:
        builders = _builders.stack
        if not builders:
            return prim.impl(*args, **params)
        # while tracing, constants are staged too (as JAX's omnistaging): a
        # broadcast literal stays one equation instead of a baked-in array
        b = builders[-1]
    outs = b.emit(prim, args, params)
    return outs[0] if prim.nout == 1 else outs


def trace(fn: Callable[..., Sequence[Any]], in_avals: Sequence[Aval]) -> tuple[IR, list[Tracer]]:
    """Trace `fn(*tracers) -> flat list of outputs` into an IR.

    Returns the IR and the outer tracers it captured; the IR's invars are the
    arguments followed by one input per captured tracer.
    """
    b = Builder()
    builders = _builders.stack
    builders.append(b)
    try:
        args = [b.new_arg(a) for a in in_avals]
        outs = fn(*args)
        outvars = [b.atom(o) for o in outs]
    finally:
        builders.pop()
        b.alive = False
    captured = list(b.captured.values())
    ir = IR(b.invars + [v for _, v in captured], b.eqns, outvars)
    return ir, [t for t, _ in captured]
