"""Dense Jacobians and Hessians, each one batched program.

`jacrev` differentiates once in reverse mode and batches the backward sweep
over the rows of an identity (one cotangent per output element); `jacfwd`
batches forward mode over one tangent per input element; `hessian` is
`jacfwd(jacrev(f))`, forward over reverse. The basis is built in the program
(an iota comparison, fused), the forward sweep runs once, unbatched, and the
program is traced, optimized and cached per signature like `grad`'s: no Python
loop over rows or columns at any point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from . import pytree
from .ad import jvp_ir, vjp_ir
from .batching import Basis, NotBatchable, batch_eval, batch_ir, move_axis, to_front
from .core import IR
from .interpret import eval_ir
from .passes.dce import dce
from .prims.shape import reshape_p, slice_p
from .staging import Transformed, _name, _normalize_argnums, argnums_spec
from .tracing import at, bind, trace, user_src
from .transforms import _check_float_wrt, _split_aux, _wrt_mask


def _sizes(avals):
    offs, total = [], 0
    for a in avals:
        offs.append(total)
        total += a.size
    return offs, total


def _over_basis(program: IR, n: int, basis_avals, in_avals, finish) -> IR:
    """A program of the first `n` inputs of `program` that runs it batched over the
    rows of an identity for its other inputs (one block of rows per input), then
    `finish(outputs, their batch dims)`. The basis is symbolic (`batching.Basis`):
    a matrix product with it selects columns instead of multiplying by an identity.
    Where the batched program falls back to a loop, the basis is an explicit array."""
    offs, total = _sizes(basis_avals)
    dims = [None] * n + [0] * len(basis_avals)
    basis = [Basis(total, o, a.shape, a.dtype) for o, a in zip(offs, basis_avals)]

    def symbolic(*primals):
        return finish(*batch_eval(program, list(primals) + basis, dims, total))

    def explicit(*primals):
        batched = batch_ir(program, dims, total, [0] * len(program.outvars))
        outs = eval_ir(batched, list(primals) + [b.materialize() for b in basis])
        return finish(outs, [0] * len(outs))

    try:
        prog, captured = trace(symbolic, in_avals)
    except NotBatchable:
        prog, captured = trace(explicit, in_avals)
    assert not captured
    return prog


def jacrev_program(ir: IR, wrt: list[bool]) -> IR:
    """IR(inputs) -> J[j][i] for each output j and each `wrt` input i, shaped
    output shape + input shape, in the order (j, i): the backward sweep batched over
    one cotangent per output element (the forward sweep runs once, unbatched)."""
    outs = ir.out_avals
    wrt_avals = [v.aval for v, w in zip(ir.invars, wrt) if w]
    back = vjp_ir(ir, wrt)  # (primals, cts) -> (outs, grads)
    grads_only = dce(IR(back.invars, back.eqns, back.outvars[len(outs) :]))
    if len(outs) == 1 and outs[0].shape == ():  # one row: the gradient itself
        seed = [np.ones((), outs[0].dtype)]
        prog, captured = trace(lambda *primals: eval_ir(grads_only, list(primals) + seed), ir.in_avals)
        return prog
    offs, total = _sizes(outs)

    def rows(grads, got):
        res = []
        for o, a in zip(offs, outs):
            for g, d, w in zip(grads, got, wrt_avals):
                g = to_front(g, d, total)
                part = g if (o, a.size) == (0, total) else _rows(g, o, o + a.size)
                res.append(bind(reshape_p, part, shape=a.shape + w.shape))
        return res

    return _over_basis(grads_only, len(ir.invars), outs, ir.in_avals, rows)


def _rows(x, start: int, stop: int):
    """Rows start:stop of a batched result."""
    shape = x.aval.shape
    return bind(slice_p, x, spec=((start, stop, 1),) + tuple((0, d, 1) for d in shape[1:]))


def jacfwd_program(ir: IR, wrt: list[bool]) -> IR:
    """As `jacrev_program`, by forward mode: one tangent per input element, batched."""
    outs = ir.out_avals
    wrt_avals = [v.aval for v, w in zip(ir.invars, wrt) if w]
    fwd = jvp_ir(ir, wrt)  # (primals, tangents) -> (outs, output tangents)
    tangents_only = dce(IR(fwd.invars, fwd.eqns, fwd.outvars[len(outs) :]))
    offs, total = _sizes(wrt_avals)

    def columns(cols, got):
        res = []
        for t, d, a in zip(cols, got, outs):
            t = move_axis(to_front(t, d, total), 0, len(a.shape))  # column i of J: the batch last
            for o, w in zip(offs, wrt_avals):
                spec = tuple((0, k, 1) for k in a.shape) + ((o, o + w.size, 1),)
                part = t if (o, w.size) == (0, total) else bind(slice_p, t, spec=spec)
                res.append(bind(reshape_p, part, shape=a.shape + w.shape))
        return res

    return _over_basis(tangents_only, len(ir.invars), wrt_avals, ir.in_avals, columns)


class Jacobian(Transformed):
    """jacrev / jacfwd of `fun`: one program per signature."""

    def __init__(self, fun, argnums=0, has_aux=False, mode="rev", static_argnums=(), holomorphic=False):
        self.kind = "jacrev" if mode == "rev" else "jacfwd"
        self.argnums = argnums_spec(argnums, self.kind)
        self.has_aux, self.mode, self.holomorphic = has_aux, mode, bool(holomorphic)
        super().__init__(fun, (self.argnums, has_aux, mode, self.holomorphic), static_argnums=static_argnums)

    def _check_complex(self, ir, mask, n_main) -> None:
        """A dense complex Jacobian is the complex derivative only where f is
        holomorphic: the user says so (as in JAX)."""
        ins = [v.aval for v, m in zip(ir.invars, mask) if m]
        outs = [v.aval for v in ir.outvars[:n_main]]
        has_complex = any(a.dtype.kind == "c" for a in ins + outs)
        if has_complex and not self.holomorphic:
            raise TypeError(
                f"{self.kind}: {_name(self.fun)} has complex inputs or outputs; for a holomorphic "
                f"function pass holomorphic=True (td.grad and td.vjp take any complex function)"
                + at(user_src())
            )
        if self.holomorphic and not all(a.dtype.kind == "c" for a in ins + outs):
            raise TypeError(
                f"{self.kind}(holomorphic=True): inputs and outputs must be complex, got "
                + ", ".join(map(str, ins + outs))
                + at(user_src())
            )

    def _traced_argnums(self, n):
        nums = (self.argnums,) if isinstance(self.argnums, int) else self.argnums
        return {a % n for a in nums if -n <= a < n}

    def transform(self, ir, out_tree, info, args):
        nums = _normalize_argnums(self.argnums, len(args), self.fun, self.kind)
        mask = _wrt_mask(info, nums, self.fun, self.kind)
        _check_float_wrt(ir, mask, info, self.fun, self.kind)
        main_tree, aux_tree = _split_aux(out_tree, self.has_aux, self.kind, self.fun)
        n_main = pytree.num_leaves(main_tree)
        self._check_complex(ir, mask, n_main)
        n_extra = len(ir.invars) - len(mask)
        wrt = mask + [False] * n_extra
        main = dce(IR(ir.invars, ir.eqns, ir.outvars[:n_main]))
        make = jacrev_program if self.mode == "rev" else jacfwd_program
        jac = make(main, wrt)
        # J[j][i] in argnums order: the wrt leaves come in input order, argnums may not
        leaf_arg = [a for a, m in zip(info["leaf_arg"], mask) if m]
        n_wrt = len(leaf_arg)
        order = [k for i in nums for k, a in enumerate(leaf_arg) if a == i]
        outs = [jac.outvars[j * n_wrt + k] for j in range(n_main) for k in order]
        arg_trees = [info["arg_trees"][i] for i in nums]
        sub = arg_trees[0] if isinstance(self.argnums, int) else ("tuple", tuple(arg_trees))
        tree = pytree.graft(main_tree, [sub] * n_main)
        if self.has_aux:
            aux = dce(IR(ir.invars, ir.eqns, ir.outvars[n_main:]))

            def both(*xs):
                return eval_ir(jac, list(xs)) + eval_ir(aux, list(xs))

            prog, _ = trace(both, ir.in_avals)
            outs = [prog.outvars[j * n_wrt + k] for j in range(n_main) for k in order]
            outs += prog.outvars[n_main * n_wrt :]
            return dce(IR(prog.invars, prog.eqns, outs)), ("tuple", (tree, aux_tree))
        return dce(IR(jac.invars, jac.eqns, outs)), tree


def jacrev(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    static_argnums: int | Sequence[int] = (),
    holomorphic: bool = False,
):
    """Jacobian by reverse mode: the backward sweep batched over the output elements."""
    return Jacobian(fun, argnums, has_aux, "rev", static_argnums, holomorphic)


jacobian = jacrev


def jacfwd(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    static_argnums: int | Sequence[int] = (),
    holomorphic: bool = False,
):
    """Jacobian by forward mode: forward mode batched over the input elements."""
    return Jacobian(fun, argnums, has_aux, "fwd", static_argnums, holomorphic)


def hessian(
    fun: Callable,
    argnums: int | Sequence[int] = 0,
    static_argnums: int | Sequence[int] = (),
    holomorphic: bool = False,
):
    """Dense Hessian: forward over reverse, one batched program."""
    inner = Jacobian(fun, argnums, False, "rev", static_argnums, holomorphic)
    return Jacobian(inner, argnums, False, "fwd", static_argnums, holomorphic)
