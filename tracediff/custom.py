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
from collections.abc import Callable, Sequence

from . import pytree
from .numpy_api import aval_of
from .prims.custom import _kind, custom_vjp_call_p
from .pyconv import convert
from .tracing import Tracer, TracerError, at, bind, trace, user_src

# the custom functions whose rules are being traced now
_TRACING: contextvars.ContextVar[frozenset] = contextvars.ContextVar(
    "custom_vjp_tracing", default=frozenset()
)


class custom_vjp:
    """A function with its own reverse-mode rule: `f.defvjp(fwd, bwd)`.

    `fwd(*args)` returns `(f(*args), residuals)`; `bwd(*nondiff_args, residuals, g)`
    returns one cotangent per differentiable argument (None for zero). Arguments
    in `nondiff_argnums` are Python values (not traced), passed to `bwd` first.
    """

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()):
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None
        functools.update_wrapper(self, fun)

    def defvjp(self, fwd: Callable, bwd: Callable) -> None:
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args):
        name = getattr(self.fun, "__name__", "function")
        if self.fwd is None:
            raise TypeError(f"custom_vjp {name}: call {name}.defvjp(fwd, bwd) before calling it")
        nondiff = tuple(args[i] for i in self.nondiff_argnums)
        diff = tuple(a for i, a in enumerate(args) if i not in self.nondiff_argnums)
        leaves, in_tree = pytree.flatten(diff)
        if not any(isinstance(x, Tracer) for x in leaves):
            return self.fun(*args)  # nothing traced: the function as written
        if id(self) in _TRACING.get():
            return convert(self.fun)(*args)
        if any(isinstance(x, Tracer) for x in pytree.flatten(nondiff)[0]):
            raise TracerError(
                f"custom_vjp {name}: arguments {self.nondiff_argnums} are nondiff_argnums and must be "
                "Python values, not traced arrays" + at(user_src())
            )

        def full(diff_args):
            it = iter(diff_args)
            return [
                nondiff[self.nondiff_argnums.index(i)] if i in self.nondiff_argnums else next(it)
                for i in range(len(args))
            ]

        avals = [aval_of(x) for x in leaves]
        out_tree, res_tree = [], []

        def body_fn(*xs):
            out = convert(self.fun)(*full(pytree.unflatten(in_tree, list(xs))))
            flat, td = pytree.flatten(out)
            out_tree.append(td)
            return flat

        def fwd_fn(*xs):
            got = convert(self.fwd)(*full(pytree.unflatten(in_tree, list(xs))))
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                raise TypeError(f"custom_vjp {name}: fwd must return (output, residuals), got {_kind(got)}")
            flat, td = pytree.flatten(got[0])
            res, rtd = pytree.flatten(got[1])
            out_tree.append(td)
            res_tree.append(rtd)
            return flat + res

        token = _TRACING.set(_TRACING.get() | {id(self)})
        try:  # (f called inside its own fwd rule, as is usual, is plain f there)
            body, cap = trace(body_fn, avals)
            fwd, cap2 = trace(fwd_fn, avals)
        finally:
            _TRACING.reset(token)
        if cap or cap2:
            raise TracerError(
                f"custom_vjp {name}: the function or its fwd rule reads a traced value it was not passed "
                "(a closure over an argument of an outer transformation); pass it as an argument, so "
                "its cotangent comes from the bwd rule" + at(user_src())
            )
        if out_tree[0] != out_tree[1] or [v.aval for v in body.outvars] != [
            v.aval for v in fwd.outvars[: len(body.outvars)]
        ]:
            raise TypeError(
                f"custom_vjp {name}: fwd's output differs from the function's (structure, shape or dtype)"
            )
        outs = bind(
            custom_vjp_call_p,
            *leaves,
            body=body,
            fwd=fwd,
            bwd=self.bwd,
            nondiff=nondiff,
            in_tree=in_tree,
            out_tree=out_tree[0],
            res_tree=res_tree[0],
            name=name,
        )
        return pytree.unflatten(out_tree[0], list(outs))
