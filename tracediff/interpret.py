"""Running IR with NumPy: the reference semantics of every program.

`eval_ir` goes through `bind`, so with tracer arguments it re-stages the
program into the active trace (how transformations compose). `Interpreter`
is the fast path for concrete arrays: equations are pre-resolved into slots,
and an array is dropped as soon as its last reader has run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .builder import bind
from .core import IR, REGION, REGISTRY, Lit, TracediffError, Var, with_context
from .provenance import restage_context


def eval_ir(ir: IR, args: Sequence[Any]) -> list[Any]:
    env: dict[Var, Any] = dict(zip(ir.invars, args))

    def read(a):
        return a.val if isinstance(a, Lit) else env[a]

    for eqn in ir.eqns:
        with restage_context(eqn.src, eqn.phase):
            outs = bind(eqn.prim, *map(read, eqn.inputs), **eqn.params)
        if eqn.prim.nout == 1:
            outs = [outs]
        env.update(zip(eqn.outvars, outs))
    return [read(v) for v in ir.outvars]


class InterpretError(TracediffError, RuntimeError):
    pass


def _owned_flat(x):
    """x's elements as a flat view to write into, or None (not a contiguous array of its own)."""
    if isinstance(x, np.ndarray) and x.ndim and x.flags.c_contiguous and x.flags.writeable:
        return x.reshape(-1)
    return None


def _scatter_in_place(x, upd, idx, *, unique):
    flat = _owned_flat(x)
    if flat is None:
        return REGISTRY["scatter"].impl(x, upd, idx, unique=unique)
    i = np.ravel(idx)
    if i.size and (i.min() < 0 or i.max() >= flat.size):
        raise IndexError(f"scatter: index out of bounds for size {flat.size}")
    flat[i] = np.ravel(upd)
    return x


def _scatter_accum_in_place(x, upd, idx):
    flat = _owned_flat(x)
    if flat is None:
        return REGISTRY["scatter_accum"].impl(x, upd, idx)
    i = np.ravel(idx)
    if i.size and (i.min() < 0 or i.max() >= flat.size):
        raise IndexError(f"scatter_accum: index out of bounds for size {flat.size}")
    np.add.at(flat, i, np.ravel(upd))
    return x


_IN_PLACE = {"scatter": _scatter_in_place, "scatter_accum": _scatter_accum_in_place}
# primitives whose NumPy implementation may hand back an input array itself, or a
# view of it (np.real of a real array is the array; of a complex one, a view)
_MAY_RETURN_INPUT = {"stop_gradient", "fused", "convert", "real", "imag"}


