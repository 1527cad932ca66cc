"""`custom_vjp_call`: a function with the user's reverse-mode rule (`td.custom_vjp`).

Params: `body` (the function's program), `fwd` (the user's forward rule: the
outputs, then the residuals), `bwd` (the user's backward rule, a Python
function called on tracers), `nondiff` (Python values passed to `bwd` first),
and the pytree structures of the arguments, outputs and residuals. Its VJP runs
`fwd` and calls `bwd`, so the rule is ordinary IR and differentiates again; the
optimizer inlines `body` (passes/inline.py).
"""

from __future__ import annotations

import numpy as np

from ..core import OTHER, REGION, Primitive

custom_vjp_call_p = Primitive("custom_vjp_call", REGION, nout=-1)


@custom_vjp_call_p.def_abstract
def _abstract(*avals, body, fwd, bwd, nondiff, in_tree, out_tree, res_tree, name):
    return body.out_avals


@custom_vjp_call_p.def_impl
def _impl(*args, body, fwd, bwd, nondiff, in_tree, out_tree, res_tree, name):
    from ..interpret import eval_ir

    return eval_ir(body, list(args))


@custom_vjp_call_p.def_vjp
def _vjp(cts, ans, *ins, body, fwd, bwd, nondiff, in_tree, out_tree, res_tree, name):
    from .. import pytree
    from ..ad import zeros
    from ..interpret import eval_ir
    from ..numpy_api import aval_of
    from ..provenance import at, user_src
    from ..pyconv import convert
    from ..tracer import Tracer

    n_out = len(body.outvars)
    flat = eval_ir(fwd, list(ins))  # the user's forward, again: its residuals
    res = pytree.unflatten(res_tree, flat[n_out:])
    g = pytree.unflatten(out_tree, [zeros(o.aval) if c is None else c for c, o in zip(cts, body.outvars)])
    got = convert(bwd)(*nondiff, res, g)
    args = pytree.unflatten(in_tree, list(ins))
    if not isinstance(got, (tuple, list)) or len(got) != len(args):
        raise TypeError(
            f"custom_vjp {name}: the bwd rule must return a tuple of {len(args)} cotangent(s), one per "
            f"differentiable argument, got {_kind(got)}" + at(user_src())
        )
    out = []
    for k, (c, a) in enumerate(zip(got, args)):
        leaves = pytree.flatten(a)[0]
        if c is None:
            out += [None] * len(leaves)
            continue
        c_leaves, c_tree = pytree.flatten(c)
        if c_tree != pytree.flatten(a)[1]:
            raise TypeError(
                f"custom_vjp {name}: cotangent {k} of the bwd rule has another structure than its argument"
            )
        for cl, al in zip(c_leaves, leaves):
            want, have = aval_of(al), aval_of(cl)
            if have.shape != want.shape:
                raise TypeError(
                    f"custom_vjp {name}: cotangent {k} of the bwd rule has shape {have.shape}, its argument "
                    f"{want.shape}" + at(user_src())
                )
            out.append(np.asarray(cl, want.dtype) if not isinstance(cl, Tracer) else cl.astype(want.dtype))
    return out


def _kind(x) -> str:
    return f"a {type(x).__name__}" + (f" of {len(x)}" if isinstance(x, (tuple, list)) else "")


# --- custom_jvp ---------------------------------------------------------------------------
# Params: `body`, `jvp` (the user's rule: primals, tangents -> outputs, output
# tangents; linear in the tangents), `nondiff`, the argument and output structures.
# Reverse mode transposes the rule (its VJP with respect to the tangents).

custom_jvp_call_p = Primitive("custom_jvp_call", REGION, nout=-1)


@custom_jvp_call_p.def_abstract
def _jvp_abstract(*avals, body, jvp, nondiff, in_tree, out_tree, name):
    return body.out_avals


@custom_jvp_call_p.def_impl
def _jvp_impl(*args, body, jvp, nondiff, in_tree, out_tree, name):
    from ..interpret import eval_ir

    return eval_ir(body, list(args))


