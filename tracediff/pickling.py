"""Pickling by reference, for the objects tracediff hands to users (transformed
functions, custom-rule functions, checkpointed functions): Dask,
concurrent.futures and multiprocessing ship them to other processes, where
they are traced again."""

from __future__ import annotations

import sys
from typing import Any


def global_name(obj: Any) -> str | None:
    """`obj`'s qualified name if its module holds it under that name (a function
    decorated at module level: pickle it by that name), else None. Not for
    `__main__`: cloudpickle (Dask) sends a script's functions by value."""
    mod = sys.modules.get(getattr(obj, "__module__", None) or "")
    if mod is None or mod.__name__ == "__main__":
        return None
    found = mod
    for part in getattr(obj, "__qualname__", "").split("."):
        found = getattr(found, part, None)
    return obj.__qualname__ if found is obj else None


def rebuild(cls: type, args: tuple, kwargs: dict, state: dict | None = None) -> Any:
    """`cls(*args, **kwargs)` with `state` set on it: what `__reduce__` returns for
    an object made from a user's function."""
    obj = cls(*args, **kwargs)
    for k, v in (state or {}).items():
        setattr(obj, k, v)
    return obj