class Interpreter:
    """Runs an IR on NumPy arrays with little per-equation overhead."""

    def __init__(self, ir: IR, donate: Sequence[int] = (), buffered: bool = False):
        """`donate`: positions of inputs the caller hands over (a loop's carried
        arrays): an update (scatter) that is their last reader may write into them.
        `buffered`: ufunc results that are not outputs go to arrays of a pool the
        caller passes to `run` (`new_pool`) and reuses, each taken back after the
        last reader of its value and of the views of it (blocked.py)."""
        slot: dict[Var, int] = {}
        template: list[Any] = []

        def index(a) -> int:
            if isinstance(a, Lit):
                template.append(a.val)
                return len(template) - 1
            if a not in slot:
                slot[a] = len(template)
                template.append(None)
            return slot[a]

        self.in_slots = [index(v) for v in ir.invars]
        steps = []
        for e in ir.eqns:
            ins = tuple(index(a) for a in e.inputs)
            outs = tuple(index(v) for v in e.outvars)
            steps.append([e.prim.impl, ins, outs, e.params, e])
        self.out_slots = [index(a) for a in ir.outvars]
        # free each array after its last reader (not inputs/outputs/literals)
        last: dict[int, int] = {}
        for k, (_, ins, _, _, _) in enumerate(steps):
            for i in ins:
                last[i] = k
        donated = {self.in_slots[i] for i in donate}
        keep = set(self.out_slots) | (set(self.in_slots) - donated)
        lit_slots = {i for i, v in enumerate(template) if v is not None}
        frees: list[list[int]] = [[] for _ in steps]
        for i, k in last.items():
            if i not in keep and i not in lit_slots:
                frees[k].append(i)
        # which slots hold an array no other live slot shares: results of equations that
        # make new arrays, and donated inputs; a view (reshape, slice...) shares its base's
        owned = set(donated)
        base: dict[int, int] = {}
        for _, ins, outs, _, e in steps:
            if e.prim.may_alias or e.prim.name in _MAY_RETURN_INPUT:
                if ins:
                    base.update((o, base.get(ins[0], ins[0])) for o in outs)
            else:
                owned.update(outs)
        bufs, self.buffers = _assign_buffers(steps, base, last, keep) if buffered else ({}, [])
        self.steps = []
        for k, ((impl, ins, outs, params, e), fr) in enumerate(zip(steps, frees)):
            x = ins[0] if ins else None
            if (
                not buffered
                and e.prim.name in _IN_PLACE
                and x in fr
                and x in owned
                and not any(b == x and (last.get(v, -1) > k or v in keep) for v, b in base.items())
            ):
                impl = _IN_PLACE[e.prim.name]  # x is dead after this update: write into it
            buf = bufs.get(k, -1)
            self.steps.append((impl, ins, outs, params, tuple(fr), e, buf))
        self.template = template

    def new_pool(self) -> list:
        """Arrays for a buffered interpreter's `run` (one caller at a time)."""
        return [np.empty(shape, dtype) for shape, dtype in self.buffers]

    def __call__(self, *args: Any) -> list[Any]:
        return self.run(args, ())

    def run(self, args: Sequence[Any], pool: list) -> list[Any]:
        env = self.template.copy()
        for i, a in zip(self.in_slots, args):
            env[i] = a
        with np.errstate(all="ignore"):
            for impl, ins, outs, params, frees, eqn, buf in self.steps:
                try:
                    if buf < 0:
                        r = impl(*[env[i] for i in ins], **params)
                    else:  # casting="no": a dtype other than the IR's raises, never rounds
                        r = impl(*[env[i] for i in ins], out=pool[buf], casting="no")
                except Exception as e:  # name the equation and the user's line
                    if eqn.prim.kind == REGION:  # its body's equation has named itself
                        raise
                    msg = str(e) if str(e).startswith(f"{eqn.prim.name}:") else f"{eqn.prim.name}: {e}"
                    where = msg + (f" (at {eqn.src})" if eqn.src else "")
                    raise with_context(e, where)  # noqa: B904  (it chains `e` itself)
                if eqn.prim.nout == 1:
                    env[outs[0]] = r
                else:
                    for i, v in zip(outs, r):
                        env[i] = v
                for i in frees:
                    env[i] = None
        return [env[i] for i in self.out_slots]


def _assign_buffers(steps, base: dict, last: dict, keep: set) -> tuple[dict, list]:
    """Step index -> pool index for each ufunc result that is not an output (a
    pool array is taken back after the last reader of the value and of its
    views), and the (shape, dtype) of each pool array."""
    views: dict[int, list[int]] = {}
    for v, b in base.items():
        views.setdefault(b, []).append(v)
    kept = set(keep) | {base.get(v, v) for v in keep}
    free_at: dict[int, list[int]] = {}  # step -> pool arrays free after it
    free: dict[tuple, list[int]] = {}
    specs: list[tuple] = []
    out: dict = {}
    for k, (impl, _, outs, params, e) in enumerate(steps):
        if isinstance(impl, np.ufunc) and impl.nout == 1 and not params and outs[0] not in kept:
            aval = e.outvars[0].aval
            spec = (tuple(aval.shape), np.dtype(aval.dtype))
            pool = free.setdefault(spec, [])
            j = pool.pop() if pool else len(specs)
            if j == len(specs):
                specs.append(spec)
            out[k] = j
            o = outs[0]
            end = max([last.get(o, k)] + [last.get(v, k) for v in views.get(o, ())])
            free_at.setdefault(end, []).append(j)
        for j in free_at.pop(k, ()):
            free.setdefault(specs[j], []).append(j)
    return out, specs
