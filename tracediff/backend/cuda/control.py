"""Structured control flow on the host around kernel launches: a `cond` is an
`if` on a scalar read back from the device, `while` and counted loops are host
loops, a scan writes each iteration's rows into device tapes (a `while` loop's
tape doubles as it grows). A region's 0-d results are device (1,)-arrays, so
every branch and iteration hands over values of one kind.

A mixin of `CudaWriter` (tracediff.backend.cuda.writer).
"""

from __future__ import annotations

from ...core import IR, Lit, Var
from ...prims.scan import scan_parts
from ..literals import dtype_ctor


class ControlFlowWriter:
    def block(self, region: IR, bind: list[str], host: list[bool], owned=(), n_fresh=None):
        """The host lines of `region` with its inputs bound to the names `bind`
        (`host`: which are host scalars); returns (lines, its outputs: fresh device
        values; the first `n_fresh` only, when given: the rest are copied by their reader)."""
        saved, saved_indent = self.lines, self.indent
        self.lines, self.indent = [], self.indent + 1
        for v, name, h in zip(region.invars, bind, host):
            self.name.map[v] = name
            (self.on_host.add if h else self.on_host.discard)(v)
        try:
            self.walk(region.eqns, region.outvars, owned=owned)
            outs, buffers = [], set()
            for j, o in enumerate(region.outvars):
                base = self.walked_bases.get(o, o) if type(o) is Var else None
                if n_fresh is not None and j >= n_fresh:
                    outs.append(self.atom(o))
                elif self.is_host(o):
                    outs.append(self.device(o))
                elif type(o) is Lit or base in region.invars or base in buffers:
                    # must not share an operand or another result's buffer (CPU's `block`)
                    outs.append(f"rt.copy(pool, {self.atom(o)})")
                else:
                    outs.append(self.atom(o))
                buffers.add(base)
            return self.lines, outs
        finally:
            self.lines, self.indent = saved, saved_indent

    def _bind(self, ops):
        return [self.atom(a) for a in ops], [self.is_host(a) for a in ops]

    def _results(self, vs) -> list[str]:
        out = []
        for v in vs:
            self.on_host.discard(v)
            self.pooled.discard(v)
            out.append(self.name(v))
        return out

    def op_cond(self, e, index, *ops, branches):
        names, host = self._bind(ops)
        outs = self._results(e.outvars)
        ix = self.name.fresh("c")
        self.emit(f"{ix} = {self.host_value(index)}")
        for k, br in enumerate(branches):
            if k == len(branches) - 1:
                head = "else:" if k else "if True:"
            else:
                head = f"{'if' if k == 0 else 'elif'} {ix} == {k}:"
            lines, res = self.block(br, names, host)
            self.emit(head)
            self.lines.extend(lines)
            for o, r in zip(outs, res):
                self.emit(f"{o} = {r}", 1)
            if not res and not lines:
                self.emit("pass", 1)

    def _carry_init(self, e, ops, n_carry):
        names, host = self._bind(ops)
        carry = self._results(e.outvars[:n_carry])
        for c, a in zip(carry, ops[:n_carry]):
            self.emit(f"{c} = {self.device(a) if self.is_host(a) else f'rt.copy(pool, {self.atom(a)})'}")
        return carry, names[n_carry:], host[n_carry:]

    def op_while(self, e, *ops, cond, body, n_carry):
        carry, consts, chost = self._carry_init(e, ops, n_carry)
        bind, host = carry + consts, [False] * len(carry) + chost
        self.emit("while True:")
        lines, (test,) = self.block(cond, bind, host)
        self.lines.extend(lines)
        self.emit(f"if not rt.host({test}):", 1)
        self.emit("break", 2)
        lines, res = self.block(body, bind, host, owned=body.invars[:n_carry])
        self.lines.extend(lines)
        if carry:
            self.emit(f"{', '.join(carry)} = {', '.join(res)}", 1)

    def op_loop(self, e, *ops, body, start, step, n, n_carry):
        carry, consts, chost = self._carry_init(e, ops, n_carry)
        i = self.name.fresh("it")
        self.emit(f"for {i}_ in range({n}):")
        self.emit(f"{i} = np.int64({start} + {i}_ * {step})", 1)
        bind = [i] + carry + consts
        host = [True] + [False] * len(carry) + chost
        lines, res = self.block(body, bind, host, owned=body.invars[1 : 1 + n_carry])
        self.lines.extend(lines)
        if carry:
            self.emit(f"{', '.join(carry)} = {', '.join(res)}", 1)
        elif not lines:
            self.emit("pass", 1)

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
        carry, consts, chost = self._carry_init(e, [*carry_ops, *const_ops], n_carry)
        count_v = e.outvars[n_carry]
        count = self.name(count_v)
        self.on_host.add(count_v)
        ys = self._results(e.outvars[n_carry + 1 :])
        row_avals = [v.aval for v in body.outvars[n_carry:]]
        if cond is not None:
            cap = "16"
        else:
            cap = str(length) if length is not None else f"int({self.host_value(count_op)})"
        self.emit(f"{count} = np.int64({cap if cond is None else 0})")
        for t, a, v in zip(ys, row_avals, e.outvars[n_carry + 1 :]):
            self.emit(f"{t} = pool.take(({cap},) + {tuple(a.shape)}, {dtype_ctor(a.dtype)})")
            self.pooled.add(v)
        k = self.name.fresh("k")
        if cond is None:
            self.emit(f"for {k} in range({count} - 1, -1, -1):" if reverse else f"for {k} in range({count}):")
        else:
            self.emit(f"{k} = {count}")
            self.emit("while True:")
            lines, (test,) = self.block(cond, carry + consts, [False] * len(carry) + chost)
            self.lines.extend(lines)
            self.emit(f"if not rt.host({test}):", 1)
            self.emit("break", 2)
        rows = []
        for j, x in enumerate(xs):
            r = f"{self.atom(x)}_r{j}"
            at = f"{k}:{k} + 1" if x.aval.ndim == 1 else k
            self.emit(f"{r} = {self.atom(x)}[{at}]", 1)
            rows.append(r)
        lead = []
        if n_counter:
            i = self.name.fresh("it")
            self.emit(f"{i} = np.int64({start} + {k} * {step})", 1)
            lead = [i]
        c0 = n_counter + n_xs
        bind = lead + rows + carry + consts
        host = [True] * len(lead) + [False] * len(rows) + [False] * len(carry) + chost
        lines, res = self.block(body, bind, host, owned=body.invars[c0 : c0 + n_carry], n_fresh=n_carry)
        self.lines.extend(lines)
        if cond is not None and ys:  # a while loop's tapes double as they grow
            self.emit(f"if {k} == {ys[0]}.shape[0]:", 1)
            for t in ys:
                self.emit(f"{t}_g = pool.take(({t}.shape[0] * 2,) + {t}.shape[1:], {t}.dtype)", 2)
                self.emit(f"{t}_g[:{k}] = {t}", 2)
                self.emit(f"{t} = {t}_g", 2)
        for t, r, a, o in zip(ys, res[n_carry:], row_avals, body.outvars[n_carry:]):
            at = f"{k}:{k} + 1" if a.ndim == 0 and not self.is_host(o) else k
            self.emit(f"{t}[{at}] = {r}", 1)
        if cond is not None:
            self.emit(f"{k} += 1", 1)
        if carry:
            self.emit(f"{', '.join(carry)} = {', '.join(res[:n_carry])}", 1)
        if not (lines or rows or lead or ys or carry or cond is not None):
            self.emit("pass", 1)
        if cond is not None:
            self.emit(f"{count} = np.int64({k})")
            for t in ys:
                self.emit(f"{t} = {t}[:{k}]")
