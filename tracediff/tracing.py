"""Tracing: tracer objects stand in for arrays and record equations.

A `Builder` collects the equations of one function being traced. Builders
nest (tracing `grad(f)` inside `grad(...)`); each tracer belongs to one. An
operation goes to the innermost builder among its arguments; a tracer of an
outer builder used inside an inner one is captured as an extra input of the
inner program, so closures over outer values are differentiated correctly.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .core import IR, Atom, Aval, Eqn, Lit, Primitive, TracediffError, Var, with_context

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__))


class TracerError(TracediffError, TypeError):
    """A traced value was used where a concrete value is needed."""


# --- per-thread trace state ---------------------------------------------------


class _TraceState(threading.local):
    """What is being traced, per thread: two threads tracing at once never see
    each other's builders, source lines or sweeps."""

    def __init__(self):
        self.builders: list[Builder] = []
        self.src: list[str] = []  # source-line overrides (derivative rules, re-staging)
        self.phase: list[str] = [""]


_state = _TraceState()


# --- source lines -------------------------------------------------------------


@contextlib.contextmanager
def _pushed(*pairs: tuple[list, str]):
    """Push a value on each stack for the duration of the block."""
    for stack, value in pairs:
        stack.append(value)
    try:
        yield
    finally:
        for stack, _ in pairs:
            stack.pop()


def phase_context(phase: str):
    """Tag equations made inside as the forward or backward sweep."""
    return _pushed((_state.phase, phase))


def src_context(src: str):
    """Attribute equations made inside to `src` (derivative rules, re-staging)."""
    return _pushed((_state.src, src))


def restage_context(src: str, phase: str):
    """Re-staging an equation keeps its source line, and its sweep unless one is active."""
    st = _state
    return _pushed((st.src, src), (st.phase, st.phase[-1] or phase))


def user_src() -> str:
    """`file.py:line` of the innermost frame outside tracediff and NumPy."""
    override = _state.src
    if override:
        return override[-1]
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if not (fn.startswith(_PKG_DIR) or fn.startswith(_NUMPY_DIR) or fn.startswith("<frozen")):
            return f"{os.path.basename(fn)}:{f.f_lineno}"
        f = f.f_back
    return ""


def at(src: str) -> str:
    return f" (at {src})" if src else ""


# --- builders -----------------------------------------------------------------


class Builder:
    def __init__(self, region: bool = False):
        self.alive = True
        self.level = len(_state.builders) + 1
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
        if any(a.dtype.kind == "c" for a in avals) or any(a.aval.dtype.kind == "c" for a in ins):
            raise TypeError(
                f"{prim.name}: complex numbers are not supported yet ("
                + ", ".join(str(a.aval) for a in ins)
                + f"){at(src)}"
            )
        outs = tuple(Var(a) for a in avals)
        self.eqns.append(Eqn(prim, ins, outs, params, src, _state.phase[-1]))
        return [Tracer(self, v) for v in outs]


def current_builder() -> Builder:
    return _state.builders[-1]


def push_builder(b: Builder) -> None:
    _state.builders.append(b)


def pop_builder(b: Builder) -> None:
    assert _state.builders[-1] is b
    _state.builders.pop()


def localize(root: Tracer) -> None:
    """Move `root`, a traced array of an enclosing trace, into the innermost
    builder (a region) before an in-place update there; `restore_localized` puts
    it back when the region is done. Raises when a non-region trace lies between."""
    cur = _state.builders[-1]
    if root.builder is cur:
        return
    stack = _state.builders
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


def restore_localized(b: Builder) -> list[tuple[Tracer, Var]]:
    """Put back the roots `b` took over; returns (root, its value in b) for each."""
    out = []
    for root, builder, var in b.localized.values():
        out.append((root, root.tvar))
        root.builder, root.tvar = builder, var
        _inplace.refresh_views(root)
    b.localized = {}
    return out


def is_tracing() -> bool:
    """Is this thread tracing a function now?"""
    return bool(_state.builders)


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
        stack = _state.builders
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
        builders = _state.builders
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
    builders = _state.builders
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


# --- the tracer ---------------------------------------------------------------


def _concrete_error(what: str, t: Tracer) -> TracerError:
    src = user_src()
    return TracerError(
        f"{what} of a traced value {t.aval} needs its concrete value, which is "
        f"not known while tracing{at(src)}. tracediff converts `if`/`while`/`for`/`and`/`or` "
        "on traced values in the functions it traces, but not this one (a `return` inside a "
        "loop, a loop with an `else:`, code without readable source, or a direct call of "
        "bool()/float()/int()): use np.where(cond, a, b) for a choice per element, "
        "np.maximum/np.minimum/np.clip for bounds, or pass the value as a static argument."
    )


