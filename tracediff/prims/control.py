"""Structured control flow: `cond`, `while` and counted `loop` equations, each
holding its regions (sub-programs) in its params.

- `cond[branches](index, *operands)`: runs `branches[index]` on the operands;
  every branch takes the operands and gives outputs of the same types. A
  Python `if` is a cond of two branches (index 0: the `else`).
- `while[cond, body, n_carry](*carry, *consts)`: `while cond(carry, consts):
  carry = body(carry, consts)`; the consts are loop-invariant.
- `loop[body, start, step, n, n_carry](*carry, *consts)`: `for i in range(start,
  start + n * step, step): carry = body(i, carry, consts)`, with a trip count
  known when traced.

The interpreter runs regions with NumPy; a backend writes them as real `if`,
`while` and `for` statements. Reverse mode of `cond` is a `cond` of the
branches' adjoints; a loop's is that of the equivalent `scan` (prims/scan.py).
"""

from __future__ import annotations

import numpy as np

from ..batching import (
    active,
    batch_eval,
    batch_region,
    batched_avals,
    carry_fixed_point,
    front_all,
    select_rows,
    to_front,
)
from ..core import IR, REGION, Aval, Primitive, Var
from .region_util import check_inputs, distinct, fresh, interpreter, literal_roots, own, roots, same

cond_p = Primitive("cond", REGION, nout=-1)
while_p = Primitive("while", REGION, nout=-1)
loop_p = Primitive("loop", REGION, nout=-1)


# --- cond -----------------------------------------------------------------------------


@cond_p.def_abstract
def _cond_abstract(index, *avals, branches):
    if index.shape != () or index.dtype.kind not in "biu":
        raise TypeError(f"cond: the branch index must be a 0-d integer or bool, got {index}")
    for k, br in enumerate(branches):
        check_inputs("cond", br, avals, f"branch {k}")
    outs = branches[0].out_avals
    for k, br in enumerate(branches[1:], 1):
        if len(br.outvars) != len(outs) or not all(same(a, b) for a, b in zip(br.out_avals, outs)):
            raise TypeError(
                f"cond: branch {k} gives ({', '.join(map(str, br.out_avals))}), branch 0 gives "
                f"({', '.join(map(str, outs))})"
            )
    return outs


@cond_p.def_impl
def _cond_impl(index, *args, branches):
    k = min(max(int(index), 0), len(branches) - 1)
    return fresh(interpreter(branches[k])(*args), args, branches[k])


@cond_p.def_vjp
def _cond_vjp(cts, ans, index, *ops, branches):
    from ..ad import vjp_ir
    from ..builder import bind
    from ..passes.dce import dce

    wrt = [v.aval.is_inexact for v in branches[0].invars]
    if not any(wrt):
        return [None] * (1 + len(ops))
    m = len(branches[0].outvars)
    adjoints = []
    for br in branches:
        vj = vjp_ir(br, wrt)  # (ops..., cts...) -> (outs..., grads...)
        adjoints.append(dce(IR(vj.invars, vj.eqns, vj.outvars[m:])))
    grads = bind(cond_p, index, *ops, *cts, branches=tuple(adjoints))
    it = iter(grads if isinstance(grads, list) else [grads])
    return [None] + [next(it) if w else None for w in wrt]


# --- while ----------------------------------------------------------------------------


@while_p.def_abstract
def _while_abstract(*avals, cond, body, n_carry):
    check_inputs("while", cond, avals, "the test")
    check_inputs("while", body, avals, "the body")
    (t,) = cond.out_avals
    if t.shape != () or t.dtype != np.dtype(bool):
        raise TypeError(f"while: the test must give a 0-d bool, got {t}")
    carry = list(avals[:n_carry])
    if len(body.outvars) != n_carry or not all(same(a, b) for a, b in zip(body.out_avals, carry)):
        raise TypeError(
            f"while: the body gives ({', '.join(map(str, body.out_avals))}) for a carry of "
            f"({', '.join(map(str, carry))})"
        )
    return [a.strong() if not a.weak else a for a in carry]


@while_p.def_impl
def _while_impl(*args, cond, body, n_carry):
    test, step = interpreter(cond), interpreter(body, tuple(range(n_carry)))
    carry, consts = own(args[:n_carry]), list(args[n_carry:])
    keep = literal_roots(body) | roots(consts)
    while bool(test(*carry, *consts)[0]):
        carry = distinct(step(*carry, *consts), keep)
    return fresh(carry, args, body)


@while_p.def_vjp
def _while_vjp(cts, ans, *args, cond, body, n_carry):
    from .checkpoint import LOOP_CHECKPOINT, checkpointed_vjp
    from .scan import scan_vjp

    k = LOOP_CHECKPOINT.get()
    if k:
        return checkpointed_vjp(
            [*cts, None], list(args), body=body, cond=cond, n=None, start=0, step=1, n_carry=n_carry, k=k
        )
    return scan_vjp(
        [*cts, None], list(args), body=body, cond=cond, length=None, reverse=False,
        start=0, step=1, n_counter=0, n_xs=0, n_carry=n_carry,
    )  # fmt: skip


