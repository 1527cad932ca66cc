"""Reverse mode through a loop with a bounded tape: checkpoints every k iterations.

`td.grad(..., loop_checkpoint=k)` sets `LOOP_CHECKPOINT` while it differentiates;
the VJP of a `while` or counted `loop` of more than k iterations is then that of
the same loop written as an outer scan over blocks of k iterations, each block an
inner scan. The outer scan is `remat`: its tape holds the carry at each block's
start, and going backwards it reruns one block, with a tape of its own. Memory
O(n/k + k) instead of O(n), for one more run of the loop.
"""

from __future__ import annotations

import contextvars

import numpy as np

from ..core import IR, Aval
from .scan import INT, loop_key, scan_p, scan_vjp

# reverse mode through a `for`/`while` loop of more than k iterations keeps the carried
# values every k iterations, not a tape row per iteration (set by td.grad(...,
# loop_checkpoint=k) while it differentiates)
LOOP_CHECKPOINT: contextvars.ContextVar[int | None] = contextvars.ContextVar("loop_checkpoint", default=None)


def _traced_region(fn, avals) -> IR:
    from ..builder import trace
    from ..passes.dce import dce

    prog, captured = trace(fn, avals)
    assert not captured
    return dce(prog)


def checkpointed_vjp(cts, ops, *, body, cond, n, start, step, n_carry, k):
    """The VJP of a `loop` (cond None, n iterations) or `while` whose tape keeps the
    carried values every k iterations: the loop as an outer scan over blocks of k
    iterations (each block an inner scan) whose VJP tapes the block's inputs only
    and, going backwards, reruns one block with a tape of its own."""
    from ..builder import bind
    from ..interpret import eval_ir

    carry_avals = [v.aval for v in body.outvars[:n_carry]]
    n_lead = 1 if cond is None else 0
    const_avals = [v.aval for v in body.invars[n_lead + n_carry :]]
    nk = len(const_avals)
    idx = Aval((), INT)
    if cond is None:

        def inner(kk, *a):  # (kk, carry, consts, base) -> carry
            base = a[-1]
            return eval_ir(body, [base + kk * step, *a[:-1]])

        inner_body = _traced_region(inner, [idx, *carry_avals, *const_avals, idx])

        def outer(j, *a):  # one block: iterations j*k .. min(n, (j+1)*k) - 1
            count = np.minimum(np.int64(k), np.int64(n) - j * k)
            outs = bind(
                scan_p, count, *a, start + j * (k * step), body=inner_body, cond=None, length=None,
                reverse=False, start=0, step=1, n_counter=1, n_xs=0, n_carry=n_carry,
            )  # fmt: skip
            return outs[:n_carry]

        outer_body = _traced_region(outer, [idx, *carry_avals, *const_avals])
        params = dict(cond=None, length=-(-n // k), n_counter=1)
    else:

        def inner_test(kk, *a):
            return [np.logical_and(kk < k, eval_ir(cond, list(a))[0])]

        def inner_step(kk, *a):
            return [kk + 1, *eval_ir(body, list(a))]

        test = _traced_region(inner_test, [idx, *carry_avals, *const_avals])
        step_ = _traced_region(inner_step, [idx, *carry_avals, *const_avals])

        def outer(*a):  # one block: at most k iterations
            outs = bind(
                scan_p, np.int64(0), *a, body=step_, cond=test, length=None, reverse=False,
                start=0, step=1, n_counter=0, n_xs=0, n_carry=n_carry + 1,
            )  # fmt: skip
            return outs[1 : 1 + n_carry]

        outer_body = _traced_region(outer, [*carry_avals, *const_avals])
        params = dict(cond=cond, length=None, n_counter=0)
    assert len(outer_body.invars) == params["n_counter"] + n_carry + nk
    return scan_vjp(
        list(cts), list(ops), body=outer_body, reverse=False, start=0, step=1, n_xs=0,
        n_carry=n_carry, remat=True, primal=loop_key(body), **params,
    )  # fmt: skip
