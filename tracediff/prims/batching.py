"""What the batching rules (`vmap`) of the primitives share.

A batched value carries its batch along one axis, `dim`, or none (`None`: the
same for every member of the batch). A rule gets its operands with their dims
and the batch size, and returns its results with theirs; rules move batch axes
and broadcast with primitives, so a batched program is ordinary IR that
differentiates and compiles like any other. Most rules put the batch first
(`to_front`); a scan keeps its stacked results' batch on axis 1 instead of
transposing a tape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class NotBatchable(Exception):
    """A rule cannot batch this equation (e.g. a loop whose trip count differs
    across the batch and whose tape is read back): the caller falls back to a
    loop over the batch for the whole program."""


def _bind(prim, *args, **params):
    from ..builder import bind

    return bind(prim, *args, **params)


def shape_of(x) -> tuple:
    return tuple(np.shape(x)) if not hasattr(x, "aval") else x.aval.shape


def move_axis(x, src: int, dst: int):
    if src == dst:
        return x
    from .shape import transpose_p

    perm = [i for i in range(len(shape_of(x))) if i != src]
    perm.insert(dst, src)
    return _bind(transpose_p, x, perm=tuple(perm))


def broadcast_front(x, size: int):
    """x, the same for each member: repeated along a new leading batch axis."""
    from .shape import broadcast_p

    return _bind(broadcast_p, x, shape=(size,) + shape_of(x))


def to_front(x, dim: int | None, size: int):
    """x with its batch on axis 0 (broadcast there when it has none)."""
    return broadcast_front(x, size) if dim is None else move_axis(x, dim, 0)


def batched(dims: Sequence[int | None]) -> bool:
    return any(d is not None for d in dims)


def elementwise_rule(prim):
    """Elementwise operands have equal shapes: bring every one to the batch on axis 0."""

    def rule(args, dims, size, **params):
        ins = [to_front(x, d, size) for x, d in zip(args, dims)]
        return [_bind(prim, *ins, **params)], [0]

    return rule


def first_operand_rule(prim):
    """Ops whose result follows the first operand; the others are unchanged
    (a barrier's ordering operands)."""

    def rule(args, dims, size, **params):
        x = to_front(args[0], dims[0], size)
        return [_bind(prim, x, *args[1:], **params)], [0]

    return rule


def flat_offsets(idx, size: int, stride: int):
    """Flat indices into one member's raveled operand, made indices into the raveled
    batch (member b's block starts at b * stride); `idx` has its batch on axis 0."""
    shape = shape_of(idx)
    dt = idx.aval.dtype if hasattr(idx, "aval") else np.asarray(idx).dtype
    base = (np.arange(size, dtype=dt) * dt.type(stride)).reshape((size,) + (1,) * (len(shape) - 1))
    from .elementwise import add_p
    from .shape import broadcast_p

    return _bind(add_p, _bind(broadcast_p, base, shape=shape), idx)


def size_of(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def region_batch(region, in_batched: Sequence[bool], size: int, force: Any = None):
    """A region (sub-program) batched: inputs flagged batched have the batch on
    axis 0; returns (IR, out_batched); `force` (bools, or True for all) makes
    those outputs batched even when they do not depend on the batch."""
    from ..batching import batch_region

    return batch_region(region, list(in_batched), size, force)


def batched_avals(values):
    """The avals of traced values or constants (to trace a region over them)."""
    from ..core import Aval

    out = []
    for x in values:
        if hasattr(x, "aval"):
            out.append(x.aval.strong())
        else:
            a = np.asarray(x)
            out.append(Aval(a.shape, a.dtype))
    return out
