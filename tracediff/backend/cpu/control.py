"""Structured control flow in generated code: a `cond` becomes `if`/`elif`/`else`,
`while` and counted `loop` equations become `while`/`for` statements, and the
taping forward and backward loops of reverse mode become loops over a tape
(a `while` loop's tape grows by doubling). Regions are emitted inline, one
level deeper; their results are fresh C-contiguous values.

A mixin of `CpuWriter` (tracediff.backend.cpu.writer).
"""

from __future__ import annotations

import numpy as np

from ...core import IR, Var
from ...prims.scan import scan_parts
from ..literals import dtype_ctor


class ControlFlowEmitter:
    # --- structured control flow ------------------------------------------------------
    def block(
        self, region: IR, bind: list[str], layouts: list[str], owned=(), n_fresh: int | None = None
    ) -> tuple[list[str], list[str]]:
        """The lines of `region` (indented one level more than a statement) with its
        inputs bound to the expressions `bind`; returns (lines, its outputs as fresh
        C-contiguous values; only the first `n_fresh` when given: the rest are copied
        by their reader, a tape row)."""
        saved = self.lines
        self.lines = []
        for v, name, lay in zip(region.invars, bind, layouts):
            self.name.map[v] = name
            self.layout[v] = lay
        self.depth += 1
        try:
            self.walk(region.eqns, region.outvars, owned=owned)
        finally:
            self.depth -= 1
        outs, buffers = [], set()
        for j, o in enumerate(region.outvars):
            s = self.atom(o)
            base = self.walked_bases.get(o, o) if type(o) is Var else None
            if n_fresh is not None and j >= n_fresh:
                pass
            elif type(o) is Var and o.aval.ndim > 0:
                if base in region.invars or base in buffers:
                    # a pass-through or a view of an operand, or the buffer of another
                    # result (three carries reset to one zero array): each result is
                    # updated in place next iteration, so each gets its own (C) copy
                    s = f"{s}.copy()"
                elif self.layout.get(o, "C") != "C":
                    s = f"np.ascontiguousarray({s})"
                buffers.add(base)
            elif o.aval.ndim > 0:  # an array literal
                s = f"{s}.copy()"
            outs.append(s)
        lines = ["    " + ln for ln in self.lines]
        self.lines = saved
        return lines, outs

    def _operands(self, ops):
        return [self.atom(a) for a in ops], [self.layout.get(a, "C") if type(a) is Var else "C" for a in ops]

    def op_cond(self, e, index, *ops, branches):
        names, lays = self._operands(ops)
        outs = [self.name(v) for v in e.outvars]
        for v in e.outvars:
            self.layout[v] = "C"
        ix_ = self.atom(index)
        for k, br in enumerate(branches):
            lines, res = self.block(br, names, lays)
            if k == len(branches) - 1:
                head = "else:" if k else "if True:"
            elif index.aval.dtype == np.dtype(bool) and len(branches) == 2:
                head = f"if not {ix_}:"
            else:
                head = f"{'if' if k == 0 else 'elif'} {ix_} == {k}:"
            self.emit(head)
            self.lines.extend(lines)
            for o, r in zip(outs, res):
                self.emit(f"{o} = {r}", 2)
            if not res and not lines:
                self.emit("pass", 2)

    def _carry_init(self, e, ops, n_carry):
        names, lays = self._operands(ops)
        carry = []
        for k, (v, s) in enumerate(zip(e.outvars, names[:n_carry])):
            c = self.name(v)  # the loop's result variable carries the value
            self.layout[v] = "C"
            arr = v.aval.ndim > 0
            if arr and lays[k] != "C":
                s = f"np.ascontiguousarray({s})"
            self.emit(f"{c} = {s}.copy()" if arr else f"{c} = {s}")
            carry.append(c)
        return carry, names[n_carry:], lays[n_carry:]

    def op_while(self, e, *ops, cond, body, n_carry):
        carry, consts, clays = self._carry_init(e, ops, n_carry)
        bind, lays = carry + consts, ["C"] * len(carry) + clays
        self.emit("while True:")
        lines, (test,) = self.block(cond, bind, lays)
        self.lines.extend(lines)
        self.emit(f"if not {test}:", 2)
        self.emit("break", 3)
        lines, res = self.block(body, bind, lays, owned=body.invars[:n_carry])
        self.lines.extend(lines)
        if carry:
            self.emit(f"{', '.join(carry)} = {', '.join(res)}", 2)

    def op_loop(self, e, *ops, body, start, step, n, n_carry):
        carry, consts, clays = self._carry_init(e, ops, n_carry)
        i = self.name.fresh("it")
        self.emit(f"for {i}_ in range({n}):")
        self.emit(f"{i} = np.int64({start} + {i}_ * {step})", 2)
        lines, res = self.block(
            body, [i] + carry + consts, ["C"] * (1 + len(carry)) + clays, owned=body.invars[1 : 1 + n_carry]
        )
        self.lines.extend(lines)
        if carry:
            self.emit(f"{', '.join(carry)} = {', '.join(res)}", 2)

    def op_scan(
        self,
        e,
        *ops,
        body,
        cond,
        length,
        reverse,
        start,
        step,
        n_counter,
        n_xs,
        n_carry,
        primal=None,
        remat=False,
    ):
        count_op, xs, carry_ops, const_ops = scan_parts(ops, length, cond, n_xs, n_carry)
        xs = [self.atom(a) for a in xs]
        carry, consts, clays = self._carry_init(e, [*carry_ops, *const_ops], n_carry)
        count = self.out_named(e.outvars[n_carry])
        ys = [self.out_named(v) for v in e.outvars[n_carry + 1 :]]
        row_avals = [v.aval for v in body.outvars[n_carry:]]
        if cond is not None:  # a while loop's ys grow by doubling from n_rows
            n_rows = 16
            big = max((a.size * a.dtype.itemsize for a in row_avals), default=0)
            if big * 64 >= self.target.fresh_array_min_bytes:  # large rows: huge pages from the start
                n_rows = max(n_rows, -(-self.target.fresh_array_min_bytes // big))
            cap = str(n_rows)
        else:
            cap = str(length) if length is not None else self.atom(count_op)
            n_rows = length if length is not None else 0
        self.emit(f"{count} = np.int64({cap if cond is None else 0})")
        call = self.target.fresh_array_call
        pooled = []  # (tape, buffer passed in)
        if cond is not None and self.depth == 0 and self.target.reuse_tapes and n_rows > 16:
            pooled = [(t, f"w{len(self.workspaces) + j}") for j, t in enumerate(ys)]
            for (t, w), a in zip(pooled, row_avals):
                self.workspaces.append((w, tuple(a.shape), a.dtype, f"{t}_back"))
            have = " and ".join(f"{w}.shape[0] >= {n_rows}" for _, w in pooled)
            self.emit(
                f"if {have} and {' and '.join(f'{w}.shape[0] == {pooled[0][1]}.shape[0]' for _, w in pooled)}:"
            )
            for t, w in pooled:
                self.emit(f"{t} = {w}", 2)
            self.emit("else:")
        for t, a in zip(ys, row_avals):
            ind = 2 if pooled else 1
            self.emit(f"{t} = np.empty(({cap},) + {tuple(a.shape)}, {dtype_ctor(a.dtype)})", ind)
            if call and length is not None:
                if n_rows * a.size * a.dtype.itemsize >= self.target.fresh_array_min_bytes:
                    self.emit(call.format(t))
            elif call:  # a length known at run time
                self.emit(f"if {t}.nbytes >= {self.target.fresh_array_min_bytes}:", ind)
                self.emit(call.format(t), ind + 1)
        bind = carry + consts
        lays = ["C"] * len(carry) + clays
        k = self.name.fresh("k")
        if cond is None:
            self.emit(f"for {k} in range({count} - 1, -1, -1):" if reverse else f"for {k} in range({count}):")
        else:
            self.emit(f"{k} = {count}")
            self.emit("while True:")
            lines, (test,) = self.block(cond, bind, lays)
            self.lines.extend(lines)
            self.emit(f"if not {test}:", 2)
            self.emit("break", 3)
        rows = []
        for j, x in enumerate(xs):
            r = f"{x}_r{j}"
            self.emit(f"{r} = {x}[{k}]", 2)
            rows.append(r)
        lead = []
        if n_counter:
            i = self.name.fresh("it")
            self.emit(f"{i} = np.int64({start} + {k} * {step})", 2)
            lead = [i]
        c0 = n_counter + n_xs
        lines, res = self.block(
            body,
            lead + rows + bind,
            ["C"] * (len(lead) + len(rows)) + lays,
            owned=body.invars[c0 : c0 + n_carry],
            n_fresh=n_carry,
        )
        self.lines.extend(lines)
        if not (lines or rows or lead or ys or carry or cond is not None):
            self.emit("pass", 2)
        if cond is not None and ys:  # a while loop's ys grow by doubling
            self.emit(f"if {k} == {ys[0]}.shape[0]:", 2)
            for t in ys:
                self.emit(f"{t}_g = np.empty(({t}.shape[0] * 2,) + {t}.shape[1:], {t}.dtype)", 3)
                if call:  # a large tape gets huge pages: fewer page faults on its first write
                    self.emit(f"if {t}_g.nbytes >= {self.target.fresh_array_min_bytes}:", 3)
                    self.emit(call.format(f"{t}_g"), 4)
                self.emit(f"{t}_g[: {k}] = {t}", 3)
                self.emit(f"{t} = {t}_g", 3)
        for t, r in zip(ys, res[n_carry:]):
            self.emit(f"{t}[{k}] = {r}", 2)
        if cond is not None:
            self.emit(f"{k} += 1", 2)
        if carry:
            self.emit(f"{', '.join(carry)} = {', '.join(res[:n_carry])}", 2)
        if cond is not None:
            self.emit(f"{count} = {k}")
            for t, _ in pooled:
                self.emit(f"{t}_back = {t}")
            for t in ys:
                self.emit(f"{t} = {t}[:{k}]")

    def out_named(self, v) -> str:
        self.layout[v] = "C"
        return self.name(v)