@custom_jvp_call_p.def_vjp
def _jvp_vjp(cts, ans, *ins, body, jvp, nondiff, in_tree, out_tree, name):
    from ..ad import zeros
    from ..interpret import eval_ir

    n, m = len(ins), len(body.outvars)
    back = _transposed(jvp, n, m)
    tangents = [zeros(v.aval) for v in jvp.invars[n:]]
    cts = [zeros(o.aval) if c is None else c for c, o in zip(cts, body.outvars)]
    grads = iter(eval_ir(back, list(ins) + tangents + cts)[m:])
    return [next(grads) if v.aval.is_inexact else None for v in jvp.invars[n:]]


def _transposed(jvp, n: int, m: int):
    """The rule's VJP with respect to the tangents: (primals, tangents, cts) ->
    (output tangents, cotangents of the float arguments); made once per rule."""
    back = jvp.__dict__.get("_transposed")
    if back is None:
        from ..ad import vjp_ir
        from ..core import IR

        lin = IR(jvp.invars, jvp.eqns, jvp.outvars[m:])
        wrt = [False] * n + [v.aval.is_inexact for v in jvp.invars[n:]]
        back = jvp.__dict__["_transposed"] = vjp_ir(lin, wrt)
    return back


# --- checkpoint (remat) ---------------------------------------------------------------------
# `checkpoint[body, save, n_out](*args)`: the body's outputs (the first n_out), then the
# values the policy saves for the backward sweep (matrix products, for "save_matmuls").
# Its VJP recomputes the body in the backward sweep, from its inputs passed through a
# `barrier` after the cotangents: nothing schedules the recomputation into the forward
# sweep, and common-subexpression elimination cannot merge it back into the forward
# values (either would keep them alive again).

checkpoint_p = Primitive("checkpoint", REGION, nout=-1)
checkpoint_p.symbolic_zeros = True  # (no cotangent for the saved values: nothing to add)

# barrier(x, *after) is x, read only once every `after` value exists: the recomputation
# starts in the backward sweep (after the cotangents it depends on), and CSE sees new values
barrier_p = Primitive("barrier", OTHER)
barrier_p.may_alias = True
barrier_p.def_abstract(lambda x, *after: x)
barrier_p.def_impl(lambda x, *after: x)
barrier_p.def_vjp(lambda ct, ans, x, *after: [ct] + [None] * len(after))


@checkpoint_p.def_abstract
def _ckpt_abstract(*avals, body, save, n_out, name):
    return body.out_avals


@checkpoint_p.def_impl
def _ckpt_impl(*args, body, save, n_out, name):
    from ..interpret import eval_ir

    return eval_ir(body, list(args))


@checkpoint_p.def_vjp
def _ckpt_vjp(cts, ans, *ins, body, save, n_out, name):
    from ..ad import backward_pass
    from ..builder import bind
    from ..tracer import Tracer

    after = [c for c in cts if isinstance(c, Tracer)]
    xs = [bind(barrier_p, x, *after) if isinstance(x, Tracer) else x for x in ins]
    # what the policy saved is read, not recomputed; a cotangent of a saved value (a
    # derivative of the derivative) flows back through the equation that made it
    known = dict(zip(body.outvars[n_out:], ans[n_out:]))
    wrt = [v.aval.is_inexact for v in body.invars]
    _, grads = backward_pass(body, xs, cts, wrt, replay="bwd", known=known)
    it = iter(grads)
    return [next(it) if w else None for w in wrt]


# --- batching: the regions are batched; the user's bwd rule, a Python function on one
# member's values, is traced once per member shape and its program batched ---------------


@custom_vjp_call_p.def_batch
def _vjp_call_batch(args, dims, size, *, body, fwd, bwd, nondiff, in_tree, out_tree, res_tree, name):
    from ..batching import batch_region, front_all
    from ..builder import bind

    in_b = [d is not None for d in dims]
    ops = front_all(args, dims, size, [False] * len(args))
    body_b = batch_region(body, in_b, size, force=True)[0]
    fwd_b = batch_region(fwd, in_b, size, force=True)[0]
    bwd_b = BatchedBwd(bwd, nondiff, fwd, len(body.outvars), in_tree, out_tree, res_tree, in_b, size)
    outs = bind(
        custom_vjp_call_p, *ops, body=body_b, fwd=fwd_b, bwd=bwd_b, nondiff=nondiff,
        in_tree=in_tree, out_tree=out_tree, res_tree=res_tree, name=name,
    )  # fmt: skip
    return outs, [0] * len(body.outvars)


