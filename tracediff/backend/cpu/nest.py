"""A region group (`groups.py`) written as one loop nest: the members' plans,
built by their `RegionWriter`s, share the loops over the group's prefix; at
the prefix's innermost level each member's own loops and statements follow in
order. Members whose own loops are short are unrolled and their buffers
indexed only by constants become scalars, so the nest is straight-line there
and its folds can be buffered (`regions.buffered_folds`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from .regions import RegionWriter, buffered_folds

if TYPE_CHECKING:
    from .writer import CpuWriter

UNROLL_MAX = 8  # a group member's own loops of at most this many iterations in all are unrolled


def _subst(st: str, sub: dict) -> str:
    return re.sub(r"\bi(\d+)\b", lambda m: sub.get(m.group(0), m.group(0)), st) if sub else st


def unrolled(w: RegionWriter, p: int, accums: dict) -> list[str]:
    """A group member's own loops (levels p.. of its domain) as straight-line code
    at level p; its folds, with their indices substituted, join `accums`."""
    out = list(w.pre[p])

    def add(st: str, sub: dict) -> None:
        t = _subst(st, sub)
        out.append(t)
        acc = w.accums.get(st)
        if acc is not None:
            kind, target, v, adt, wide = acc
            accums[t] = (kind, _subst(target, sub), _subst(v, sub), adt, wide)

    def rec(k: int, sub: dict) -> None:
        for j in range(w.domain[k]):
            inner = {**sub, f"i{k}": str(j)}
            for st in w.pre[k + 1]:
                add(st, inner)
            if k + 1 < w.rank:
                rec(k + 1, inner)
        for st in w.post[k]:
            add(st, sub)

    rec(p, {})
    return out


def scalarize(lines: list[str], names: list[str], allocs: list[list[str]]) -> list[str]:
    """Buffers indexed only by constants after unrolling (`v7[0]`) become scalars
    (`v7_0`), and their allocations go: LLVM keeps them in registers."""
    text = "\n".join(lines)
    for nm in names:
        uses = re.findall(rf"\b{nm}\[([^\]]*)\]", text)
        if not uses or not all(re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", u) for u in uses):
            continue
        text = re.sub(
            rf"\b{nm}\[([^\]]*)\]", lambda m, nm=nm: nm + "_" + "_".join(re.findall(r"\d+", m.group(1))), text
        )
        for a in allocs:
            a[:] = [ln for ln in a if not ln.startswith(f"{nm} = np.empty(")]
    return text.split("\n")


def write_group(prog: CpuWriter, writers: list[RegionWriter], p: int) -> None:
    """Members of a group (built, sharing loops 0..p-1 and their parallel chunks) as
    one nest: at loop level p each member's own loops and statements, in order.
    Members whose own loops are short are unrolled; when that leaves the loop over
    i{p-1} straight-line, its folds are buffered (vectorizable, `buffered_folds`)."""
    emit, first = prog.emit, writers[0]
    alloc = first.chunk_pre if first.parallel else first.prologue
    flat = {w: w.rank > p and int(np.prod(w.domain[p:])) <= UNROLL_MAX for w in writers}
    parts, accums = [], {}
    for w in writers:
        if flat[w]:
            parts.append(unrolled(w, p, accums))
        elif w.rank == p:
            parts.append(list(w.pre[p]))
            accums.update(w.accums)
        else:
            w.buffer_folds()  # a member's own innermost loop
            parts.append(None)
    if all(part is not None for part in parts):  # the loop over i{p-1} is straight-line
        scratch = [prog.name(v) for v in writers[0].group.scratch if v.aval.ndim > p]
        body = scalarize(
            [st for part in parts for st in part],
            scratch,
            [w.prologue for w in writers] + [w.chunk_pre for w in writers],
        )
        lo = "lo_" if p == 1 and first.parallel else "0"
        body, fold = buffered_folds(prog, body, accums, first.domain[p - 1], p - 1, alloc)
        if fold and lo != "0":
            d0 = first.domain[0]
            fold = [
                ln.replace(f"range(0, 0 + {d0})", "range(lo_, hi_)").replace(f", 0, 0 + {d0})", ", lo_, hi_)")
                for ln in fold
            ]
        parts = [body]
    else:
        fold = None
    for w in writers:
        for st in w.prologue + w.flat_lines + w.pre[0]:
            emit(st)
    d0 = first.domain[0]
    if first.parallel:
        ind = first.chunk_header(d0)
        start = len(prog.lines)
        for w in writers:
            for st in w.chunk_pre:
                emit(st, ind)
        emit("for i0 in range(lo_, hi_):", ind)
    else:
        ind = 1
        emit(f"for i0 in range({d0}):", ind)
    base = ind
    for k in range(1, p):  # the shared loops
        for w in writers:
            for st in w.pre[k]:
                emit(st, base + k)
        emit(f"for i{k} in range({first.domain[k]}):", base + k)
    if len(parts) == 1 and parts[0] is not None and all(flat[w] or w.rank == p for w in writers):
        for st in parts[0]:
            emit(st, base + p)
    else:
        for w in writers:  # each member's part at level p
            for st in w.pre[p]:
                emit(st, base + p)
            for k in range(p, w.rank):
                emit(f"for i{k} in range({w.domain[k]}):", base + k)
                for st in w.pre[k + 1]:
                    emit(st, base + k + 1)
            for k in range(w.rank - 1, p - 1, -1):
                for st in w.post[k]:
                    emit(st, base + k)
    if fold and p > 1:
        for ln in fold:
            emit(ln, base + p - 1)
    for k in range(p - 1, 0, -1):
        for w in writers:
            for st in w.post[k]:
                emit(st, base + k)
    if fold and p == 1:
        for ln in fold:
            emit(ln, base)
    if first.parallel:
        for w in writers:
            for st in w.chunk_post:
                emit(st, base)
        prog.outline(start, ind)
    for w in writers:
        for st in w.epilogue:
            emit(st)
