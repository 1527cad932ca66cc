"""Pytrees: nested tuple/list/dict/None containers of leaves.

A treedef is a hashable nested tuple, so it can be part of a cache key.
"""

from __future__ import annotations

from typing import Any

LEAF = "*"
NONE = ("None",)


def flatten(tree: Any) -> tuple[list, Any]:
    leaves: list = []
    return leaves, _flatten(tree, leaves)


def _flatten(x: Any, leaves: list) -> Any:
    t = type(x)
    if t is tuple:
        return ("tuple", tuple(_flatten(c, leaves) for c in x))
    if t is list:
        return ("list", tuple(_flatten(c, leaves) for c in x))
    if t is dict:
        keys = tuple(sorted(x, key=_sort_key))
        return ("dict", keys, tuple(_flatten(x[k], leaves) for k in keys))
    if x is None:
        return NONE
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # namedtuple
        return ("namedtuple", t, tuple(_flatten(c, leaves) for c in x))
    leaves.append(x)
    return LEAF


def _sort_key(k):
    return (type(k).__name__, k)


def unflatten(treedef: Any, leaves) -> Any:
    it = iter(leaves)
    out = _unflatten(treedef, it)
    return out


def _unflatten(td: Any, it) -> Any:
    if td == LEAF:
        return next(it)
    kind = td[0]
    if kind == "tuple":
        return tuple(_unflatten(c, it) for c in td[1])
    if kind == "list":
        return [_unflatten(c, it) for c in td[1]]
    if kind == "dict":
        return {k: _unflatten(c, it) for k, c in zip(td[1], td[2])}
    if kind == "namedtuple":
        return td[1](*(_unflatten(c, it) for c in td[2]))
    return None


def num_leaves(treedef: Any) -> int:
    if treedef == LEAF:
        return 1
    kind = treedef[0]
    if kind in ("tuple", "list"):
        return sum(num_leaves(c) for c in treedef[1])
    if kind == "dict":
        return sum(num_leaves(c) for c in treedef[2])
    if kind == "namedtuple":
        return sum(num_leaves(c) for c in treedef[2])
    return 0


def tree_map(fn, tree: Any, *rest: Any) -> Any:
    leaves, td = flatten(tree)
    others = [flatten(r)[0] for r in rest]
    return unflatten(td, [fn(x, *ys) for x, *ys in zip(leaves, *others)])


def graft(treedef: Any, subtrees) -> Any:
    """`treedef` with its leaves replaced, in order, by the treedefs `subtrees`."""
    it = iter(subtrees)

    def go(td):
        if td == LEAF:
            return next(it)
        kind = td[0]
        if kind in ("tuple", "list"):
            return (kind, tuple(go(c) for c in td[1]))
        if kind == "dict":
            return ("dict", td[1], tuple(go(c) for c in td[2]))
        if kind == "namedtuple":
            return ("namedtuple", td[1], tuple(go(c) for c in td[2]))
        return td

    return go(treedef)