class Tracer:
    """Stands in for an array while a function is traced."""

    # `tvar`: the SSA value the tracer holds now (an in-place update rebinds it);
    # `_alias`: its views' bookkeeping, or its place in its root as a view (numpy_api.inplace)
    __slots__ = ("builder", "tvar", "_alias", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, builder: Builder, var: Var):
        self.builder = builder
        self.tvar = var
        self._alias = None

    @property
    def aval(self) -> Aval:
        return self.tvar.aval

    shape = property(lambda self: self.tvar.aval.shape)
    dtype = property(lambda self: self.tvar.aval.dtype)
    ndim = property(lambda self: len(self.tvar.aval.shape))
    size = property(lambda self: self.tvar.aval.size)
    T = property(lambda self: _api.view_call(np.transpose, self))
    mT = property(lambda self: _api.view_call(np.swapaxes, self, -1, -2))

    def __repr__(self) -> str:
        return f"Tracer<{self.aval}>"

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError(f"len() of a 0-d traced array{at(user_src())}")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError(f"iteration over a 0-d traced array{at(user_src())}")
        return (self[i] for i in range(self.shape[0]))

    def __bool__(self):
        raise _concrete_error("bool() (an `if`, `while`, `and`, `or` or `not`)", self)

    def __float__(self):
        raise _concrete_error("float()", self)

    def __int__(self):
        raise _concrete_error("int()", self)

    def __index__(self):
        raise _concrete_error("use as an index (operator.index)", self)

    def __complex__(self):
        raise _concrete_error("complex()", self)

    def item(self):
        raise _concrete_error(".item()", self)

    def tolist(self):
        raise _concrete_error(".tolist()", self)

    def __getattr__(self, name):
        # only reached for names Tracer does not define
        if not name.startswith("__") and hasattr(np.ndarray, name):
            raise AttributeError(
                f"tracediff does not support the array attribute .{name} on traced arrays{at(user_src())}"
            )
        raise AttributeError(f"'Tracer' object has no attribute {name!r}")

    def __array__(self, dtype=None, copy=None):
        raise TracerError(
            f"a traced value {self.aval} cannot become a NumPy array (np.array/"
            f"np.asarray or a function NumPy cannot dispatch){at(user_src())}; "
            "use np.stack/np.concatenate to build arrays from traced values."
        )

    __hash__ = object.__hash__

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _api.handle_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return _api.handle_function(func, args, kwargs)

    def __getitem__(self, idx):
        return _inplace.getitem_view(self, idx, _api.getitem(self, idx))

    def __setitem__(self, idx, val):
        _inplace.setitem(self, idx, val)

    # in-place operators update the array (and every name and view sharing it)
    def __iadd__(self, o):
        return _inplace.inplace(self, Tracer.__add__, o, "add")

    def __isub__(self, o):
        return _inplace.inplace(self, Tracer.__sub__, o, "subtract")

    def __imul__(self, o):
        return _inplace.inplace(self, Tracer.__mul__, o, "multiply")

    def __itruediv__(self, o):
        return _inplace.inplace(self, Tracer.__truediv__, o, "divide")

    def __ifloordiv__(self, o):
        return _inplace.inplace(self, Tracer.__floordiv__, o, "floor_divide")

    def __imod__(self, o):
        return _inplace.inplace(self, Tracer.__mod__, o, "remainder")

    def __ipow__(self, o):
        return _inplace.inplace(self, Tracer.__pow__, o, "power")

    def __imatmul__(self, o):
        return _inplace.inplace(self, Tracer.__matmul__, o, "matmul")

    def __iand__(self, o):
        return _inplace.inplace(self, Tracer.__and__, o, "bitwise_and")

    def __ior__(self, o):
        return _inplace.inplace(self, Tracer.__or__, o, "bitwise_or")

    def __ixor__(self, o):
        return _inplace.inplace(self, Tracer.__xor__, o, "bitwise_xor")

    # arithmetic: the same ufuncs NumPy would call
    def __add__(self, o):
        return _api.ufunc_call(np.add, self, o)

    def __radd__(self, o):
        return _api.ufunc_call(np.add, o, self)

    def __sub__(self, o):
        return _api.ufunc_call(np.subtract, self, o)

    def __rsub__(self, o):
        return _api.ufunc_call(np.subtract, o, self)

    def __mul__(self, o):
        return _api.ufunc_call(np.multiply, self, o)

    def __rmul__(self, o):
        return _api.ufunc_call(np.multiply, o, self)

    def __truediv__(self, o):
        return _api.ufunc_call(np.true_divide, self, o)

    def __rtruediv__(self, o):
        return _api.ufunc_call(np.true_divide, o, self)

    def __floordiv__(self, o):
        return _api.ufunc_call(np.floor_divide, self, o)

    def __rfloordiv__(self, o):
        return _api.ufunc_call(np.floor_divide, o, self)

    def __mod__(self, o):
        return _api.ufunc_call(np.remainder, self, o)

    def __rmod__(self, o):
        return _api.ufunc_call(np.remainder, o, self)

    def __pow__(self, o):
        if type(o) is int and o == 2:  # NumPy's `**` computes x ** 2 as np.square (bool: int8)
            return _api.ufunc_call(np.square, self)
        return _api.ufunc_call(np.power, self, o)

    def __rpow__(self, o):
        return _api.ufunc_call(np.power, o, self)

    def __matmul__(self, o):
        return _api.matmul(self, o)

    def __rmatmul__(self, o):
        return _api.matmul(o, self)

    def __neg__(self):
        return _api.ufunc_call(np.negative, self)

    def __pos__(self):
        return _api.ufunc_call(np.positive, self)  # a TypeError for booleans, as in NumPy

    def __abs__(self):
        return _api.ufunc_call(np.absolute, self)

    def __invert__(self):
        return _api.ufunc_call(np.invert, self)

    def __and__(self, o):
        return _api.ufunc_call(np.bitwise_and, self, o)

    def __rand__(self, o):
        return _api.ufunc_call(np.bitwise_and, o, self)

    def __or__(self, o):
        return _api.ufunc_call(np.bitwise_or, self, o)

    def __ror__(self, o):
        return _api.ufunc_call(np.bitwise_or, o, self)

    def __xor__(self, o):
        return _api.ufunc_call(np.bitwise_xor, self, o)

    def __rxor__(self, o):
        return _api.ufunc_call(np.bitwise_xor, o, self)

    def __lt__(self, o):
        return _api.ufunc_call(np.less, self, o)

    def __le__(self, o):
        return _api.ufunc_call(np.less_equal, self, o)

    def __gt__(self, o):
        return _api.ufunc_call(np.greater, self, o)

    def __ge__(self, o):
        return _api.ufunc_call(np.greater_equal, self, o)

    def __eq__(self, o):
        return _api.ufunc_call(np.equal, self, o)

    def __ne__(self, o):
        return _api.ufunc_call(np.not_equal, self, o)

    # methods: the same parameters as ndarray's, checked by the front end
    def sum(self, *args, **kw):
        return _inplace.fresh_object(_api.sum(self, *args, **kw), self)

    def mean(self, *args, **kw):
        return _inplace.fresh_object(_api.mean(self, *args, **kw), self)

    def prod(self, *args, **kw):
        return _inplace.fresh_object(_api.prod(self, *args, **kw), self)

    def max(self, *args, **kw):
        return _inplace.fresh_object(_api.max(self, *args, **kw), self)

    def min(self, *args, **kw):
        return _inplace.fresh_object(_api.min(self, *args, **kw), self)

    def var(self, *args, **kw):
        return _inplace.fresh_object(_api.var(self, *args, **kw), self)

    def std(self, *args, **kw):
        return _inplace.fresh_object(_api.std(self, *args, **kw), self)

    def cumsum(self, *args, **kw):
        return _inplace.fresh_object(_api.cumsum(self, *args, **kw), self)

    def any(self, *args, **kw):
        return _api.FUNCTIONS[np.any](self, *args, **kw)

    def all(self, *args, **kw):
        return _api.FUNCTIONS[np.all](self, *args, **kw)

    def argmax(self, *args, **kw):
        return _api.argmax(self, *args, **kw)

    def argmin(self, *args, **kw):
        return _api.argmin(self, *args, **kw)

    def round(self, *args, **kw):
        return _inplace.fresh_object(_api.round_(self, *args, **kw), self)

    def reshape(self, *shape, order="C", copy=None):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = shape[0]
        return _api.view_call(np.reshape, self, shape, order=order)

    def transpose(self, *axes):
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = axes[0]
        return _api.view_call(np.transpose, self, axes or None)

    def swapaxes(self, axis1, axis2):
        return _api.view_call(np.swapaxes, self, axis1, axis2)

    def ravel(self, order="C"):
        return _api.view_call(np.ravel, self, order)

    def flatten(self, order="C"):
        return _inplace.fresh_object(_api.ravel(self, order), self)

    def squeeze(self, axis=None):
        return _api.view_call(np.squeeze, self, axis)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        return _inplace.fresh_object(_api.astype(self, dtype), self)

    def clip(self, *args, **kw):
        return _inplace.fresh_object(_api.clip(self, *args, **kw), self)

    def dot(self, b, out=None):
        return _inplace.fresh_object(_api.dot(self, b, out), self)

    def take(self, *args, **kw):
        return _inplace.fresh_object(_api.take(self, *args, **kw), self)

    def repeat(self, repeats, axis=None):
        return _inplace.fresh_object(_api.repeat(self, repeats, axis=axis), self)

    def copy(self, order="C"):
        return _api.copy(self)

    def conj(self):
        return _inplace.fresh_object(self, self)  # a copy, as NumPy's ufunc makes

    def conjugate(self):
        return _inplace.fresh_object(self, self)

    @property
    def real(self):
        return self


from . import numpy_api as _api  # noqa: E402  (the front end uses Tracer)
from .numpy_api import inplace as _inplace  # noqa: E402
