"""The transformations users call: grad, value_and_grad, vjp, jvp, jacobians, jit.

Every transformed function is *staged*: on a call it flattens its arguments
(pytrees), splits them into dynamic leaves (arrays, Python floats) and static
ones (Python ints/bools/strings, callables), and looks the signature up in a
cache. A miss traces the user's function into IR, transforms and optimizes it
once; a hit only runs the stored program. Called with tracers (inside another
transformation) the stored program is re-staged into the outer trace, which
is how transformations compose.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import os
import threading
import warnings
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import pytree
from .ad import jvp_ir, vjp_ir
from .core import FLOAT_DTYPES, IR, Aval, Eqn, TracediffError, Var
from .graph import check_format, render, to_dot
from .interpret import Interpreter, eval_ir
from .numpy_api import astype, aval_of, stop_gradient  # noqa: F401  (re-exported)
from .passes.pipeline import optimize
from .prims.elementwise import convert_p
from .randomness import RandomWatch
from .tracing import Tracer, TracerError, at, trace, user_src


class TransformError(TracediffError, TypeError):
    pass


def _is_dynamic(x: Any) -> bool:
    return isinstance(x, (np.ndarray, Tracer, np.generic, float)) and not isinstance(
        x, (bool, np.str_, np.bytes_)
    )


def _leaf_key(x: Any):
    t = type(x)
    if t is np.ndarray:
        return (x.shape, x.dtype)
    if t is float:
        return float
    if t is Tracer:
        a = x.aval
        return (a.shape, a.dtype, a.weak, "t")
    if _is_dynamic(x):
        return (np.shape(x), np.asarray(x).dtype)
    try:
        hash(x)
        return ("static", type(x), x)
    except TypeError:
        raise TransformError(
            f"value of type {type(x).__name__}, which is neither an array nor a hashable "
            "static value (int, bool, str, None, callable)"
        ) from None


def _name_bad_leaf(e: TransformError, fun, args) -> TransformError:
    """`e` (an unusable leaf) told with the argument that holds it."""
    for i, a in enumerate(args):
        for leaf in pytree.flatten(a)[0]:
            try:
                _leaf_key(leaf)
            except TransformError:
                return TransformError(f"{_name(fun)}: {_arg_name(fun, i)} holds a {e}" + at(user_src()))
    return TransformError(f"{_name(fun)}: a keyword argument holds a {e}" + at(user_src()))


def _dyn_aval(x: Any) -> Aval:
    return aval_of(x)


# --- staging: trace a user function at a signature ------------------------------------


class Staged:
    """A user function traced once per signature into IR."""

    __slots__ = (
        "fun",
        "ir",
        "traced_ir",
        "out_tree",
        "in_tree",
        "dyn_pos",
        "leaf_arg",
        "captured",
        "fixups",
        "runner",
    )


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

    def flat_fun(*tracers):
        new = list(leaves)
        for k, t in zip(dyn_pos, tracers):
            new[k] = t
        it = iter(new)
        a = tuple(
            td[1] if isinstance(td, tuple) and td[0] == "static" else pytree._unflatten(td, it)
            for td in arg_trees
        )
        kw = pytree._unflatten(ktd, it)
        out = fun(*a, **kw)
        outs, otd = pytree.flatten(out)
        for o in outs:
            if not (_is_dynamic(o) or isinstance(o, (int, bool))):
                raise TransformError(
                    f"{_name(fun)} returned a {type(o).__name__}; outputs must be arrays, "
                    "numbers, or tuples/lists/dicts of them"
                )
        out_tree.append(otd)
        return outs

    watch = RandomWatch(fun, [x for x in leaves if not _is_dynamic(x)] + [a for _, a in statics])
    ir, captured = trace(flat_fun, avals)
    watch.check(TracerError, at(user_src()))
    return (
        ir,
        out_tree[0],
        {
            "dyn_pos": dyn_pos,
            "leaves": leaves,
            "leaf_arg": [leaf_arg[k] for k in dyn_pos],
            "captured": captured,
            "arg_trees": arg_trees,
            "n_args": len(args),
        },
    )


_ARRAY_KINDS = "biuf"  # bool, integers, floats: what a traced array may hold


def _check_leaf(x: Any, fun, i: int | None) -> None:
    """Arguments tracediff cannot keep NumPy's semantics for raise, naming the argument."""
    what = _arg_name(fun, i) if i is not None else "a keyword argument"
    if isinstance(x, (complex, np.complexfloating)) or (isinstance(x, np.ndarray) and x.dtype.kind == "c"):
        raise TypeError(
            f"{_name(fun)}: {what} is complex ({np.asarray(x).dtype}); tracediff does not "
            "support complex numbers yet" + at(user_src())
        )
    if isinstance(x, (np.matrix, np.ma.MaskedArray)):
        raise TypeError(
            f"{_name(fun)}: {what} is a {type(x).__module__}.{type(x).__name__}, whose operators "
            "differ from ndarray's (matrix products, masks); pass np.asarray(...) of it" + at(user_src())
        )
    if isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind not in _ARRAY_KINDS:
        raise TypeError(
            f"{_name(fun)}: {what} has dtype {x.dtype}; tracediff traces arrays of booleans, "
            "integers and floats" + at(user_src())
        )


