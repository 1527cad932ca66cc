"""Running a fused region's body block by block along its leading axis.

Op by op over whole arrays, NumPy writes every intermediate to fresh memory:
an array of 4 MB that outlives the next allocation costs ~2 ms of page faults
before its first byte is computed, ten times the arithmetic of an add (W4's
interpreted gradient: 480 ms, mostly faults, and a ~320 MB tape). Run on
blocks of the domain's leading axis, a body's ufunc results go to a pool of
block-sized arrays (Interpreter's `buffered` mode) reused from block to block
and hot in cache, and a gradient's tape is one block's: what the compiled loop
does, with NumPy doing each op.

Elementwise results are bit-identical to the whole-array run; a reduction over
the leading axis reduces its blocks' partial results (another association of
the same sum, as the compiled loops have). A body is run in blocks only when
every value in it is known to follow the leading axis or not to depend on it;
anything else (a slice, a transpose, a reshape that moves the leading axis, a
value read back after its reduction) runs whole.
"""

from __future__ import annotations

import numpy as np

from .core import ELEMENTWISE, IR, Aval, Eqn, Lit, Var
from .interpret import Interpreter
from .prims import reduce as rd
from .prims import shape as sh

BLOCK = 32768  # elements of the domain a block covers
_REDUCTIONS = (rd.reduce_sum_p, rd.reduce_max_p, rd.reduce_min_p, rd.reduce_prod_p)
ROWS, WHOLE, PARTIAL = "rows", "whole", "partial"  # follows the leading axis / not / reduced over it


def _domain(body: IR) -> tuple | None:
    """The shape every compute equation of the body runs over (None: not one)."""
    dom = None
    for e in body.eqns:
        if e.prim.kind == ELEMENTWISE:
            s = e.outvars[0].aval.shape
        elif e.prim in _REDUCTIONS:
            s = e.inputs[0].aval.shape
        else:
            continue
        if dom is None:
            dom = tuple(s)
        elif tuple(s) != dom:
            return None
    return dom


class Blocked:
    """Runs `body` on blocks of `step` rows of its domain's `n`."""

    def __init__(self, body: IR, n: int, step: int, kinds: dict, block_params: dict, consts: list):
        """`consts`: the values of literals that follow the leading axis, passed
        (in blocks) after the arguments to the last invars of `body`."""
        self.body, self.n, self.step, self.kinds, self.consts = body, n, step, kinds, consts
        self.in_rows = [i for i, v in enumerate(body.invars) if kinds[v] == ROWS]
        self.out_kinds = [WHOLE if type(v) is Lit else kinds[v] for v in body.outvars]
        self.combine = {}  # output position -> the reduction that made it (PARTIAL)
        made_by = {v: e.prim for e in body.eqns for v in e.outvars}
        for i, (v, k) in enumerate(zip(body.outvars, self.out_kinds)):
            if k == PARTIAL:
                self.combine[i] = made_by[v]
        self.block_params = block_params  # eqn index -> params with the block's length (a callable of it)
        self.runners: dict[int, Interpreter] = {}
        self.buffered = True  # results into a pool of block-sized arrays (Interpreter's `buffered`)

    def runner(self, rows: int) -> Interpreter:
        """The body at a block of `rows` rows: its values following the leading
        axis renamed with that length (the pool's arrays are sized from them)."""
        run = self.runners.get(rows)
        if run is None:
            ren: dict = {}

            def var(v):
                if type(v) is not Var:
                    return v
                if v not in ren:
                    a = v.aval
                    shape = (rows,) + a.shape[1:] if self.kinds[v] == ROWS else a.shape
                    ren[v] = Var(Aval(shape, a.dtype, a.weak))
                return ren[v]

            eqns = []
            for k, e in enumerate(self.body.eqns):
                params = self.block_params[k](rows) if k in self.block_params else e.params
                eqns.append(
                    Eqn(e.prim, tuple(map(var, e.inputs)), tuple(map(var, e.outvars)), params, e.src, e.phase)
                )
            ir = IR([var(v) for v in self.body.invars], eqns, [var(v) for v in self.body.outvars])
            run = self.runners[rows] = Interpreter(ir, buffered=self.buffered)
        return run

    def __call__(self, *args):
        try:
            return self._blocks(args)
        except TypeError:
            if not self.buffered:
                raise
        # a value of another dtype than its IR type met a pool array (casting="no"
        # raised rather than round): run unbuffered, as the whole body would
        self.buffered, self.runners = False, {}
        return self._blocks(args)

    def _blocks(self, args):
        n, step = self.n, self.step
        args = list(args) + self.consts
        whole = list(args)
        for i in self.in_rows:
            whole[i] = np.asarray(whole[i])
        outs: list | None = None
        pools: dict = {}
        for s in range(0, n, step):
            e = min(s + step, n)
            for i in self.in_rows:
                args[i] = whole[i][s:e]
            run = self.runner(e - s)
            pool = pools.get(e - s)
            if pool is None:
                pool = pools[e - s] = run.new_pool()
            got = run.run(args, pool)
            if outs is None:
                outs = []
                for o, k in zip(got, self.out_kinds):
                    if k == ROWS:
                        o = np.asarray(o)
                        outs.append(np.empty((n,) + o.shape[1:], o.dtype))
                    elif k == PARTIAL:
                        outs.append([])
                    else:
                        outs.append(o)
            for j, (o, k) in enumerate(zip(got, self.out_kinds)):
                if k == ROWS:
                    outs[j][s:e] = o
                elif k == PARTIAL:
                    outs[j].append(o)
        for j, prim in self.combine.items():
            outs[j] = prim.impl(np.stack(outs[j]), axes=(0,))
        return outs


