"""The transformations that give one program per signature: grad, value_and_grad, jit."""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import pytree
from .ad import vjp_ir
from .core import IR, Aval, Eqn, Var
from .numpy_api import aval_of
from .passes.nan_safe import nan_safe
from .prims.checkpoint import LOOP_CHECKPOINT
from .prims.elementwise import convert_p
from .staging import (
    Entry,
    Transformed,
    _arg_name,
    _name,
    _normalize_argnums,
    argnums_spec,
)
from .tiered import DEFAULT_EAGER_FIRST
from .tracing import Tracer, at, user_src


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
            ok = leaf.aval.is_inexact
        elif type(leaf) in (float, complex) or isinstance(leaf, (np.ndarray, np.inexact)):
            ok = np.asarray(leaf).dtype.kind in "fc"
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
                "respect to float and complex arrays and Python floats" + at(user_src())
            )


def _check_float_wrt(ir: IR, mask, info, fun, what):
    for v, m, i in zip(ir.invars, mask, info["leaf_arg"]):
        if m and not v.aval.is_inexact:
            raise TypeError(
                f"{what}: {_arg_name(fun, i)} has dtype {v.aval.dtype} ({v.aval}); derivatives "
                "are taken only with respect to float and complex arrays and Python floats" + at(user_src())
            )


def _check_holomorphic(ir: IR, mask, val, fun, what: str) -> None:
    """holomorphic=True: complex inputs to a complex scalar (as JAX asks)."""
    if val.aval.shape != () or val.aval.dtype.kind != "c":
        raise TypeError(
            f"{what}(holomorphic=True): {_name(fun)} must return a complex scalar, got {val.aval}"
            + at(user_src())
        )
    for v, m in zip(ir.invars, mask):
        if m and v.aval.dtype.kind != "c":
            raise TypeError(
                f"{what}(holomorphic=True): the inputs must be complex, got {v.aval}" + at(user_src())
            )


def _wrt_trees(info, nums):
    return [info["arg_trees"][i] for i in nums]


class Grad(Transformed):
    kind = "grad"

    def __init__(
        self,
        fun,
        argnums=0,
        has_aux=False,
        with_value=False,
        loop_checkpoint=None,
        static_argnums=(),
        holomorphic=False,
    ):
        what = "value_and_grad" if with_value else "grad"
        self.kind = what
        argnums = argnums_spec(argnums, what)
        loop_checkpoint = _loop_checkpoint(loop_checkpoint, what)
        key = (argnums, has_aux, with_value, loop_checkpoint, bool(holomorphic))
        super().__init__(fun, key, static_argnums=static_argnums)
        self.argnums, self.has_aux, self.with_value = argnums, has_aux, with_value
        self.holomorphic = bool(holomorphic)
        self.loop_checkpoint = loop_checkpoint

    def _traced_argnums(self, n):
        nums = (self.argnums,) if isinstance(self.argnums, int) else self.argnums
        return {a % n for a in nums if -n <= a < n}

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
                    f"got {_tree_txt(out_tree)}" + at(user_src())
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
        if self.holomorphic:
            _check_holomorphic(ir, mask, val, self.fun, what)
        elif val.aval.size != 1 or not val.aval.is_float:  # (one element of any shape, as NumPy's .item())
            complex_out = val.aval.size == 1 and val.aval.is_inexact
            raise TypeError(
                f"{what}: {_name(self.fun)} must return a float scalar, got {val.aval}; "
                + (
                    f"for a holomorphic function use {what}(f, holomorphic=True), or take np.real or np.abs"
                    if complex_out
                    else "use td.vjp or td.jacobian for non-scalar outputs"
                )
                + at(user_src())
            )
        seeds = [np.ones(val.aval.shape, val.aval.dtype)] + [None] * (len(ir.outvars) - 1)
        with loop_checkpoints(self.loop_checkpoint):
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
            outs, res_tree = full.outvars[:n_out] + grads, ("tuple", (out_tree, g_tree))
            first = n_out
        elif self.has_aux:  # (grad, aux)
            outs, res_tree = grads + full.outvars[1:n_out], ("tuple", (g_tree, aux_tree))
        else:
            outs, res_tree = grads, g_tree
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

        return dce(full), res_tree


def _tree_txt(td) -> str:
    if td == pytree.LEAF:
        return "an array"
    return {"tuple": "a tuple", "list": "a list", "dict": "a dict"}.get(td[0], str(td[0])) + (
        f" of {len(td[-1])}" if td[0] in ("tuple", "list", "dict") else ""
    )


def _loop_checkpoint(k, what: str) -> int | None:
    if k is None:
        return None
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise TypeError(
            f"{what}: loop_checkpoint must be a positive int (iterations per checkpoint), got {k!r}"
        )
    return int(k)


@contextlib.contextmanager
def loop_checkpoints(k: int | None):
    """While reverse mode traces: a loop of more than k iterations keeps its carried
    values every k iterations instead of a tape row per iteration."""
    token = LOOP_CHECKPOINT.set(k)
    try:
        yield
    finally:
        LOOP_CHECKPOINT.reset(token)


