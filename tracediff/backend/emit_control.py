"""Structured control flow in generated code: a `cond` becomes `if`/`elif`/`else`,
`while` and counted `loop` equations become `while`/`for` statements, and the
taping forward and backward loops of reverse mode become loops over a tape
(a `while` loop's tape grows by doubling). Regions are emitted inline, one
level deeper; their results are fresh C-contiguous values.

A mixin of `ProgramEmitter` (tracediff.backend.emit).
"""

from __future__ import annotations

import numpy as np

from ..core import IR, Var
from .literals import dtype_ctor, literal


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
        self.walk(region.eqns, region.outvars, owned=owned)
        outs = []
        for j, o in enumerate(region.outvars):
            s = self.atom(o)
            if n_fresh is not None and j >= n_fresh:
                pass
            elif type(o) is Var and o.aval.ndim > 0:
                if o in region.invars:  # a pass-through: the result must not share the operand
                    s = f"{s}.copy()"
                elif self.layout.get(o, "C") != "C":
                    s = f"np.ascontiguousarray({s})"
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

    def op_loop_fwd(self, e, *ops, cond, body, mode, start, step, n, n_carry, n_counter, primal=None):
        carry, consts, clays = self._carry_init(e, ops, n_carry)
        count = self.out_named(e.outvars[n_carry])
        res_avals = [v.aval for v in body.outvars[n_carry:]]
        tapes = [self.out_named(v) for v in e.outvars[n_carry + 1 :]]
        cap = str(n) if mode == "count" else "16"
        for t, a in zip(tapes, res_avals):
            self.emit(f"{t} = np.empty(({cap},) + {tuple(a.shape)}, {dtype_ctor(a.dtype)})")
            call = self.target.fresh_array_call
            if (
                call
                and (n if mode == "count" else 16) * a.size * a.dtype.itemsize
                >= self.target.fresh_array_min_bytes
            ):
                self.emit(call.format(t))
        self.emit(f"{count} = np.int64(0)")
        bind = carry + consts
        lays = ["C"] * len(carry) + clays
        if mode == "count":
            i = self.name.fresh("it")
            self.emit(f"for {i}_ in range({n}):")
            self.emit(f"{i} = np.int64({start} + {i}_ * {step})", 2)
            if n_counter:
                bind, lays = [i] + bind, ["C"] + lays
        else:
            self.emit("while True:")
            lines, (test,) = self.block(cond, bind, lays)
            self.lines.extend(lines)
            self.emit(f"if not {test}:", 2)
            self.emit("break", 3)
        lines, res = self.block(
            body, bind, lays, owned=body.invars[n_counter : n_counter + n_carry], n_fresh=n_carry
        )
        self.lines.extend(lines)
        if mode != "count" and tapes:  # a while loop's tapes grow by doubling
            self.emit(f"if {count} == {tapes[0]}.shape[0]:", 2)
            for t in tapes:
                self.emit(f"{t}_g = np.empty(({t}.shape[0] * 2,) + {t}.shape[1:], {t}.dtype)", 3)
                self.emit(f"{t}_g[: {count}] = {t}", 3)
                self.emit(f"{t} = {t}_g", 3)
        for t, r in zip(tapes, res[n_carry:]):
            self.emit(f"{t}[{count}] = {r}", 2)
        self.emit(f"{count} += 1", 2)
        if carry:
            self.emit(f"{', '.join(carry)} = {', '.join(res[:n_carry])}", 2)

    def out_named(self, v) -> str:
        self.layout[v] = "C"
        return self.name(v)

    def op_loop_bwd(self, e, count, *ops, body, n_res, n_consts, n_ct, ct_of, acc_of, n):
        tapes = [self.atom(a) for a in ops[:n_res]]
        consts, clays = self._operands(ops[n_res : n_res + n_consts])
        cts = []
        for v, a in zip(e.outvars[:n_ct], ops[n_res + n_consts :]):
            c = self.out_named(v)
            s = self.atom(a)
            self.emit(f"{c} = np.ascontiguousarray({s}).copy()" if v.aval.ndim else f"{c} = {s}")
            cts.append(c)
        accs = []
        for v in e.outvars[n_ct:]:
            c = self.out_named(v)
            z = literal(0, v.aval.dtype)
            self.emit(
                f"{c} = np.zeros({tuple(v.aval.shape)}, {dtype_ctor(v.aval.dtype)})"
                if v.aval.ndim
                else f"{c} = {z}"
            )
            accs.append(c)
        k = self.name.fresh("k")
        self.emit(f"for {k} in range({self.atom(count)} - 1, -1, -1):")
        rows = []
        for j, t in enumerate(tapes):
            r = f"{t}_r{j}"
            self.emit(f"{r} = {t}[{k}]", 2)
            rows.append(r)
        lines, res = self.block(
            body,
            rows + consts + cts + accs,
            ["C"] * len(rows) + clays + ["C"] * (len(cts) + len(accs)),
            owned=body.invars[n_res + n_consts :],
        )
        self.lines.extend(lines)
        new = {i: res[j] for j, i in enumerate(ct_of)}
        targets = [cts[i] for i in sorted(new)] + accs
        values = [new[i] for i in sorted(new)] + res[len(ct_of) :]
        if targets:
            self.emit(f"{', '.join(targets)} = {', '.join(values)}", 2)