def _name(fun) -> str:
    return getattr(fun, "__name__", type(fun).__name__)


def _fixup(aval: Aval):
    """NumPy-like results: 0-d arrays become scalars, weak 0-d values Python floats."""
    if aval.weak and aval.shape == ():
        return lambda x: float(x) if not isinstance(x, Tracer) else x
    if aval.shape == ():
        return lambda x: x[()] if isinstance(x, np.ndarray) else x
    return None


class Entry:
    """One signature's program: traced IR, optimized IR, and how to run it."""

    __slots__ = ("traced_ir", "ir", "out_tree", "captured", "runner", "fixups", "target", "options", "lock")

    def __init__(self, traced_ir: IR, out_tree, captured, target: str, options=None):
        self.traced_ir = traced_ir
        self.options = options or {}
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
                with self.lock:  # threads calling at once compile it once
                    if self.runner is None:
                        self.runner = make_runner(self.ir, self.target, self.options)
                    runner = self.runner
            outs = runner(*dyn)
        for i, f in self.fixups:
            outs[i] = f(outs[i])
        return pytree.unflatten(self.out_tree, outs)


_MISS = object()
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


def _tree_expr(td, ns) -> str | None:
    """Python expression building the output tree from `o` (None: not expressible)."""
    it = iter(range(pytree.num_leaves(td)))

    def go(t):
        if t == pytree.LEAF:
            return f"o[{next(it)}]"
        kind = t[0]
        if kind == "tuple":
            return "(" + "".join(go(c) + ", " for c in t[1]) + ")"
        if kind == "list":
            return "[" + ", ".join(go(c) for c in t[1]) + "]"
        if kind == "dict" and all(type(k) in (str, int) for k in t[1]):
            return "{" + ", ".join(f"{k!r}: {go(c)}" for k, c in zip(t[1], t[2])) + "}"
        if t == pytree.NONE:
            return "None"
        raise ValueError

    try:
        return go(td)
    except ValueError:
        return None


def make_fast_path(entry: Entry, args: tuple):
    """A function for calls with this exact signature: checks, runs, builds the result.

    Only for top-level arguments that are arrays or Python floats; anything
    else (pytrees, static values) takes the general path.
    """
    if entry.runner is None:
        return None
    ns = {"np": np, "ndarray": np.ndarray, "MISS": _MISS, "run": entry.runner}
    checks, params = [], []
    for i, a in enumerate(args):
        params.append(f"a{i}")
        if type(a) is np.ndarray:
            ns[f"S{i}"], ns[f"D{i}"] = a.shape, a.dtype
            checks.append(f"type(a{i}) is not ndarray or a{i}.shape != S{i} or a{i}.dtype is not D{i}")
        elif type(a) is float:
            checks.append(f"type(a{i}) is not float")
        else:
            return None
    tree = _tree_expr(entry.out_tree, ns)
    if tree is None:
        return None
    fix = []
    for i, f in entry.fixups:
        ns[f"F{i}"] = f
        fix.append(f"    o[{i}] = F{i}(o[{i}])")
    unpack = f"    {', '.join(params)}{',' if len(params) == 1 else ''} = args\n" if params else ""
    src = (
        "def fast(args):\n"
        f"    if len(args) != {len(args)}:\n        return MISS\n"
        + unpack
        + "".join(f"    if {c}:\n        return MISS\n" for c in checks)
        + f"    o = run({', '.join(params)})\n"
        + "".join(line + "\n" for line in fix)
        + f"    return {tree}\n"
    )
    exec(src, ns)
    return ns["fast"]


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

    def __init__(self, fun: Callable, params: tuple, target: str = "interpret"):
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
        leaves, td = pytree.flatten((args, kwargs))
        try:
            return (td, tuple(_leaf_key(x) for x in leaves)), leaves
        except TransformError as e:
            raise _name_bad_leaf(e, self.fun, args) from None

    # generated fast paths, one per recent signature, most recent first
    _fasts: tuple = ()

    def __call__(self, *args, **kwargs):
        if not kwargs:
            for fast in self._fasts:
                res = fast(args)
                if res is not _MISS:
                    return res
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
        res = entry([x for x in leaves if _is_dynamic(x)])
        if not kwargs and not entry.captured and not self._static_argnums(args):
            fast = make_fast_path(entry, args)
            if fast is not None:
                self._fasts = (fast,) + self._fasts[: FAST_PATHS - 1]
        return res

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
        ir = self.transform(ir, out_tree, info, args)
        return Entry(ir, self._out_tree, info["captured"], self.target, self.options)

    def _static_argnums(self, args) -> tuple:
        return ()

    def transform(self, ir: IR, out_tree, info, args) -> IR:
        self._out_tree = out_tree
        return ir

    def entry(self, *args, **kwargs) -> Entry:
        key, _ = self._key(args, kwargs)
        entry = self.cache.get(key)
        return entry if entry is not None else self._build(args, kwargs)

    def __repr__(self) -> str:
        return f"<tracediff.{self.kind} of {_name(self.fun)}>"


