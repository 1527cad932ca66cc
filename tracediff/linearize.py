"""Derivatives at a point: `vjp`, `jvp` and `linearize`, traced once per signature.

Each is a transformation with a cache like `grad`'s: the first call at a
signature traces the function and builds its programs; later calls only run
them. `vjp` and `linearize` split their program by partial evaluation
(`ad.split_known`) into F, what the primals determine (the outputs and the
residuals), run once at the point, and G, run per cotangent or tangent: the
returned function runs the stored G and never traces again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import pytree
from .ad import jvp_ir, split_known, vjp_ir
from .core import IR
from .interpret import Interpreter, eval_ir
from .numpy_api import astype, aval_of
from .passes.pipeline import optimize
from .staging import Transformed, _arg_name, _fixup, _is_dynamic, stage
from .tracing import Tracer, at, trace, user_src
from .transforms import _leaf_aval, _loop_checkpoint, _split_aux, _tree_txt, loop_checkpoints


class _Program:
    """A stored program and its runner; traced operands re-stage it instead."""

    def __init__(self, ir: IR):
        self.traced = ir  # re-staged under an outer transformation: stop_gradient and
        # custom rules still in it (the optimizer removes and inlines them)
        self.ir = optimize(ir)
        self.run = None

    def __call__(self, args: list) -> list:
        if any(type(a) is Tracer for a in args):
            return eval_ir(self.traced, args)
        if self.run is None:
            self.run = Interpreter(self.ir)
        return self.run(*args)


def _fix(avals, values):
    out = []
    for a, v in zip(avals, values):
        f = _fixup(a)
        out.append(f(v) if f is not None else v)
    return out


class _Point:
    """What `vjp`, `jvp` and `linearize` keep of one signature."""

    runner = None  # (no generated fast path: these return functions, not arrays)

    def __init__(self, ir, out_tree, info, has_aux, what, fun):
        self.captured = info["captured"]
        self.main_tree, self.aux_tree = _split_aux(out_tree, has_aux, what, fun)
        self.n_main = pytree.num_leaves(self.main_tree)
        self.out_avals = ir.out_avals
        n_in = len(ir.invars) - len(self.captured)
        self.mask = [v.aval.is_inexact for v in ir.invars[:n_in]]
        self.wrt = self.mask + [False] * len(self.captured)
        self.in_avals = ir.in_avals[:n_in]
        self.info = info
        self.fun = fun

    def result(self, outs, fn):
        outs = _fix(self.out_avals, outs)
        main = pytree.unflatten(self.main_tree, outs[: self.n_main])
        if self.aux_tree is not None:
            return main, fn, pytree.unflatten(self.aux_tree, outs[self.n_main :])
        return main, fn


class _VjpPoint(_Point):
    def __init__(self, ir, out_tree, info, has_aux, fun, loop_checkpoint):
        super().__init__(ir, out_tree, info, has_aux, "vjp", fun)
        main = IR(ir.invars, ir.eqns, ir.outvars[: self.n_main])
        with loop_checkpoints(loop_checkpoint):
            back = vjp_ir(main, self.wrt)  # (primals, cts) -> (outputs, cotangents of the floats)
        n, n_out = len(ir.invars), len(ir.outvars)

        def both(*args):
            return eval_ir(ir, list(args[:n])) + eval_ir(back, list(args))[self.n_main :]

        full, captured = trace(both, ir.in_avals + [o.aval.strong() for o in main.outvars])
        assert not captured
        f, g = split_known(full, [True] * n + [False] * self.n_main, n_out)
        self.fwd, self.bwd = _Program(f), _Program(g)
        # what vjp_fn returns for each leaf of the primals: a cotangent, or a zero
        self.template = []
        dyn = dict(zip(info["dyn_pos"], self.mask))
        for k, x in enumerate(info["leaves"]):
            a = aval_of(x) if _is_dynamic(x) or isinstance(x, (int, bool)) else None
            self.template.append("g" if dyn.get(k) else ("z", a.shape, a.dtype) if a is not None else ("n",))

    def __call__(self, dyn: list):
        r = self.fwd(list(dyn) + list(self.captured))
        n_out = len(self.out_avals)
        outs, res = r[:n_out], r[n_out:]
        leaves = [x for x in self.info["leaves"]]
        float_leaf = [isinstance(x, float) for x in leaves]

        def vjp_fn(cotangent):
            cts = self._cotangents(cotangent)
            it = iter(self.bwd(list(res) + cts))
            out = []
            for t, py in zip(self.template, float_leaf):
                if t == "g":
                    g = next(it)
                    out.append(float(g) if py and type(g) is not Tracer else g)
                elif t[0] == "z":  # not differentiable: a zero of its own shape and dtype
                    out.append(np.zeros(t[1], t[2]))
                else:
                    out.append(None)
            lit = iter(out)
            return tuple(
                td[1] if isinstance(td, tuple) and td[0] == "static" else pytree._unflatten(td, lit)
                for td in self.info["arg_trees"]
            )

        return self.result(outs, vjp_fn)

    def _cotangents(self, cotangent) -> list:
        cts, ct_tree = pytree.flatten(cotangent)
        if ct_tree != self.main_tree:
            raise TypeError(
                f"vjp_fn: the cotangent must have the structure of the output ({_tree_txt(self.main_tree)})"
            )
        ok = []
        for c, a in zip(cts, self.out_avals):
            ca = _leaf_aval(c, "vjp_fn: the cotangent")
            if a.is_inexact and ca.dtype.kind not in ("fc" if a.dtype.kind == "c" else "f"):
                raise TypeError(
                    f"vjp_fn: the cotangent of an output {a} must be a {'complex or ' * (a.dtype.kind == 'c')}"
                    f"float array or Python float, got {ca}" + at(user_src())
                )
            if not a.is_inexact and ca.dtype.kind not in "biuf":
                raise TypeError(f"vjp_fn: cotangent {ca} for an output {a}" + at(user_src()))
            if ca.shape != a.shape:
                raise ValueError(f"vjp_fn: cotangent shape {ca} does not match output {a}" + at(user_src()))
            # (an integer output carries no derivative: its cotangent is not used)
            ok.append(astype(c, a.dtype) if type(c) is Tracer else np.asarray(c, a.dtype))
        return ok


class _JvpPoint(_Point):
    """jvp's program (primals, tangents) -> (outputs, output tangents); with
    `split`, linearize's F and G."""

    def __init__(self, ir, out_tree, info, has_aux, fun, split: bool):
        super().__init__(ir, out_tree, info, has_aux, "linearize" if split else "jvp", fun)
        main = IR(ir.invars, ir.eqns, ir.outvars[: self.n_main])
        fwd = jvp_ir(main, self.wrt)  # (primals, tangents) -> (main outputs, their tangents)
        n = len(ir.invars)

        def both(*args):
            return eval_ir(ir, list(args[:n])) + eval_ir(fwd, list(args))[self.n_main :]

        tan_avals = [v.aval.strong() for v, w in zip(ir.invars, self.wrt) if w]
        full, captured = trace(both, ir.in_avals + tan_avals)
        assert not captured
        if split:
            f, g = split_known(full, [True] * n + [False] * len(tan_avals), len(ir.outvars))
            self.fwd, self.lin = _Program(f), _Program(g)
        else:
            self.program = _Program(full)

    def tangents(self, primals: tuple, tangents: tuple, what: str) -> list:
        """The tangents of the float leaves, checked against their primals."""
        t_leaves, t_tree = pytree.flatten(tangents)
        p_tree = pytree.flatten(primals)[1]
        if t_tree != p_tree:
            raise TypeError(f"{what}: tangents must have the same structure as primals" + at(user_src()))
        tans = [t_leaves[k] for k in self.info["dyn_pos"]]
        ok = []
        for t, m, pa, i in zip(tans, self.mask, self.in_avals, self.info["leaf_arg"]):
            if not m:
                continue
            name = _arg_name(self.fun, i) if i is not None else "a keyword argument"
            ta = _leaf_aval(t, f"{what}: the tangent of {name}")
            if ta.dtype.kind not in ("fiuc" if pa.dtype.kind == "c" else "fiu"):
                got = (
                    f"dtype {ta.dtype}"
                    if isinstance(t, (np.ndarray, np.generic, Tracer))
                    else type(t).__name__
                )
                raise TypeError(
                    f"{what}: the tangent of {name} is a {got}; tangents of {pa.dtype} values "
                    "are float arrays or numbers" + at(user_src())
                )
            if ta.shape != pa.shape:
                raise ValueError(
                    f"{what}: the tangent {ta} of {name} does not match its primal {pa}" + at(user_src())
                )
            ok.append(astype(t, pa.dtype) if type(t) is Tracer else np.asarray(t, pa.dtype))
        return ok