class BatchedBwd:
    """The user's bwd rule on a batch: its program for one member, batched; the
    cotangent of an argument the same for every member is summed over the batch."""

    def __init__(self, bwd, nondiff, fwd, n_out, in_tree, out_tree, res_tree, in_b, size):
        self.bwd, self.nondiff, self.in_tree, self.out_tree, self.res_tree = (
            bwd,
            nondiff,
            in_tree,
            out_tree,
            res_tree,
        )
        self.avals = [v.aval for v in fwd.outvars[n_out:]] + [v.aval for v in fwd.outvars[:n_out]]
        self.n_res, self.in_b, self.size = len(fwd.outvars) - n_out, in_b, size
        self.program = None
        self.batched = None

    def _trace(self):
        from .. import pytree
        from ..builder import trace
        from ..pyconv import convert

        present = []

        def member(*flat):
            res = pytree.unflatten(self.res_tree, list(flat[: self.n_res]))
            g = pytree.unflatten(self.out_tree, list(flat[self.n_res :]))
            got = convert(self.bwd)(*self.nondiff, res, g)
            if not isinstance(got, (tuple, list)):
                return [got]  # the caller names the mistake
            present.extend(c is not None for c in got)
            out = []
            for c in got:
                out.extend(pytree.flatten(c)[0] if c is not None else [])
            return out

        ir, captured = trace(member, self.avals)
        self.program = (ir, list(captured), present)

    def __call__(self, *args):
        from .. import pytree
        from ..batching import batch_ir, to_front
        from ..interpret import eval_ir

        if self.program is None:
            self._trace()
        ir, captured, present = self.program
        *_, res, g = args
        flat = pytree.flatten(res)[0] + pytree.flatten(g)[0]
        if self.batched is None:  # the member program batched, once
            dims = [0] * len(flat) + [None] * len(captured)
            self.batched = batch_ir(ir, dims, self.size, [0] * len(ir.outvars))
        batched = self.batched
        leaves = iter(eval_ir(batched, flat + captured))
        arg_trees = self.in_tree[1] if isinstance(self.in_tree, tuple) and self.in_tree[0] == "tuple" else ()
        ins_b = iter(self.in_b)
        out = []
        for k, p in enumerate(present):
            t = arg_trees[k] if k < len(arg_trees) else pytree.LEAF
            n = pytree.num_leaves(t)
            flags = [next(ins_b) for _ in range(n)]
            if not p:
                out.append(None)
                continue
            cs = [next(leaves) for _ in range(n)]
            cs = [c if b else np.sum(to_front(c, 0, self.size), axis=0) for c, b in zip(cs, flags)]
            out.append(pytree.unflatten(t, cs))
        return tuple(out)


@custom_jvp_call_p.def_batch
def _jvp_call_batch(args, dims, size, *, body, jvp, nondiff, in_tree, out_tree, name):
    from ..batching import batch_region, front_all
    from ..builder import bind

    in_b = [d is not None for d in dims]
    ops = front_all(args, dims, size, [False] * len(args))
    body_b = batch_region(body, in_b, size, force=True)[0]
    m = len(body.outvars)
    jvp_b = batch_region(jvp, in_b + in_b, size, force=[True] * m + [False] * m)[0]
    outs = bind(
        custom_jvp_call_p, *ops, body=body_b, jvp=jvp_b, nondiff=nondiff,
        in_tree=in_tree, out_tree=out_tree, name=name,
    )  # fmt: skip
    return outs, [0] * m


@checkpoint_p.def_batch
def _ckpt_batch(args, dims, size, *, body, save, n_out, name):
    from ..batching import batch_region, front_all
    from ..builder import bind

    in_b = [d is not None for d in dims]
    ops = front_all(args, dims, size, [False] * len(args))
    body_b = batch_region(body, in_b, size, force=True)[0]
    return bind(checkpoint_p, *ops, body=body_b, save=save, n_out=n_out, name=name), [0] * len(body.outvars)


@barrier_p.def_batch
def _barrier_batch(args, dims, size):
    from ..builder import bind

    return [bind(barrier_p, args[0], *args[1:])], [dims[0]]