# --- counted loop ---------------------------------------------------------------------


@loop_p.def_abstract
def _loop_abstract(*avals, body, start, step, n, n_carry):
    counter = Aval((), np.dtype(np.int64))
    check_inputs("loop", body, (counter, *avals), "the body")
    carry = list(avals[:n_carry])
    if len(body.outvars) != n_carry or not all(same(a, b) for a, b in zip(body.out_avals, carry)):
        raise TypeError(
            f"loop: the body gives ({', '.join(map(str, body.out_avals))}) for a carry of "
            f"({', '.join(map(str, carry))})"
        )
    return carry


@loop_p.def_impl
def _loop_impl(*args, body, start, step, n, n_carry):
    run = interpreter(body, tuple(range(1, 1 + n_carry)))
    carry, consts = own(args[:n_carry]), list(args[n_carry:])
    keep = literal_roots(body) | roots(consts)
    for k in range(n):
        carry = distinct(run(np.int64(start + k * step), *carry, *consts), keep)
    return fresh(carry, args, body)


@loop_p.def_vjp
def _loop_vjp(cts, ans, *args, body, start, step, n, n_carry):
    from .checkpoint import LOOP_CHECKPOINT, checkpointed_vjp
    from .scan import scan_vjp

    k = LOOP_CHECKPOINT.get()
    if k and n > k:
        return checkpointed_vjp(
            [*cts, None], list(args), body=body, cond=None, n=n, start=start, step=step, n_carry=n_carry, k=k
        )
    return scan_vjp(
        [*cts, None], list(args), body=body, cond=None, length=n, reverse=False,
        start=start, step=step, n_counter=1, n_xs=0, n_carry=n_carry,
    )  # fmt: skip


def regions(params: dict) -> list[IR]:
    """The sub-programs held in an equation's params."""
    out = []
    for v in params.values():
        if isinstance(v, IR):
            out.append(v)
        elif isinstance(v, tuple) and v and all(isinstance(x, IR) for x in v):
            out.extend(v)
    return out


# --- batching ---------------------------------------------------------------------------


@cond_p.def_batch
def _cond_batch(args, dims, size, *, branches):
    from ..builder import bind

    in_b = [d is not None for d in dims[1:]]
    ops = front_all(args[1:], dims[1:], size, [False] * len(in_b))
    if dims[0] is None:
        out_b = [False] * len(branches[0].outvars)
        for br in branches:
            out_b = [a or b for a, b in zip(out_b, batch_region(br, in_b, size)[1])]
        new = tuple(batch_region(br, in_b, size, force=out_b)[0] for br in branches)
        outs = bind(cond_p, args[0], *ops, branches=new)
        return outs, [0 if b else None for b in out_b]
    return _per_member_cond(args[0], dims[0], args[1:], dims[1:], size, branches), [0] * len(
        branches[0].outvars
    )


def _per_member_cond(index, d_index, ops, dims, size, branches):
    """A cond whose branch index differs across the batch: every branch runs on the
    whole batch, traced with the members that take it as the active ones (their index
    checks only), and each member takes its own branch's results (an index past
    either end takes the end's, as cond does).

    Its reverse mode must not be the selection's: that would feed the branch a
    member did not take a zero cotangent, and 0 times the infinite derivative of,
    say, `sqrt(x)` at a negative x is NaN. So it is a custom_vjp_call whose backward
    runs each branch's backward with the whole cotangent and then selects per member,
    like the cond's own reverse mode (a cond of the branches' adjoints)."""
    from .. import pytree
    from ..ad import vjp_ir
    from ..batching import ACTIVE
    from ..builder import bind, trace
    from .custom import custom_vjp_call_p
    from .elementwise import convert_p, eq_p, ge_p, le_p
    from .shape import broadcast_p

    n, m = len(ops), len(branches[0].outvars)
    ops = [to_front(x, d, size) for x, d in zip(ops, dims)]  # all batched: per-member cotangents
    index = bind(convert_p, to_front(index, d_index, size), dtype=np.dtype(np.int64))
    outer = ACTIVE.get()
    extra = [outer] if outer is not None else []
    dims0 = [0] * n

    def takes(index, k):
        kk = bind(broadcast_p, np.int64(k), shape=(size,))
        return bind(le_p if k == 0 else ge_p if k == len(branches) - 1 else eq_p, index, kk)

    def per_member(results, index):
        chosen = results[0]
        for k in range(1, len(branches)):
            take = bind(ge_p, index, bind(broadcast_p, np.int64(k), shape=(size,)))
            chosen = [select_rows(take, r, c) for r, c in zip(results[k], chosen)]
        return chosen

    def run(program_of, index, ops, mask, extra_of=lambda k: ()):
        results = []
        for k, br in enumerate(branches):
            extra_ins = list(extra_of(k))
            with active(mask, replace=True), active(takes(index, k)):
                outs, got = batch_eval(
                    program_of(br), list(ops) + extra_ins, dims0 + [0] * len(extra_ins), size
                )
            results.append([to_front(o, d, size) for o, d in zip(outs, got)])
        return results

    def body(index, *rest):
        ops, mask = rest[:n], (rest[n] if extra else None)
        return per_member(run(lambda br: br, index, ops, mask), index)

    def fwd(index, *rest):
        return body(index, *rest) + [index, *rest]

    avals = batched_avals([index, *ops, *extra])
    body_ir, c1 = trace(body, avals)
    fwd_ir, c2 = trace(fwd, avals)
    assert not c1 and not c2
    wrt = [v.aval.is_inexact for v in branches[0].invars]

    def bwd(res, g):
        index, *rest = res
        ops, mask = rest[:n], (rest[n] if extra else None)
        adjoints = {}

        def adjoint(br):  # (ops, cts) -> cotangents of the float operands
            if id(br) not in adjoints:
                back = vjp_ir(br, wrt)
                adjoints[id(br)] = IR(back.invars, back.eqns, back.outvars[m:])
            return adjoints[id(br)]

        def cts_of(k):  # the members that take branch k: the rest get zeros
            take = takes(index, k)
            return [select_rows(take, c, bind(broadcast_p, np.zeros((), c.dtype), shape=c.shape)) for c in g]

        # the cotangents are selected both before each branch's adjoint and after: after,
        # so that a member's NaN from a branch it did not take (0 times the infinite
        # derivative of sqrt at a negative x) is dropped; before, so that the transpose
        # of this map (forward mode is the transpose of the reverse: ad.jvp_ir) selects
        # after the branch's derivative too
        grads = per_member(run(adjoint, index, ops, mask, cts_of), index)
        it = iter(grads)
        return (None, *[next(it) if w else None for w in wrt], *([None] * len(extra)))

    flat = ("tuple", (pytree.LEAF,) * (1 + n + len(extra)))
    outs = bind(
        custom_vjp_call_p, index, *ops, *extra, body=body_ir, fwd=fwd_ir, bwd=bwd, nondiff=(),
        in_tree=flat, out_tree=("tuple", (pytree.LEAF,) * m), res_tree=flat, name="cond",
    )  # fmt: skip
    return outs if isinstance(outs, list) else [outs]