class _AtPoint(Transformed):
    """vjp/jvp/linearize of one function: an entry per signature (the cache lives in
    staging's per-function caches, so a new _AtPoint of the same function finds it)."""

    def __init__(self, fun, kind, has_aux, loop_checkpoint=None):
        self.kind = kind
        super().__init__(fun, (has_aux, loop_checkpoint))
        self.has_aux, self.loop_checkpoint = has_aux, loop_checkpoint

    def _build(self, args, kwargs):
        ir, out_tree, info = stage(self.fun, args, kwargs)
        if self.kind == "vjp":
            return _VjpPoint(ir, out_tree, info, self.has_aux, self.fun, self.loop_checkpoint)
        return _JvpPoint(ir, out_tree, info, self.has_aux, self.fun, split=self.kind == "linearize")


def _dyn(leaves) -> list:
    return [x for x in leaves if _is_dynamic(x)]


def vjp(fun: Callable, *primals: Any, has_aux: bool = False, loop_checkpoint: int | None = None):
    """`(out, vjp_fn)` (with `has_aux`, `(out, vjp_fn, aux)`); `vjp_fn(cotangent)`
    returns a tuple, one entry per primal; `loop_checkpoint` as in `grad`."""
    k = _loop_checkpoint(loop_checkpoint, "vjp")
    entry, leaves = _AtPoint(fun, "vjp", has_aux, k).lookup(primals, {})
    return entry(_dyn(leaves))


