"""Staging: a user function traced once per signature, and the cache of its programs.

Every transformed function is *staged*: on a call it flattens its arguments
(pytrees), splits them into dynamic leaves (arrays, Python floats) and static
ones (Python ints/bools/strings, callables), and looks the signature up in a
cache. A miss traces the user's function into IR, transforms and optimizes it
once; a hit only runs the stored program, through a generated fast path for
the most recent signatures. Called with tracers (inside another
transformation) the stored program is re-staged into the outer trace, which
is how transformations compose.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import operator
import os
import random
import threading
import types
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import pytree
from .arguments import (  # noqa: F401 (re-exported)
    TransformError,
    _arg_name,
    _check_leaf,
    _device_aval,
    _dyn_aval,
    _is_device_array,
    _is_dynamic,
    _leaf_key,
    _name,
    _name_bad_leaf,
    _normalize_argnums,
    argnums_spec,
    check_aliasing,
    static_key,
    updated_arguments,
)
from .core import IR, Aval
from .fastpath import MISS as _MISS
from .fastpath import make_fast_path
from .interpret import Interpreter, eval_ir
from .passes.nan_safe import NAN_SAFE
from .passes.pipeline import optimize
from .pickling import global_name, rebuild
from .pyconv import convert
from .randomness import RandomWatch, draws_from_globals
from .tiered import Tier, precheck
from .tracing import Tracer, TracerError, at, trace, user_src

# --- staging: trace a user function at a signature ------------------------------------

# ids of the objects that are static arguments of a transformation being traced: an
# inner transformation called with one of them keeps it static (a Python value)
STATIC_IDS: contextvars.ContextVar[frozenset] = contextvars.ContextVar("STATIC_IDS", default=frozenset())


def stage(fun: Callable, args: tuple, kwargs: dict, static_argnums: Sequence[int] = ()):
    """Trace `fun(*args, **kwargs)`; returns (ir, out_tree, info) with flat IR inputs."""
    arg_trees, leaves, leaf_arg, statics = [], [], [], []
    for i, a in enumerate(args):
        if i in static_argnums:
            arg_trees.append(("static", a))
            statics.append((i, a))
            continue
        ls, td = pytree.flatten(a)
        arg_trees.append(td)
        leaves.extend(ls)
        leaf_arg.extend([i] * len(ls))
    kls, ktd = pytree.flatten(kwargs)
    leaves.extend(kls)
    leaf_arg.extend([None] * len(kls))
    for x, i in zip(leaves, leaf_arg):
        _check_leaf(x, fun, i)
    dyn_pos = [k for k, x in enumerate(leaves) if _is_dynamic(x)]
    avals = [_dyn_aval(leaves[k]) for k in dyn_pos]
    out_tree = []
    arg_tracers: list = []  # the traced arguments, to see which the function updated in place

    def flat_fun(*tracers):
        arg_tracers[:] = tracers
        new = list(leaves)
        for k, t in zip(dyn_pos, tracers):
            new[k] = t
        it = iter(new)
        a = tuple(
            td[1] if isinstance(td, tuple) and td[0] == "static" else pytree._unflatten(td, it)
            for td in arg_trees
        )
        kw = pytree._unflatten(ktd, it)
        out = convert(fun)(*a, **kw)
        outs, otd = pytree.flatten(out)
        for o in outs:
            if not (_is_dynamic(o) or isinstance(o, (int, bool))):
                code = getattr(inspect.unwrap(fun), "__code__", None)
                where = (
                    f" (defined at {os.path.basename(code.co_filename)}:{code.co_firstlineno})"
                    if code
                    else ""
                )
                raise TransformError(
                    f"{_name(fun)} returned a value of type {type(o).__name__}; outputs must be arrays, "
                    f"numbers, or tuples/lists/dicts of them{where}"
                )
        out_tree.append(otd)
        return outs

    statics_ids = {id(a) for _, a in statics}

    def traced():
        token = STATIC_IDS.set(STATIC_IDS.get() | statics_ids)
        try:
            return trace(flat_fun, avals)
        finally:
            STATIC_IDS.reset(token)

    roots = [x for x in leaves if not _is_dynamic(x)] + [a for _, a in statics]
    watch = RandomWatch(fun, roots)
    ir, captured = traced()
    moved = watch.moved()
    if moved and all(r is random._inst for r in moved):
        # maybe another thread's draw (Dask's workers draw from `random` while tasks
        # trace): trace again, watching this thread's own calls into `random`
        watch = RandomWatch(fun, roots)
        (ir, captured), drew_here = draws_from_globals(traced)
        # (its first trace's evidence stands if it draws: random.seed() moves the state once)
        moved = moved if drew_here else [r for r in watch.moved() if r is not random._inst]
    watch.check(TracerError, at(user_src()), moved)
    # an argument updated in place (x += 1, x[0] = v, through a view): its tracer now
    # holds another value than the program's input
    updated = updated_arguments(fun, arg_tracers, ir.invars, [leaf_arg[k] for k in dyn_pos])
    return (
        ir,
        out_tree[-1],
        {
            "dyn_pos": dyn_pos,
            "leaves": leaves,
            "leaf_arg": [leaf_arg[k] for k in dyn_pos],
            "captured": captured,
            "arg_trees": arg_trees,
            "n_args": len(args),
            "updated": updated,
        },
    )


def _fixup(aval: Aval):
    """NumPy-like results: 0-d arrays become scalars, weak 0-d values Python numbers."""
    if aval.weak and aval.shape == ():
        py = {"f": float, "c": complex, "i": int, "u": int}.get(aval.dtype.kind, bool)
        # (a device result stays on the device)
        return lambda x: py(x) if isinstance(x, (np.generic, np.ndarray, int, float, complex, bool)) else x
    if aval.shape == ():
        return lambda x: x[()] if isinstance(x, np.ndarray) else x
    return None


class Entry:
    """One signature's program: traced IR, optimized IR, and how to run it."""

    __slots__ = (
        "traced_ir",
        "ir",
        "out_tree",
        "captured",
        "runner",
        "fixups",
        "target",
        "options",
        "lock",
        "eager_first",
        "tier",
        "updated",
        "__weakref__",
    )

    def __init__(
        self, traced_ir: IR, out_tree, captured, target: str, options=None, eager_first=False, updated=()
    ):
        self.traced_ir = traced_ir
        self.updated = updated  # ((dynamic leaf, its name), ...) the program updates in place
        self.options = options or {}
        self.eager_first = eager_first
        self.tier: Tier | None = None
        self.ir = optimize(traced_ir)
        self.out_tree = out_tree
        self.captured = captured
        self.target = target
        self.runner = None
        self.lock = threading.Lock()
        self.fixups = [(i, f) for i, v in enumerate(self.ir.outvars) if (f := _fixup(v.aval)) is not None]

    def __call__(self, dyn: list):
        if self.captured or any(type(x) is Tracer for x in dyn):
            # inside another transformation: re-stage the unoptimized program,
            # so the outer one optimizes (and fuses) across the boundary
            outs = eval_ir(self.traced_ir, list(dyn) + list(self.captured))
        else:
            runner = self.runner
            if runner is None:
                runner = self._first_runner(dyn, self.eager_first)
            outs = runner(*dyn)
        for i, f in self.fixups:
            outs[i] = f(outs[i])
        return pytree.unflatten(self.out_tree, outs)

    def _first_runner(self, dyn: list, eager_first: bool) -> Callable:
        """What runs a call before the compiled program exists: build it (threads
        calling at once build it once), or run the interpreter while it compiles."""
        with self.lock:
            if self.runner is not None:
                return self.runner
            if self.tier is not None:
                return self.tier
            if eager_first and self.target == "cpu":
                precheck(self.ir, self.target)

                ir, target, options = self.ir, self.target, self.options

                def build():  # (not holding the entry: a queued program dies with it)
                    return make_runner(ir, target, options)

                self.tier = Tier(self.ir, build, weakref.WeakMethod(self._install))
                return self.tier
            self.runner = make_runner(self.ir, self.target, self.options)
            return self.runner

    def _install(self, runner) -> None:
        self.runner = runner

    def compile(self, dyn: list) -> None:
        """Make sure the compiled program for these arguments exists (waits for it)."""
        if self.captured or self.target == "interpret":
            return
        runner = self.runner or self._first_runner(dyn, False)
        if isinstance(runner, Tier):
            runner.wait(dyn)
        elif hasattr(runner, "signature"):
            runner.compile(runner.signature(*dyn))


