"""`td.custom_vjp`: a function with a derivative rule of the user's, JAX's interface.

    @td.custom_vjp
    def f(x, y): ...
    def f_fwd(x, y): return f(x, y), residuals
    def f_bwd(res, g): return (cotangent of x, cotangent of y)
    f.defvjp(f_fwd, f_bwd)

Called on traced values, `f` becomes one `custom_vjp_call` equation
(prims/custom.py) holding two sub-programs: `body` (f itself) and `fwd` (f_fwd:
its outputs, then the residuals). Reverse mode runs `fwd` and calls `f_bwd` on
tracers, so the rule is ordinary IR: it differentiates again where f_bwd is
differentiable, and forward mode (which transposes the reverse program) works
as well. The optimizer inlines `body` where no derivative was taken.
"""

from __future__ import annotations

import contextvars
import functools
import types
from collections.abc import Callable, Sequence

from . import pytree
from .core import IR
from .numpy_api import aval_of
from .pickling import global_name, rebuild
from .prims.custom import _kind, checkpoint_p, custom_jvp_call_p, custom_vjp_call_p
from .pyconv import convert
from .tracing import Tracer, TracerError, at, bind, trace, user_src

# the custom functions whose rules are being traced now
_TRACING: contextvars.ContextVar[frozenset] = contextvars.ContextVar(
    "custom_vjp_tracing", default=frozenset()
)


class _CustomFunction:
    """What custom_vjp and custom_jvp share: tracing the function and its rule."""

    kind = ""

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()):
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        functools.update_wrapper(self, fun)

    def __reduce__(self):
        """By name where decorated at module level; else the function, its options
        and its rules (each by reference, or by value under cloudpickle)."""
        name = global_name(self)
        if name is not None:
            return name
        rules = {k: getattr(self, k) for k in ("fwd", "bwd", "rule") if getattr(self, k, None) is not None}
        return rebuild, (type(self), (self.fun, self.nondiff_argnums), {}, rules)

    def __call__(self, *args):
        name = getattr(self.fun, "__name__", "function")
        if not self._has_rule():
            raise TypeError(f"{self.kind} {name}: call {name}.{self._define} before calling it")
        nondiff = tuple(args[i] for i in self.nondiff_argnums)
        diff = tuple(a for i, a in enumerate(args) if i not in self.nondiff_argnums)
        leaves, in_tree = pytree.flatten(diff)
        if not any(isinstance(x, Tracer) for x in leaves):
            return self.fun(*args)  # nothing traced: the function as written
        if id(self) in _TRACING.get():
            return convert(self.fun)(*args)
        if any(isinstance(x, Tracer) for x in pytree.flatten(nondiff)[0]):
            raise TracerError(
                f"{self.kind} {name}: arguments {self.nondiff_argnums} are nondiff_argnums and must be "
                "Python values, not traced arrays" + at(user_src())
            )

        def full(diff_args):
            it = iter(diff_args)
            return [
                nondiff[self.nondiff_argnums.index(i)] if i in self.nondiff_argnums else next(it)
                for i in range(len(args))
            ]

        avals = [aval_of(x) for x in leaves]
        out_tree = []

        def body_fn(*xs):
            out = convert(self.fun)(*full(pytree.unflatten(in_tree, list(xs))))
            flat, td = pytree.flatten(out)
            out_tree.append(td)
            return flat

        token = _TRACING.set(_TRACING.get() | {id(self)})
        try:  # (f called inside its own rule, as is usual, is plain f there)
            body, cap = trace(body_fn, avals)
            params, cap2 = self._trace_rule(full, nondiff, in_tree, avals, out_tree, name)
        finally:
            _TRACING.reset(token)
        if cap or cap2:
            raise TracerError(
                f"{self.kind} {name}: the function or its rule reads a traced value it was not passed "
                "(a closure over an argument of an outer transformation); pass it as an argument, so "
                "its derivative comes from the rule" + at(user_src())
            )
        if out_tree[0] != out_tree[1]:
            raise TypeError(f"{self.kind} {name}: the rule's output differs from the function's in structure")
        rule = params.get("fwd") or params.get("jvp")
        m = len(body.outvars)
        self._check_outputs([v.aval for v in body.outvars], [v.aval for v in rule.outvars[:m]], name)
        params.update(body=body, nondiff=nondiff, in_tree=in_tree, out_tree=out_tree[0], name=name)
        outs = bind(self.prim, *leaves, **params)
        return pytree.unflatten(out_tree[0], list(outs))

    def _check_outputs(self, body_avals, rule_avals, name: str) -> None:
        strip = lambda avals: [(a.shape, a.dtype) for a in avals]  # noqa: E731
        if strip(body_avals) != strip(rule_avals):
            raise TypeError(
                f"{self.kind} {name}: the rule's output differs from the function's (shape or dtype): "
                + ", ".join(map(str, rule_avals))
                + " against "
                + ", ".join(map(str, body_avals))
            )