def _check_seq(what: str, **seqs) -> None:
    for name, v in seqs.items():
        if not isinstance(v, (tuple, list)):
            raise TypeError(
                f"{what}: {name} must be a tuple or list with one entry per argument, got "
                f"{type(v).__name__} (write {what}(f, (x,), (t,)) for one argument)" + at(user_src())
            )


def jvp(fun: Callable, primals: Sequence, tangents: Sequence, has_aux: bool = False):
    """Forward mode: `(out, tangent_out)`; with `has_aux`, `(out, tangent_out, aux)`."""
    _check_seq("jvp", primals=primals, tangents=tangents)
    primals, tangents = tuple(primals), tuple(tangents)
    entry, leaves = _AtPoint(fun, "jvp", has_aux).lookup(primals, {})
    tans = entry.tangents(primals, tangents, "jvp")
    res = entry.program(_dyn(leaves) + list(entry.captured) + tans)
    n_out = len(entry.out_avals)
    outs = _fix(entry.out_avals, res[:n_out])
    touts = _fix(entry.out_avals, res[n_out:])
    result = (
        pytree.unflatten(entry.main_tree, outs[: entry.n_main]),
        pytree.unflatten(entry.main_tree, touts),
    )
    if not has_aux:
        return result
    return result + (pytree.unflatten(entry.aux_tree, outs[entry.n_main :]),)


def linearize(fun: Callable, *primals: Any, has_aux: bool = False):
    """`(out, jvp_fn)`: `jvp_fn(*tangents)` is the output tangent, J·t, from a program
    traced once (with `has_aux`, `(out, jvp_fn, aux)`)."""
    entry, leaves = _AtPoint(fun, "linearize", has_aux).lookup(primals, {})
    r = entry.fwd(_dyn(leaves) + list(entry.captured))
    n_out = len(entry.out_avals)
    outs, res = r[:n_out], r[n_out:]

    def jvp_fn(*tangents):
        tans = entry.tangents(primals, tuple(tangents), "linearize")
        touts = _fix(entry.out_avals, entry.lin(list(res) + tans))
        return pytree.unflatten(entry.main_tree, touts)

    return entry.result(outs, jvp_fn)