RETRACE_WARN_AT = 16
FAST_PATHS = 8  # signatures a transformed function dispatches to without a cache lookup

_LOCKS_GUARD = threading.Lock()
_BUILD_LOCKS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


class _Lock:
    """A lock that can be weakly referenced (threading.Lock cannot)."""

    __slots__ = ("lock", "__weakref__")

    def __init__(self):
        self.lock = threading.Lock()

    def __enter__(self):
        self.lock.acquire()

    def __exit__(self, *exc):
        self.lock.release()


def _build_lock(cache: dict, key) -> _Lock:
    """The lock of one signature of one cache: threads wanting the same program
    wait for the first to build it instead of building it again."""
    k = (id(cache), key)
    with _LOCKS_GUARD:
        lock = _BUILD_LOCKS.get(k)
        if lock is None:
            lock = _BUILD_LOCKS[k] = _Lock()
    return lock


def make_runner(ir: IR, target: str, options: dict | None = None) -> Callable:
    if target == "interpret":
        return Interpreter(ir)
    from .backend import compile_ir

    return compile_ir(ir, target, **(options or {}))


# --- the cache ------------------------------------------------------------------------

_CACHES: weakref.WeakKeyDictionary[Any, dict] = weakref.WeakKeyDictionary()


class Transformed:
    """Base of every transformed function: flatten, look up, run."""

    kind = "identity"

    options: dict = {}
    eager_first = False  # tiered execution (td.jit)

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        self._made_with = (args, kwargs)  # what pickling rebuilds it from
        self._call = types.MethodType(Transformed.call_general, self)
        return self

    def __reduce__(self):
        """Pickle by reference: a decorated module-level function by its name, any
        other by the function it transforms (by name, or by value under cloudpickle)
        and its options; it is traced again where it is loaded."""
        name = global_name(self)
        if name is not None:
            return name
        args, kwargs = self._made_with
        return rebuild, (type(self), args, kwargs)

    def __init__(self, fun: Callable, params: tuple, target: str = "interpret", static_argnums=()):
        static = argnums_spec(static_argnums, self.kind, "static_argnums")
        self.static_argnums = (static,) if isinstance(static, int) else static
        params = params + (self.static_argnums,)
        self.fun = fun
        self.params = params
        self.target = target
        base = fun.base if isinstance(fun, Transformed) else fun
        chain = (fun.chain if isinstance(fun, Transformed) else ()) + ((self.kind, params, target),)
        self.base, self.chain = base, chain
        try:
            per_fn = _CACHES.setdefault(base, {})
        except TypeError:  # not weak-referenceable: cache on this object
            per_fn = {}
        self.cache: dict = per_fn.setdefault(chain, {})
        functools.update_wrapper(self, fun, updated=())

    def _key(self, args, kwargs):
        stat = self._static_argnums(args)
        if not stat:
            leaves, td = pytree.flatten((args, kwargs))
            try:
                return (td, tuple(_leaf_key(x) for x in leaves), NAN_SAFE.get()), leaves
            except TransformError as e:
                raise _name_bad_leaf(e, self.fun, args) from None
        for i in stat:
            try:
                hash(args[i])
            except TypeError:
                raise TypeError(
                    f"{self.kind}: static argument {i} of type {type(args[i]).__name__} is not hashable"
                    + at(user_src())
                ) from None
        dyn_args = tuple(a for i, a in enumerate(args) if i not in stat)
        leaves, td = pytree.flatten((dyn_args, kwargs))
        try:
            key = (
                td,
                tuple(_leaf_key(x) for x in leaves),
                stat,
                tuple(static_key(args[i]) for i in stat),
                NAN_SAFE.get(),
            )
        except TransformError as e:
            raise _name_bad_leaf(e, self.fun, args) from None
        return key, leaves

    # generated fast paths, one per recent signature, most recent first
    _fasts: tuple = ()

    # Python finds __call__ on the type: a property reading the object's own `_call`
    # (C code all the way, no Python frame) lets each object call its newest fast path
    # directly (`specialize`), one Python frame a call instead of two
    __call__ = property(operator.attrgetter("_call"), doc="Call the transformed function.")

    def call_general(self, *args, **kwargs):
        if not kwargs:
            for fast in self._fasts:
                res = fast(args)
                if res is not _MISS:
                    return res
        entry, leaves = self.lookup(args, kwargs)
        dyn = [x for x in leaves if _is_dynamic(x)]
        if entry.updated:
            check_aliasing(entry.updated, self.fun, dyn)
        res = entry(dyn)
        if (
            not kwargs
            and not entry.captured
            and not entry.updated
            and not self.static_argnums
            and not STATIC_IDS.get()
        ):
            fast = make_fast_path(entry, args)
            if fast is not None:
                self._fasts = (fast,) + self._fasts[: FAST_PATHS - 1]
                self.specialize(fast.method)
        return res

    def specialize(self, method) -> None:
        """Calls go to `method` (the newest signature's fast path, which falls back
        to `call_general`)."""
        self._call = types.MethodType(method, self)

    @property
    def __signature__(self):
        """The transformed function's parameters (inspect.signature)."""
        try:
            return inspect.signature(self.fun)
        except (TypeError, ValueError):
            return None

    def compile(self, *args, **kwargs):
        """Trace and compile this function for these arguments now, waiting for
        the compiler (the first call then runs compiled code); returns self."""
        entry, leaves = self.lookup(args, kwargs)
        entry.compile([x for x in leaves if _is_dynamic(x)])
        return self

    def lookup(self, args, kwargs):
        """(this signature's entry, built on a miss; the flat leaves of the call)."""
        key, leaves = self._key(args, kwargs)
        entry = self.cache.get(key)
        if entry is None:
            with _build_lock(self.cache, key):  # one thread traces and compiles a signature
                entry = self.cache.get(key)
                if entry is None:
                    entry = self._build(args, kwargs)
                    if not entry.captured:
                        self.cache[key] = entry
                        self._count_signature()
        return entry, leaves

    def _count_signature(self):
        if len(self.cache) == RETRACE_WARN_AT and not getattr(self, "_warned", False):
            self._warned = True
            warnings.warn(
                f"tracediff: {_name(self.fun)} has been traced and compiled for {RETRACE_WARN_AT} "
                "different signatures (shapes, dtypes, static arguments); if that is not intended, "
                "pass varying Python ints as arrays or keep shapes fixed",
                stacklevel=3,
            )

    def _build(self, args, kwargs) -> Entry:
        ir, out_tree, info = stage(self.fun, args, kwargs, self._static_argnums(args))
        ir, out_tree = self.transform(ir, out_tree, info, args)
        return Entry(
            ir, out_tree, info["captured"], self.target, self.options, self.eager_first, info["updated"]
        )

    def _static_argnums(self, args) -> tuple:
        """The positions of the static arguments of this call: those declared, and
        those static for a transformation being traced around this one."""
        outer = STATIC_IDS.get()
        if not self.static_argnums and not outer:
            return ()
        n = len(args)
        for a in self.static_argnums:
            if not -n <= a < n:
                raise ValueError(
                    f"{self.kind}: static_argnums {a} is out of range for {_name(self.fun)} called with "
                    f"{n} positional argument(s)" + at(user_src())
                )
        declared = {a % n for a in self.static_argnums}
        for i in declared:
            if type(args[i]) is Tracer:
                raise TransformError(
                    f"{self.kind}: static {_arg_name(self.fun, i)} of {_name(self.fun)} received a traced "
                    f"value {args[i].aval}: an outer transformation traces it; make it static there too "
                    f"(static_argnums={i})" + at(user_src())
                )
        if outer:
            keep = self._traced_argnums(n)
            declared |= {
                i for i, a in enumerate(args) if id(a) in outer and type(a) is not Tracer and i not in keep
            }
        return tuple(sorted(declared))

    def _traced_argnums(self, n: int) -> set:
        """Arguments this transformation needs traced (differentiated ones)."""
        return set()

    def transform(self, ir: IR, out_tree, info, args) -> tuple[IR, Any]:
        """The program this transformation makes of the traced one, and its output tree."""
        return ir, out_tree

    def entry(self, *args, **kwargs) -> Entry:
        key, _ = self._key(args, kwargs)
        entry = self.cache.get(key)
        return entry if entry is not None else self._build(args, kwargs)

    def __repr__(self) -> str:
        return f"<tracediff.{self.kind} of {_name(self.fun)}>"
