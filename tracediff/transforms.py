"""The transformations: grad, value_and_grad, jit, vjp and jvp."""

from __future__ import annotations

import contextlib
import difflib
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import pytree
from .ad import jvp_ir, vjp_ir
from .core import FLOAT_DTYPES, IR, Aval, Eqn, Var
from .interpret import Interpreter, eval_ir
from .numpy_api import astype, aval_of
from .passes.pipeline import optimize
from .prims.checkpoint import LOOP_CHECKPOINT
from .prims.elementwise import convert_p
from .staging import (
    Entry,
    Transformed,
    _arg_name,
    _fixup,
    _leaf_key,
    _name,
    _normalize_argnums,
    argnums_spec,
    stage,
)
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

    def __init__(self, fun, argnums=0, has_aux=False, with_value=False, loop_checkpoint=None):
        what = "value_and_grad" if with_value else "grad"
        argnums = argnums_spec(argnums, what)
        loop_checkpoint = _loop_checkpoint(loop_checkpoint, what)
        super().__init__(fun, (argnums, has_aux, with_value, loop_checkpoint))
        self.argnums, self.has_aux, self.with_value = argnums, has_aux, with_value
        self.loop_checkpoint = loop_checkpoint
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
):
    """Gradient of a scalar-valued `fun` with respect to `argnums`.

    `loop_checkpoint=k`: reverse mode through a `for`/`while` loop of more than k
    iterations keeps the loop's carried values every k iterations and recomputes
    the iterations in between when it goes back, instead of keeping what each
    iteration's derivative needs: memory O(n/k + k) rather than O(n) for a loop of
    n iterations, for one more run of the loop.
    """
    if fun is None:
        return lambda f: Grad(f, argnums, has_aux, loop_checkpoint=loop_checkpoint)
    return Grad(fun, argnums, has_aux, loop_checkpoint=loop_checkpoint)


def value_and_grad(
    fun: Callable | None = None,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    loop_checkpoint: int | None = None,
):
    """`(value, grad)`; with `has_aux`, `((value, aux), grad)`; `loop_checkpoint` as in `grad`."""
    if fun is None:
        return lambda f: Grad(f, argnums, has_aux, with_value=True, loop_checkpoint=loop_checkpoint)
    return Grad(fun, argnums, has_aux, with_value=True, loop_checkpoint=loop_checkpoint)


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
            else {"cache": cache}
            if target == "cuda"
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
            from .backend.base import SUPPORTED_DTYPES

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


def vjp(fun: Callable, *primals: Any, has_aux: bool = False, loop_checkpoint: int | None = None):
    """`(out, vjp_fn)`; `vjp_fn(cotangent)` returns a tuple, one entry per primal;
    `loop_checkpoint` as in `grad`."""
    loop_checkpoint = _loop_checkpoint(loop_checkpoint, "vjp")
    ir, out_tree, info = stage(fun, primals, {})
    captured = info["captured"]
    n_extra = len(captured)
    mask = [v.aval.is_float for v in ir.invars[: len(ir.invars) - n_extra]]
    main_tree, aux_tree = _split_aux(out_tree, has_aux, "vjp", fun)
    n_main = pytree.num_leaves(main_tree)
    dyn = [info["leaves"][k] for k in info["dyn_pos"]] + list(captured)
    outs = _run(optimize(ir), dyn)
    main_ir = IR(ir.invars, ir.eqns, ir.outvars[:n_main])
    with loop_checkpoints(loop_checkpoint):
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