def _is_int(a) -> bool:
    return isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_))


def argnums_spec(argnums, what: str, name: str = "argnums") -> int | tuple[int, ...]:
    """`argnums` as an int, or a tuple of ints from any sequence of ints (users write lists)."""
    if _is_int(argnums):
        return int(argnums)
    try:
        nums = tuple(argnums)
    except TypeError:
        nums = None
    if nums is None or not all(_is_int(a) for a in nums):
        raise TypeError(f"{what}: {name} must be an int or a sequence of ints, got {argnums!r}")
    return tuple(int(a) for a in nums)


def _normalize_argnums(argnums, n_args: int, fun, what: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in nums:
        if not isinstance(a, int) or not -n_args <= a < n_args:
            raise ValueError(
                f"{what}: argnums {argnums!r} is out of range for {_name(fun)} called with "
                f"{n_args} positional argument(s)" + at(user_src())
            )
    return tuple(a % n_args for a in nums)


def _arg_name(fun, i: int) -> str:
    try:
        names = list(inspect.signature(fun).parameters)
        return f"argument {i} ({names[i]!r})" if i < len(names) else f"argument {i}"
    except (TypeError, ValueError):
        return f"argument {i}"


def _wrt_mask(info, nums, fun, what) -> list[bool]:
    mask = [a in nums for a in info["leaf_arg"]]
    for i in nums:
        td = info["arg_trees"][i]
        n_dyn = sum(1 for a in info["leaf_arg"] if a == i)
        if pytree.num_leaves(td) != n_dyn:
            raise TypeError(
                f"{what}: {_arg_name(fun, i)} holds non-array values (Python int/bool/str); "
                "derivatives are taken only with respect to float32/float64 arrays and Python floats"
                + at(user_src())
            )
    return mask


def _check_differentiable(arg, fun, i: int, what: str) -> None:
    """Every leaf of a differentiated argument is a float array or number (checked
    before the user's function runs, so its own errors do not hide this one)."""
    leaves = pytree.flatten(arg)[0]
    if not leaves:
        raise TypeError(
            f"{what}: {_arg_name(fun, i)} is {arg!r}, which holds no float array to differentiate"
            + at(user_src())
        )
    for leaf in leaves:
        if type(leaf) is Tracer:
            ok = leaf.aval.is_float
        elif type(leaf) is float or isinstance(leaf, (np.ndarray, np.floating)):
            ok = np.asarray(leaf).dtype in FLOAT_DTYPES
        else:
            ok = False
        if not ok:
            desc = (
                f"dtype {np.asarray(leaf).dtype}"
                if isinstance(leaf, (np.ndarray, np.generic))
                else type(leaf).__name__
            )
            raise TypeError(
                f"{what}: {_arg_name(fun, i)} holds a {desc} value; derivatives are taken only with "
                "respect to float32/float64 arrays and Python floats" + at(user_src())
            )


def _check_float_wrt(ir: IR, mask, info, fun, what):
    for v, m, i in zip(ir.invars, mask, info["leaf_arg"]):
        if m and not v.aval.is_float:
            raise TypeError(
                f"{what}: {_arg_name(fun, i)} has dtype {v.aval.dtype} ({v.aval}); derivatives "
                "are taken only with respect to float32/float64 arrays and Python floats" + at(user_src())
            )


def _wrt_trees(info, nums):
    return [info["arg_trees"][i] for i in nums]


class Grad(Transformed):
    kind = "grad"

    def __init__(self, fun, argnums=0, has_aux=False, with_value=False):
        argnums = argnums_spec(argnums, "value_and_grad" if with_value else "grad")
        super().__init__(fun, (argnums, has_aux, with_value))
        self.argnums, self.has_aux, self.with_value = argnums, has_aux, with_value
        self.kind = "value_and_grad" if with_value else "grad"

    def _build(self, args, kwargs) -> Entry:
        what = "value_and_grad" if self.with_value else "grad"
        for i in _normalize_argnums(self.argnums, len(args), self.fun, what):
            _check_differentiable(args[i], self.fun, i, what)
        return super()._build(args, kwargs)

    def transform(self, ir, out_tree, info, args):
        what = "value_and_grad" if self.with_value else "grad"
        nums = _normalize_argnums(self.argnums, len(args), self.fun, what)
        n_extra = len(ir.invars) - len(info["leaf_arg"])  # captured values
        mask = _wrt_mask(info, nums, self.fun, what)
        _check_float_wrt(ir, mask, info, self.fun, what)
        if self.has_aux:
            if not (
                isinstance(out_tree, tuple) and out_tree[0] in ("tuple", "list") and len(out_tree[1]) == 2
            ):
                raise TypeError(
                    f"{what}(has_aux=True): {_name(self.fun)} must return a pair (value, aux), "
                    f"got a structure {_tree_txt(out_tree)}" + at(user_src())
                )
            val_tree, aux_tree = out_tree[1]
        else:
            val_tree, aux_tree = out_tree, None
        if val_tree != pytree.LEAF:
            raise TypeError(
                f"{what}: {_name(self.fun)} must return a scalar, got {_tree_txt(val_tree)}; "
                "use td.vjp or td.jacobian for structured or non-scalar outputs" + at(user_src())
            )
        val = ir.outvars[0]
        if val.aval.shape != () or not val.aval.is_float:
            raise TypeError(
                f"{what}: {_name(self.fun)} must return a float scalar, got {val.aval}; "
                "use td.vjp or td.jacobian for non-scalar outputs" + at(user_src())
            )
        seeds = [np.ones((), val.aval.dtype)] + [None] * (len(ir.outvars) - 1)
        full = vjp_ir(ir, mask + [False] * n_extra, seeds=seeds)
        n_out = len(ir.outvars)
        by_arg: dict[int, list] = {i: [] for i in nums}
        weak_by_arg: dict[int, list] = {i: [] for i in nums}
        wrt_leaves = [(i, v) for i, v, m in zip(info["leaf_arg"], ir.invars, mask) if m]
        for g, (i, v) in zip(full.outvars[n_out:], wrt_leaves):
            by_arg[i].append(g)
            weak_by_arg[i].append(v.aval.weak)
        grads = [g for i in nums for g in by_arg[i]]  # in the order argnums names them
        weak = [w for i in nums for w in weak_by_arg[i]]
        grad_trees = _wrt_trees(info, nums)
        g_tree = grad_trees[0] if isinstance(self.argnums, int) else ("tuple", tuple(grad_trees))
        first = 0
        if self.with_value:  # (value, grad) or ((value, aux), grad)
            outs, self._out_tree = full.outvars[:n_out] + grads, ("tuple", (out_tree, g_tree))
            first = n_out
        elif self.has_aux:  # (grad, aux)
            outs, self._out_tree = grads + full.outvars[1:n_out], ("tuple", (g_tree, aux_tree))
        else:
            outs, self._out_tree = grads, g_tree
        # the gradient with respect to a Python float is a Python float, traced or not
        eqns = list(full.eqns)
        for k, w in enumerate(weak):
            g = outs[first + k]
            if w and not g.aval.weak:
                gw = Var(Aval(g.aval.shape, g.aval.dtype, True))
                eqns.append(Eqn(convert_p, (g,), (gw,), {"dtype": g.aval.dtype, "weak": True}))
                outs[first + k] = gw
        full = IR(full.invars, eqns, list(outs))
        from .passes.dce import dce

        return dce(full)


def _tree_txt(td) -> str:
    if td == pytree.LEAF:
        return "an array"
    return {"tuple": "a tuple", "list": "a list", "dict": "a dict"}.get(td[0], str(td[0])) + (
        f" of {len(td[-1])}" if td[0] in ("tuple", "list", "dict") else ""
    )


def grad(fun: Callable | None = None, argnums: int | Sequence[int] = 0, has_aux: bool = False):
    """Gradient of a scalar-valued `fun` with respect to `argnums`."""
    if fun is None:
        return lambda f: Grad(f, argnums, has_aux)
    return Grad(fun, argnums, has_aux)


def value_and_grad(fun: Callable | None = None, argnums: int | Sequence[int] = 0, has_aux: bool = False):
    """`(value, grad)`; with `has_aux`, `((value, aux), grad)`."""
    if fun is None:
        return lambda f: Grad(f, argnums, has_aux, with_value=True)
    return Grad(fun, argnums, has_aux, with_value=True)


# TRACEDIFF_MATH=libm makes scalar library calls the default of td.jit (tests run both)
DEFAULT_MATH = os.environ.get("TRACEDIFF_MATH", "fast")
JIT_OPTIONS = ("math",)  # keyword options of td.jit beyond its named parameters


class Jit(Transformed):
    kind = "jit"

    def __init__(self, fun, target="cpu", static_argnums=(), parallel=None, cache=True, **options):
        if target not in ("cpu", "cuda", "interpret"):
            raise ValueError(f"jit: target must be 'cpu', 'cuda' or 'interpret', got {target!r}")
        for k in options:
            if k not in JIT_OPTIONS:
                near = difflib.get_close_matches(
                    k, ["target", "static_argnums", "parallel", "cache", *JIT_OPTIONS]
                )
                raise TypeError(
                    f"jit: unknown option {k!r}"
                    + (f" (did you mean {near[0]!r}?)" if near else "")
                    + "; the options are target, static_argnums, parallel, cache, "
                    + ", ".join(JIT_OPTIONS)
                )
        if options.get("math", "fast") not in ("fast", "libm"):
            raise ValueError(f"jit: math must be 'fast' or 'libm', got {options['math']!r}")
        static = argnums_spec(static_argnums, "jit", "static_argnums")
        static = (static,) if isinstance(static, int) else static
        super().__init__(fun, (static, parallel, cache, tuple(sorted(options.items()))), target)
        self.static_argnums = static
        self.options = (
            {"parallel": parallel, "cache": cache, "math": options.get("math", DEFAULT_MATH)}
            if target == "cpu"
            else {}
        )

    def _key(self, args, kwargs):
        if not self.static_argnums:
            return super()._key(args, kwargs)
        stat = self._static_argnums(args)
        for i in stat:
            try:
                hash(args[i])
            except TypeError:
                raise TypeError(
                    f"jit: static argument {i} of type {type(args[i]).__name__} is not hashable"
                ) from None
        dyn_args = tuple(a for i, a in enumerate(args) if i not in stat)
        leaves, td = pytree.flatten((dyn_args, kwargs))
        key = (td, tuple(_leaf_key(x) for x in leaves), stat, tuple(args[i] for i in stat))
        return key, leaves

    def transform(self, ir, out_tree, info, args):
        if self.target == "cpu":  # name the argument a compiled program cannot take
            from .backend.emit import SUPPORTED_DTYPES

            for v, i in zip(ir.invars, info["leaf_arg"]):
                if v.aval.dtype not in SUPPORTED_DTYPES:
                    what = _arg_name(self.fun, i) if i is not None else "a keyword argument"
                    raise TypeError(
                        f"jit: {what} has dtype {v.aval.dtype} ({v.aval}), which target 'cpu' does not "
                        "support; use float32/float64, or target='interpret'" + at(user_src())
                    )
        return super().transform(ir, out_tree, info, args)

    def _static_argnums(self, args):
        n = len(args)
        for a in self.static_argnums:
            if not -n <= a < n:
                raise ValueError(
                    f"jit: static_argnums {a} is out of range for {_name(self.fun)} called with "
                    f"{n} positional argument(s)" + at(user_src())
                )
        return tuple(a % n for a in self.static_argnums)


def jit(
    fun: Callable | None = None,
    target: str = "cpu",
    static_argnums=(),
    parallel=None,
    cache: bool = True,
    **options,
):
    """Compile `fun` (any function: a loss, its gradient, a training step)."""
    if fun is None:
        return lambda f: Jit(f, target, static_argnums, parallel, cache, **options)
    return Jit(fun, target, static_argnums, parallel, cache, **options)


# --- vjp / jvp / jacobians ---------------------------------------------------------------


def _run(ir: IR, args: list) -> list:
    if any(type(a) is Tracer for a in args):
        return eval_ir(ir, args)
    return Interpreter(ir)(*args)


def vjp(fun: Callable, *primals: Any, has_aux: bool = False):
    """`(out, vjp_fn)`; `vjp_fn(cotangent)` returns a tuple, one entry per primal."""
    ir, out_tree, info = stage(fun, primals, {})
    captured = info["captured"]
    n_extra = len(captured)
    mask = [v.aval.is_float for v in ir.invars[: len(ir.invars) - n_extra]]
    main_tree, aux_tree = _split_aux(out_tree, has_aux, "vjp", fun)
    n_main = pytree.num_leaves(main_tree)
    dyn = [info["leaves"][k] for k in info["dyn_pos"]] + list(captured)
    outs = _run(optimize(ir), dyn)
    main_ir = IR(ir.invars, ir.eqns, ir.outvars[:n_main])
    back = optimize(vjp_ir(main_ir, mask + [False] * n_extra))
    out_avals = [v.aval for v in main_ir.outvars]
    fix = [_fixup(a) or (lambda x: x) for a in ir.out_avals]
    outs = [f(o) for f, o in zip(fix, outs)]
    primal_trees = info["arg_trees"]

    def vjp_fn(cotangent):
        cts, ct_tree = pytree.flatten(cotangent)
        if ct_tree != main_tree:
            raise TypeError(
                f"vjp_fn: the cotangent must have the structure of the output ({_tree_txt(main_tree)})"
            )
        cts_ok = []
        for c, a in zip(cts, out_avals):
            ca = _leaf_aval(c, "vjp_fn: the cotangent")
            if a.is_float and ca.dtype.kind != "f":
                raise TypeError(
                    f"vjp_fn: the cotangent of an output {a} must be a float array or Python float, "
                    f"got {ca}" + at(user_src())
                )
            if not a.is_float and ca.dtype.kind not in "biuf":
                raise TypeError(f"vjp_fn: cotangent {ca} for an output {a}" + at(user_src()))
            if ca.shape != a.shape:
                raise ValueError(f"vjp_fn: cotangent shape {ca} does not match output {a}" + at(user_src()))
            # (an integer output carries no derivative: its cotangent is not used)
            cts_ok.append(astype(c, a.dtype) if type(c) is Tracer else np.asarray(c, a.dtype))
        res = _run(back, dyn + cts_ok)
        grads = res[n_main:]
        it = iter(grads)
        dyn_pos = set(info["dyn_pos"])
        leaves = []
        for k, x in enumerate(info["leaves"]):
            if k in dyn_pos and aval_of(x).is_float:
                g = next(it)
                leaves.append(float(g) if isinstance(x, float) and type(g) is not Tracer else g)
            else:  # not differentiable: a zero of its own shape and dtype
                xa = aval_of(x)
                leaves.append(np.zeros(xa.shape, xa.dtype))
        lit = iter(leaves)
        return tuple(pytree._unflatten(td, lit) for td in primal_trees)

    main = pytree.unflatten(main_tree, outs[:n_main])
    if has_aux:
        return main, vjp_fn, pytree.unflatten(aux_tree, outs[n_main:])
    return main, vjp_fn


def _leaf_aval(x: Any, what: str) -> Aval:
    """The aval of a user-given tangent or cotangent, or a TypeError naming it."""
    try:
        return aval_of(x)
    except TypeError:
        desc = f"an array of dtype {x.dtype}" if isinstance(x, np.ndarray) else f"a {type(x).__name__}"
        raise TypeError(f"{what} is {desc}, not an array of numbers or a number" + at(user_src())) from None


def _split_aux(out_tree, has_aux: bool, what: str, fun):
    """(main tree, aux tree) of a function's output; aux tree None without has_aux."""
    if not has_aux:
        return out_tree, None
    if not (isinstance(out_tree, tuple) and out_tree[0] in ("tuple", "list") and len(out_tree[1]) == 2):
        raise TypeError(
            f"{what}(has_aux=True): {_name(fun)} must return a pair (out, aux), got {_tree_txt(out_tree)}"
            + at(user_src())
        )
    return out_tree[1]


def jvp(fun: Callable, primals: Sequence, tangents: Sequence, has_aux: bool = False):
    """Forward mode: `(out, tangent_out)`; with `has_aux`, `(out, tangent_out, aux)`."""
    for name, v in (("primals", primals), ("tangents", tangents)):
        if not isinstance(v, (tuple, list)):
            raise TypeError(
                f"jvp: {name} must be a tuple or list with one entry per argument, got "
                f"{type(v).__name__} (write jvp(f, (x,), (t,)) for one argument)" + at(user_src())
            )
    primals, tangents = tuple(primals), tuple(tangents)
    ir, out_tree, info = stage(fun, primals, {})
    main_tree, aux_tree = _split_aux(out_tree, has_aux, "jvp", fun)
    n_main = pytree.num_leaves(main_tree)
    captured = info["captured"]
    p_leaves = [info["leaves"][k] for k in info["dyn_pos"]]
    t_leaves, t_tree = pytree.flatten(tangents)
    p_all, p_tree = pytree.flatten(primals)
    if t_tree != p_tree:
        raise TypeError("jvp: tangents must have the same structure as primals" + at(user_src()))
    tans = [t_leaves[k] for k in info["dyn_pos"]]
    mask = [v.aval.is_float for v in ir.invars[: len(p_leaves)]]
    tans_ok = []
    for p, t, m, i in zip(p_leaves, tans, mask, info["leaf_arg"]):
        if not m:
            continue
        pa, ta = aval_of(p), _leaf_aval(t, f"jvp: the tangent of {_arg_name(fun, i)}")
        if ta.dtype.kind not in "fiu":
            got = f"dtype {ta.dtype}" if isinstance(t, (np.ndarray, np.generic, Tracer)) else type(t).__name__
            raise TypeError(
                f"jvp: the tangent of {_arg_name(fun, i)} is a {got}; tangents of {pa.dtype} values "
                "are float arrays or numbers" + at(user_src())
            )
        if ta.shape != pa.shape:
            raise ValueError(
                f"jvp: the tangent {ta} of {_arg_name(fun, i)} does not match its primal {pa}"
                + at(user_src())
            )
        tans_ok.append(astype(t, pa.dtype) if type(t) is Tracer else np.asarray(t, pa.dtype))
    main_ir = IR(ir.invars, ir.eqns, ir.outvars[:n_main])
    fwd = optimize(jvp_ir(main_ir, mask + [False] * len(captured)))
    res = _run(fwd, p_leaves + list(captured) + tans_ok)
    fix = [_fixup(a) or (lambda x: x) for a in ir.out_avals]
    outs = [f(o) for f, o in zip(fix, res[:n_main])]
    touts = [f(o) for f, o in zip(fix, res[n_main:])]
    result = (pytree.unflatten(main_tree, outs), pytree.unflatten(main_tree, touts))
    if not has_aux:
        return result
    aux_ir = optimize(IR(ir.invars, ir.eqns, ir.outvars[n_main:]))
    aux = _run(aux_ir, p_leaves + list(captured))
    aux = [f(o) for f, o in zip(fix[n_main:], aux)]
    return result + (pytree.unflatten(aux_tree, aux),)


def _basis(shape, dtype):
    n = int(np.prod(shape, dtype=np.int64))
    eye = np.eye(n, dtype=dtype)
    return [eye[i].reshape(shape) for i in range(n)]


def jacrev(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False):
    """Jacobian by reverse mode: one VJP per output element."""
    argnums = argnums_spec(argnums, "jacobian")

    def jac_fn(*args):
        nums = _normalize_argnums(argnums, len(args), fun, "jacobian")

        def sub(*wrt):
            full = list(args)
            for i, w in zip(nums, wrt):
                full[i] = w
            return fun(*full)

        res = vjp(sub, *[args[i] for i in nums], has_aux=has_aux)
        out, f_vjp = res[0], res[1]
        out_leaves, otree = pytree.flatten(out)
        per_out = []
        for j, o in enumerate(out_leaves):
            oa = aval_of(o)
            rows = []
            for e in _basis(oa.shape, oa.dtype):
                cts = [
                    e if k == j else np.zeros(aval_of(q).shape, aval_of(q).dtype)
                    for k, q in enumerate(out_leaves)
                ]
                rows.append(f_vjp(pytree.unflatten(otree, cts)))
            jacs = []
            for i in range(len(nums)):
                wa = aval_of(args[nums[i]])
                if rows:
                    jacs.append(np.reshape(np.stack([r[i] for r in rows]), oa.shape + wa.shape))
                else:
                    jacs.append(np.zeros(oa.shape + wa.shape, wa.dtype))
            per_out.append(jacs[0] if isinstance(argnums, int) else tuple(jacs))
        jac = pytree.unflatten(otree, per_out)
        return (jac, res[2]) if has_aux else jac

    return jac_fn


jacobian = jacrev


def jacfwd(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False):
    """Jacobian by forward mode: one JVP per input element."""
    argnums = argnums_spec(argnums, "jacfwd")

    def jac_fn(*args):
        nums = _normalize_argnums(argnums, len(args), fun, "jacfwd")
        aux = []

        def sub(*wrt):
            full = list(args)
            for i, w in zip(nums, wrt):
                full[i] = w
            return fun(*full)

        def fwd(wrt, tans):
            res = jvp(sub, wrt, tans, has_aux=has_aux)
            if has_aux:
                aux.append(res[2])
            return res[0], res[1]

        wrt = [args[i] for i in nums]
        jacs = []
        otree = None
        for i, w in enumerate(wrt):
            wa = aval_of(w)
            cols = []
            for e in _basis(wa.shape, wa.dtype):
                tans = [
                    e if k == i else np.zeros(aval_of(q).shape, aval_of(q).dtype) for k, q in enumerate(wrt)
                ]
                out, t_out = fwd(wrt, tans)
                t_leaves, otree = pytree.flatten(t_out)
                cols.append(t_leaves)
            out_leaves = (
                pytree.flatten(fwd(wrt, [np.zeros(aval_of(q).shape, aval_of(q).dtype) for q in wrt])[0])[0]
                if not cols
                else None
            )
            per_leaf = []
            n_out = len(cols[0]) if cols else len(out_leaves)
            for j in range(n_out):
                if cols:
                    oa = aval_of(cols[0][j])
                    stacked = np.stack([c[j] for c in cols], axis=-1)
                    per_leaf.append(np.reshape(stacked, oa.shape + wa.shape))
                else:
                    oa = aval_of(out_leaves[j])
                    per_leaf.append(np.zeros(oa.shape + wa.shape, wa.dtype))
            jacs.append(per_leaf)
        if otree is None:
            otree = pytree.flatten(fwd(wrt, [np.zeros(aval_of(q).shape, aval_of(q).dtype) for q in wrt])[0])[
                1
            ]
        leaves = [
            jacs[0][j] if isinstance(argnums, int) else tuple(j_[j] for j_ in jacs)
            for j in range(len(jacs[0]))
        ]
        jac = pytree.unflatten(otree, leaves)
        return (jac, aux[-1]) if has_aux else jac

    return jac_fn


def hessian(fun: Callable, argnums: int | Sequence[int] = 0):
    """Dense Hessian: forward over reverse."""
    return jacfwd(jacrev(fun, argnums), argnums)


# --- inspection ----------------------------------------------------------------------------


class DumpText(str):
    """A dump's text; shows as text (not a quoted string) at the prompt."""

    def __repr__(self) -> str:
        return str(self)


def _as_transformed(fn: Callable) -> Transformed:
    return fn if isinstance(fn, Transformed) else Transformed(fn, ())


def make_ir(fn: Callable, *args: Any, stage: str = "traced", **kwargs: Any) -> IR:
    """The IR of `fn` at these arguments: `stage` is "traced" or "optimized"."""
    entry = _as_transformed(fn).entry(*args, **kwargs)
    if stage == "traced":
        return entry.traced_ir
    if stage == "optimized":
        return entry.ir
    raise ValueError(f"make_ir: stage must be 'traced' or 'optimized', got {stage!r}")


def dump(
    fn: Callable,
    *args: Any,
    stage: str = "traced",
    target: str | None = None,
    format: str = "text",
    **kwargs: Any,
) -> DumpText | str | bytes:
    """One stage of `fn` at these arguments: "traced", "optimized", "source" or "all".

    `format="text"` (the default) gives the text of the stage. `format="dot"`
    gives a Graphviz digraph of the "traced" or "optimized" program; for "all",
    the traced then the optimized digraph, one after the other (the generated
    source has no picture). "svg" (text) and "png" (bytes) render the digraph
    of one stage with Graphviz's `dot` program, which must be installed.
    """
    check_format(stage, format)
    t = _as_transformed(fn)
    entry = t.entry(*args, **kwargs)
    if format != "text":
        name = _name(t.base)
        for kind, _, _ in t.chain:
            if kind != "identity":
                name = f"{kind}({name})"
        irs = [("traced", entry.traced_ir), ("optimized", entry.ir)]
        dot = "\n".join(to_dot(ir, title=f"{name}: {s}") for s, ir in irs if stage in (s, "all"))
        if format == "dot":
            return DumpText(dot)
        out = render(dot, format)
        return out.decode("utf-8") if format == "svg" else out
    parts = []
    if stage in ("traced", "all"):
        parts.append(("traced", str(entry.traced_ir)))
    if stage in ("optimized", "all"):
        parts.append(("optimized", str(entry.ir)))
    if stage in ("source", "all"):
        tgt = target or (t.target if t.target != "interpret" else "cpu")
        try:
            from .backend import source_of

            opts = entry.options if tgt == t.target else {}
            parts.append(("source", source_of(entry.ir, tgt, **opts)))
        except ImportError:
            if stage == "source":
                raise NotImplementedError(
                    "dump(stage='source'): the compiled backends are not built yet"
                ) from None
    if not parts:
        raise ValueError(f"dump: stage must be 'traced', 'optimized', 'source' or 'all', got {stage!r}")
    if len(parts) == 1:
        return DumpText(parts[0][1])
    return DumpText("\n\n".join(f"== {name} ==\n{txt}" for name, txt in parts))


__all__ = [
    "grad",
    "value_and_grad",
    "vjp",
    "jvp",
    "jacobian",
    "jacrev",
    "jacfwd",
    "hessian",
    "jit",
    "stop_gradient",
    "make_ir",
    "dump",
]