def _with_rows(params: dict):
    """An index map's params for a block of `rows` rows (of its `shape`, and `spec`)."""

    def at(rows: int) -> dict:
        new = dict(params, shape=(rows,) + tuple(params["shape"][1:]))
        if "spec" in params:
            new["spec"] = ((0, rows, 1),) + tuple(params["spec"][1:])
        return new

    return at


def plan(body: IR, block: int | None = None) -> Blocked | None:
    """A blocked runner for `body` (blocks of about `block` elements, BLOCK by
    default), or None where it must (or may as well) run whole."""
    block = block or BLOCK
    dom = _domain(body)
    if not dom:
        return None
    rank, n = len(dom), dom[0]
    inner = int(np.prod(dom[1:], dtype=np.int64))
    step = max(1, block // max(inner, 1))
    if step >= n or n * inner < 2 * block:
        return None
    kinds: dict = {}
    # an array literal along the leading axis becomes an input, given in blocks
    consts: dict = {}
    for e in body.eqns:
        for a in e.inputs:
            if type(a) is Lit and a.aval.ndim >= rank and a not in consts:
                if a.aval.ndim > rank or a.aval.shape[0] not in (1, n):
                    return None
                if a.aval.shape[0] == n:
                    consts[a] = Var(a.aval)
    if consts:
        eqns = [
            Eqn(
                e.prim,
                tuple(consts.get(a, a) if type(a) is Lit else a for a in e.inputs),
                e.outvars,
                e.params,
                e.src,
                e.phase,
            )
            for e in body.eqns
        ]
        body = IR(list(body.invars) + list(consts.values()), eqns, body.outvars)

    for v in body.invars:
        s = v.aval.shape
        if len(s) > rank or (len(s) == rank and s[0] not in (1, n)):
            return None
        if len(s) == rank:
            kinds[v] = ROWS if s[0] == n else WHOLE
            continue
        # of lower rank: broadcast right-aligned it does not follow the leading axis,
        # reshaped to it (a row's sums brought back to the row) it does
        reshaped = [
            e.prim is sh.reshape_p and e.outvars[0].aval.shape[:1] == (n,)
            for e in body.eqns
            if any(a is v for a in e.inputs)
        ]
        if s and s[0] == n and reshaped and all(reshaped):
            kinds[v] = ROWS
        elif any(reshaped):
            return None
        else:
            kinds[v] = WHOLE
    block_params: dict = {}
    for k, e in enumerate(body.eqns):
        ins = [WHOLE if type(a) is Lit else kinds[a] for a in e.inputs]
        if PARTIAL in ins:
            return None  # a reduction's value read in its own loop
        out = e.outvars[0].aval.shape
        if len(out) > rank:
            return None
        follows = len(out) >= 1 and out[0] == n
        if e.prim.kind == ELEMENTWISE:
            if ROWS in ins:
                if not follows or any(k_ == ROWS and a.aval.ndim != len(out) for a, k_ in zip(e.inputs, ins)):
                    return None
                kind = ROWS
            else:
                kind = WHOLE
        elif e.prim in (sh.broadcast_p, sh.reshape_p, sh.unslice_p):
            x_rows = ins[0] == ROWS
            if e.prim is sh.broadcast_p:  # right-aligned: x's leading axis stays leading at equal rank
                ok = follows and (e.inputs[0].aval.ndim == len(out) if x_rows else len(out) == rank)
            elif e.prim is sh.reshape_p:
                ok = x_rows and follows
            else:  # unslice: zeros but at a slice, blocked if the slice spans the leading axis
                ok = x_rows and follows and slice(*e.params["spec"][0]).indices(n) == (0, n, 1)
            if ok:
                kind = ROWS
                block_params[k] = _with_rows(e.params)
            elif x_rows or (len(out) == rank and out[0] != 1):
                return None
            else:
                kind = WHOLE
        elif e.prim in _REDUCTIONS:
            if ins[0] != ROWS:
                kind = WHOLE
            elif 0 in e.params["axes"]:
                kind = PARTIAL
            else:
                kind = ROWS
        else:
            return None
        if kind == ROWS and not follows:
            return None
        for v in e.outvars:
            kinds[v] = kind
    return Blocked(body, n, step, kinds, block_params, [a.val for a in consts])