class custom_vjp(_CustomFunction):
    """A function with its own reverse-mode rule: `f.defvjp(fwd, bwd)`.

    `fwd(*args)` returns `(f(*args), residuals)`; `bwd(*nondiff_args, residuals, g)`
    returns one cotangent per differentiable argument (None for zero). Arguments
    in `nondiff_argnums` are Python values (not traced), passed to `bwd` first.
    """

    kind, prim, _define = "custom_vjp", custom_vjp_call_p, "defvjp(fwd, bwd)"
    fwd: Callable | None = None
    bwd: Callable | None = None

    def defvjp(self, fwd: Callable, bwd: Callable) -> None:
        self.fwd, self.bwd = fwd, bwd

    def _has_rule(self) -> bool:
        return self.fwd is not None

    def _trace_rule(self, full, nondiff, in_tree, avals, out_tree, name):
        res_tree = []

        def fwd_fn(*xs):
            got = convert(self.fwd)(*full(pytree.unflatten(in_tree, list(xs))))
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise TypeError(f"custom_vjp {name}: fwd must return (output, residuals), got {_kind(got)}")
            flat, td = pytree.flatten(got[0])
            res, rtd = pytree.flatten(got[1])
            out_tree.append(td)
            res_tree.append(rtd)
            return flat + res

        fwd, cap = trace(fwd_fn, avals)
        return {"fwd": fwd, "bwd": self.bwd, "res_tree": res_tree[0]}, cap


class custom_jvp(_CustomFunction):
    """A function with its own forward-mode rule: `f.defjvp(rule)`.

    `rule(*nondiff_args, primals, tangents)` (primals and tangents: tuples of the
    differentiable arguments) returns `(f(*primals), output tangent)`, linear in
    the tangents. Reverse mode transposes it, so one rule serves both modes.
    """

    kind, prim, _define = "custom_jvp", custom_jvp_call_p, "defjvp(rule)"
    rule: Callable | None = None

    def defjvp(self, rule: Callable) -> Callable:
        self.rule = rule
        return rule

    def _has_rule(self) -> bool:
        return self.rule is not None

    def _trace_rule(self, full, nondiff, in_tree, avals, out_tree, name):
        n = len(avals)

        def jvp_fn(*xs):
            primals = pytree.unflatten(in_tree, list(xs[:n]))
            tangents = pytree.unflatten(in_tree, list(xs[n:]))
            got = convert(self.rule)(*nondiff, tuple(primals), tuple(tangents))
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise TypeError(
                    f"custom_jvp {name}: the rule must return (output, tangent), got {_kind(got)}"
                )
            flat, td = pytree.flatten(got[0])
            tan, ttd = pytree.flatten(got[1])
            out_tree.append(td)
            if ttd != td or any(aval_of(a).shape != aval_of(b).shape for a, b in zip(flat, tan)):
                raise TypeError(
                    f"custom_jvp {name}: the rule's tangent differs from its output in structure or shape"
                    + at(user_src())
                )
            return flat + tan

        rule, cap = trace(jvp_fn, avals + [a.strong() for a in avals])
        return {"jvp": rule}, cap


POLICIES = (None, "save_matmuls")


def checkpoint(fun: Callable, policy: str | None = None) -> Callable:
    """`fun` whose values the backward sweep recomputes instead of keeping (remat).

    Reverse mode keeps only `fun`'s inputs from the forward sweep and runs `fun`
    again when its derivative is needed: less memory for one more forward of
    `fun`. `policy="save_matmuls"` keeps the results of matrix products (the
    expensive part to recompute) and recomputes the rest.
    """
    if policy not in POLICIES:
        raise ValueError(f"checkpoint: policy must be one of {POLICIES}, got {policy!r}")
    return Checkpointed(fun, policy)


class Checkpointed:
    """A checkpointed function (see `checkpoint`)."""

    def __init__(self, fun: Callable, policy: str | None):
        self.fun, self.policy = fun, policy
        functools.update_wrapper(self, fun)

    def __reduce__(self):
        name = global_name(self)
        return name if name is not None else (checkpoint, (self.fun, self.policy))

    def __get__(self, obj, objtype=None):  # a method stays a method
        return self if obj is None else types.MethodType(self, obj)

    def __call__(self, *args):
        fun, policy = self.fun, self.policy
        name = getattr(fun, "__name__", "function")
        leaves, in_tree = pytree.flatten(args)
        if not any(isinstance(x, Tracer) for x in leaves):
            return fun(*args)
        out_tree = []

        def body_fn(*xs):
            out = convert(fun)(*pytree.unflatten(in_tree, list(xs)))
            flat, td = pytree.flatten(out)
            out_tree.append(td)
            return flat

        body, cap = trace(body_fn, [aval_of(x) for x in leaves])
        if cap:
            raise TracerError(
                f"checkpoint {name}: the function reads a traced value it was not passed (a closure over "
                "an argument of an outer transformation); pass it as an argument" + at(user_src())
            )
        n_out = len(body.outvars)
        if policy == "save_matmuls":
            saved = [v for e in body.eqns if e.prim.name == "matmul" for v in e.outvars]
            body = IR(body.invars, body.eqns, list(body.outvars) + saved)
        outs = bind(checkpoint_p, *leaves, body=body, save=policy, n_out=n_out, name=name)
        return pytree.unflatten(out_tree[0], list(outs)[:n_out])
