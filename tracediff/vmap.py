"""`td.vmap`: a function of one example made a function of a batch.

The function is traced once per signature at the shapes of one member of the
batch, and the program is batched by the primitives' batching rules
(batching.py) into one program over the whole batch, cached like `grad`'s. It
composes with every transformation: `vmap(grad(f))` batches the gradient
program, `grad(vmap(f))` differentiates the batched one, `jit(vmap(...))`
compiles it into the same fused loops a hand-batched program gives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import pytree
from .batching import BatchError, batch_ir
from .staging import Entry, Transformed, _arg_name, _dyn_aval, _is_dynamic, _name, stage
from .tracing import at, user_src


class _DictAxes(tuple):
    """The axes of a dict's values, by key: ((key, spec), ...) sorted as pytree sorts keys."""


def _axis_spec(axes, what: str, top: bool = True):
    """in_axes/out_axes as hashable: an int, None, or a tuple (a list) of them per
    positional argument, nested as the arguments are (dicts of them inside)."""
    if axes is None or (isinstance(axes, (int, np.integer)) and not isinstance(axes, bool)):
        return None if axes is None else int(axes)
    if isinstance(axes, (tuple, list)):
        return tuple(_axis_spec(a, what, False) for a in axes)
    if isinstance(axes, dict) and not top:
        keys = sorted(axes, key=pytree._sort_key)
        return _DictAxes((k, _axis_spec(axes[k], what, False)) for k in keys)
    raise TypeError(
        f"vmap: {what} must be an int, None, or a tuple of them per argument (nested as the "
        f"arguments are: tuples, lists, dicts), got {axes!r}"
    )


def _per_arg(spec, n: int, what: str, fun) -> list:
    if not isinstance(spec, tuple):
        return [spec] * n
    if len(spec) != n:
        raise ValueError(
            f"vmap: {what} has {len(spec)} entries for {_name(fun)} called with {n} positional "
            "argument(s)" + at(user_src())
        )
    return list(spec)


def _leaf_axes(spec, tree) -> list:
    """One axis per leaf of `tree`: an int or None spreads over the whole tree; a
    tuple matches the children of a tuple, list or namedtuple, a dict those of a dict."""
    if not isinstance(spec, tuple):
        return [spec] * pytree.num_leaves(tree)
    kind = tree[0] if isinstance(tree, tuple) else None
    if isinstance(spec, _DictAxes):
        if kind != "dict" or tuple(k for k, _ in spec) != tree[1]:
            keys = list(tree[1]) if kind == "dict" else None
            raise ValueError(
                f"vmap: axes for the keys {[k for k, _ in spec]} do not match "
                + (f"a dict with the keys {keys}" if keys is not None else "a value that is not a dict")
            )
        return [a for (_, s), t in zip(spec, tree[2]) for a in _leaf_axes(s, t)]
    kids = tree[1] if kind in ("tuple", "list") else tree[2] if kind == "namedtuple" else None
    if kids is None or len(kids) != len(spec):
        raise ValueError(f"vmap: axes {spec} do not match a value of {pytree.num_leaves(tree)} leaves")
    return [a for s, t in zip(spec, kids) for a in _leaf_axes(s, t)]


class Vmap(Transformed):
    kind = "vmap"

    def __init__(self, fun, in_axes=0, out_axes=0, static_argnums=()):
        self.in_axes = _axis_spec(in_axes, "in_axes")
        self.out_axes = _axis_spec(out_axes, "out_axes", top=False)  # (a dict for a dict result)
        super().__init__(fun, (self.in_axes, self.out_axes), static_argnums=static_argnums)

    def _build(self, args, kwargs) -> Entry:
        stat = self._static_argnums(args)
        axes = _per_arg(self.in_axes, len(args), "in_axes", self.fun)
        size, members, leaf_dims = None, [], []

        def member(x, axis, where):
            nonlocal size
            if axis is None or not _is_dynamic(x):  # Python ints, strings: the same for every member
                leaf_dims.append(None)
                return x
            a = _dyn_aval(x)
            if isinstance(x, float) or a.ndim == 0:
                raise ValueError(
                    f"vmap: {where} is a scalar {a}, which has no axis {axis} to map over; give it in_axes "
                    "None" + at(user_src())
                )
            if not -a.ndim <= axis < a.ndim:
                raise ValueError(f"vmap: in_axes {axis} is out of range for {where}, {a}" + at(user_src()))
            axis %= a.ndim
            n = a.shape[axis]
            if size is not None and n != size:
                raise ValueError(
                    f"vmap: {where} has {n} members along axis {axis}, an earlier argument {size}"
                    + at(user_src())
                )
            size = n
            leaf_dims.append(axis)
            shape = a.shape[:axis] + a.shape[axis + 1 :]
            return np.broadcast_to(np.zeros((), a.dtype), shape)  # a stand-in: only its type is traced

        for i, (a, ax) in enumerate(zip(args, axes)):
            if i in stat:
                members.append(a)
                continue
            leaves, td = pytree.flatten(a)
            ax_leaves = _leaf_axes(ax, td)
            where = _arg_name(self.fun, i)
            members.append(pytree.unflatten(td, [member(x, d, where) for x, d in zip(leaves, ax_leaves)]))
        kleaves, ktd = pytree.flatten(kwargs)  # keyword arguments map over axis 0, as in JAX
        kw = pytree.unflatten(ktd, [member(x, 0, "a keyword argument") for x in kleaves])
        if size is None:
            raise ValueError(
                f"vmap: no argument of {_name(self.fun)} is mapped (in_axes {self.in_axes}); "
                "give at least one array an axis" + at(user_src())
            )
        ir, out_tree, info = stage(self.fun, tuple(members), kw, stat)
        dims = [leaf_dims[k] for k in info["dyn_pos"]] + [None] * len(info["captured"])
        out_spec = self.out_axes
        if (
            isinstance(out_spec, tuple)
            and not isinstance(out_spec, _DictAxes)
            and not (isinstance(out_tree, tuple) and out_tree[0] in ("tuple", "list", "namedtuple"))
        ):
            raise ValueError(f"vmap: out_axes {out_spec} for a single output" + at(user_src()))
        out_dims = []
        for d, a in zip(_leaf_axes(out_spec, out_tree), ir.out_avals):
            if d is not None and not -(a.ndim + 1) <= d <= a.ndim:
                raise ValueError(f"vmap: out_axes {d} is out of range for an output {a}" + at(user_src()))
            out_dims.append(None if d is None else d % (a.ndim + 1))
        try:
            batched = batch_ir(ir, dims, size, out_dims)
        except BatchError as e:
            raise BatchError(f"vmap: {e} of {_name(self.fun)}" + at(user_src())) from None
        return Entry(batched, out_tree, info["captured"], self.target, self.options, updated=info["updated"])


def vmap(
    fun: Callable | None = None,
    in_axes: int | None | Sequence[Any] = 0,
    out_axes: int | None | Sequence[Any] = 0,
    static_argnums: int | Sequence[int] = (),
):
    """`fun` over a batch: the arguments' `in_axes` (an int or None for all, or one
    per positional argument) hold the batch; the results hold it on `out_axes`."""
    if fun is None:
        return lambda f: Vmap(f, in_axes, out_axes, static_argnums)
    return Vmap(fun, in_axes, out_axes, static_argnums)


__all__ = ["Vmap", "vmap"]