@while_p.def_batch
def _while_batch(args, dims, size, *, cond, body, n_carry):
    from ..builder import bind, trace
    from ..interpret import eval_ir
    from .elementwise import convert_p, gt_p
    from .reduce import reduce_sum_p

    b = [d is not None for d in dims]
    consts_b = b[n_carry:]
    carry_b = carry_fixed_point(body, [], b[:n_carry], consts_b, size)
    (test_b,) = batch_region(cond, carry_b + consts_b, size)[1]
    if not test_b:  # every member runs the same number of steps
        body_n = batch_region(body, carry_b + consts_b, size, force=carry_b)[0]
        cond_n = batch_region(cond, carry_b + consts_b, size)[0]
        ops = front_all(args, dims, size, carry_b + [False] * len(consts_b))
        outs = bind(while_p, *ops, cond=cond_n, body=body_n, n_carry=n_carry)
        return outs, [0 if c else None for c in carry_b]
    # members stop at different steps: run while any member's test holds; a member
    # whose test fails keeps its carry
    in_b = [True] * n_carry + consts_b
    test_m = batch_region(cond, in_b, size, force=True)[0]
    ops = front_all(args, dims, size, in_b)
    avals = batched_avals(ops)

    def any_test(*ops):
        (p,) = eval_ir(test_m, list(ops))
        n = bind(reduce_sum_p, bind(convert_p, p, dtype=np.dtype(np.int64)), axes=(0,))
        return [bind(gt_p, n, np.int64(0))]

    # a step: the body for the members whose test holds, the carry for the others; as
    # a per-member cond of (keep, body), so the body's index checks and reverse mode
    # concern only the members it runs for
    keep_ins = [Var(v.aval) for v in body.invars]
    keep = IR(keep_ins, [], keep_ins[:n_carry])

    def masked_step(*ops):
        (p,) = eval_ir(test_m, list(ops))
        with active(None, replace=True):
            dims = [0 if b else None for b in in_b]
            return _per_member_cond(p, 0, list(ops), dims, size, (keep, body))

    test_ir, c1 = trace(any_test, avals)
    step_ir, c2 = trace(masked_step, avals)
    assert not c1 and not c2
    outs = bind(while_p, *ops, cond=test_ir, body=step_ir, n_carry=n_carry)
    return outs, [0] * n_carry


@loop_p.def_batch
def _loop_batch(args, dims, size, *, body, start, step, n, n_carry):
    from ..builder import bind

    b = [d is not None for d in dims]
    carry_b = carry_fixed_point(body, [False], b[:n_carry], b[n_carry:], size)
    body_n = batch_region(body, [False] + carry_b + b[n_carry:], size, force=carry_b)[0]
    ops = front_all(args, dims, size, carry_b + [False] * (len(args) - n_carry))
    outs = bind(loop_p, *ops, body=body_n, start=start, step=step, n=n, n_carry=n_carry)
    outs = outs if isinstance(outs, list) else [outs]
    return outs, [0 if c else None for c in carry_b]