def grad(
    fun: Callable | None = None,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    loop_checkpoint: int | None = None,
    static_argnums: int | Sequence[int] = (),
    holomorphic: bool = False,
):
    """Gradient of a scalar-valued `fun` with respect to `argnums`.

    Complex inputs follow JAX's convention: for a real-valued `fun` of a complex
    z = x + iy the gradient is df/dx - i df/dy (the conjugate of the direction
    of steepest ascent); `holomorphic=True` takes the complex derivative f'(z) of
    a holomorphic complex-valued `fun`.

    `loop_checkpoint=k`: reverse mode through a `for`/`while` loop of more than k
    iterations keeps the loop's carried values every k iterations and recomputes
    the iterations in between when it goes back, instead of keeping what each
    iteration's derivative needs: memory O(n/k + k) rather than O(n) for a loop of
    n iterations, for one more run of the loop.

    `static_argnums`: arguments passed as Python values (Python control flow may
    depend on them); one program is traced per value.
    """
    if fun is None:
        return lambda f: grad(f, argnums, has_aux, loop_checkpoint, static_argnums, holomorphic)
    return Grad(
        fun,
        argnums,
        has_aux,
        loop_checkpoint=loop_checkpoint,
        static_argnums=static_argnums,
        holomorphic=holomorphic,
    )


def value_and_grad(
    fun: Callable | None = None,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    loop_checkpoint: int | None = None,
    static_argnums: int | Sequence[int] = (),
    holomorphic: bool = False,
):
    """`(value, grad)`; with `has_aux`, `((value, aux), grad)`; the options as in `grad`."""
    if fun is None:
        return lambda f: value_and_grad(f, argnums, has_aux, loop_checkpoint, static_argnums, holomorphic)
    return Grad(fun, argnums, has_aux, True, loop_checkpoint, static_argnums, holomorphic)


# TRACEDIFF_MATH=libm makes scalar library calls the default of td.jit (tests run both)
DEFAULT_MATH = os.environ.get("TRACEDIFF_MATH", "fast")
JIT_OPTIONS = ("math",)  # keyword options of td.jit beyond its named parameters


class Jit(Transformed):
    kind = "jit"

    def __init__(
        self,
        fun,
        target="cpu",
        static_argnums=(),
        parallel=None,
        cache=True,
        eager_first=None,
        nan_safe=False,
        **options,
    ):
        if target not in ("cpu", "cuda", "interpret"):
            raise ValueError(f"jit: target must be 'cpu', 'cuda' or 'interpret', got {target!r}")
        for k in options:
            if k not in JIT_OPTIONS:
                near = difflib.get_close_matches(
                    k,
                    [
                        "target",
                        "static_argnums",
                        "parallel",
                        "cache",
                        "eager_first",
                        "nan_safe",
                        *JIT_OPTIONS,
                    ],
                )
                raise TypeError(
                    f"jit: unknown option {k!r}"
                    + (f" (did you mean {near[0]!r}?)" if near else "")
                    + "; the options are target, static_argnums, parallel, cache, eager_first, nan_safe, "
                    + ", ".join(JIT_OPTIONS)
                )
        if options.get("math", "fast") not in ("fast", "libm"):
            raise ValueError(f"jit: math must be 'fast' or 'libm', got {options['math']!r}")
        # tiered execution: the first calls run interpreted while Numba compiles (CPU)
        eager = DEFAULT_EAGER_FIRST if eager_first is None else bool(eager_first)
        self.eager_first = eager and target == "cpu"
        self.nan_safe = bool(nan_safe)
        params = (parallel, cache, self.eager_first, self.nan_safe, tuple(sorted(options.items())))
        super().__init__(fun, params, target, static_argnums)
        self.options = (
            {"parallel": parallel, "cache": cache, "math": options.get("math", DEFAULT_MATH)}
            if target == "cpu"
            else {"cache": cache}
            if target == "cuda"
            else {}
        )

    def _build(self, args, kwargs) -> Entry:
        if not self.nan_safe:
            return super()._build(args, kwargs)
        with nan_safe():  # every gradient traced inside gets NaN-safe selects
            return super()._build(args, kwargs)

    def transform(self, ir, out_tree, info, args):
        if self.target == "cpu":  # name the argument a compiled program cannot take
            from .backend.base import SUPPORTED_DTYPES

            for v, i in zip(ir.invars, info["leaf_arg"]):
                if v.aval.dtype not in SUPPORTED_DTYPES:
                    what = _arg_name(self.fun, i) if i is not None else "a keyword argument"
                    raise TypeError(
                        f"jit: {what} has dtype {v.aval.dtype} ({v.aval}), which target 'cpu' does not "
                        "support; use float32/float64, or target='interpret'" + at(user_src())
                    )
        return super().transform(ir, out_tree, info, args)


def jit(
    fun: Callable | None = None,
    target: str = "cpu",
    static_argnums=(),
    parallel=None,
    cache: bool = True,
    eager_first: bool | None = None,
    nan_safe: bool = False,
    **options,
):
    """Compile `fun` (any function: a loss, its gradient, a training step).

    With `eager_first` (the default, or `TRACEDIFF_EAGER_FIRST=0` to turn it
    off) the first calls of a signature run the optimized program with the
    NumPy interpreter while Numba compiles it in a background thread;
    `f.compile(*args)` waits for the compiled program.

    With `nan_safe=True` every gradient taken inside gets NaN-safe selects:
    `np.where(c, np.sqrt(x), 0)` differentiates to 0, not NaN, where `c` is false
    (the "double where" rewrite, applied by the compiler; forward values unchanged)."""
    if fun is None:
        return lambda f: Jit(f, target, static_argnums, parallel, cache, eager_first, nan_safe, **options)
    return Jit(fun, target, static_argnums, parallel, cache, eager_first, nan_safe, **options)


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
