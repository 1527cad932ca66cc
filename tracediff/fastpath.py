"""Fast paths: for the most recent signatures of a transformed function, a small
generated Python function that checks the arguments' types, shapes and dtypes,
runs the stored program and builds the result, without a cache lookup (a call
then costs about a microsecond more than the program)."""

from __future__ import annotations

import numpy as np

from . import pytree

MISS = object()  # what a fast path returns for a call that is not its signature


def _tree_expr(td, ns) -> str | None:
    """Python expression building the output tree from `o` (None: not expressible)."""
    it = iter(range(pytree.num_leaves(td)))

    def go(t):
        if t == pytree.LEAF:
            return f"o[{next(it)}]"
        kind = t[0]
        if kind == "tuple":
            return "(" + "".join(go(c) + ", " for c in t[1]) + ")"
        if kind == "list":
            return "[" + ", ".join(go(c) for c in t[1]) + "]"
        if kind == "dict" and all(type(k) in (str, int) for k in t[1]):
            return "{" + ", ".join(f"{k!r}: {go(c)}" for k, c in zip(t[1], t[2])) + "}"
        if t == pytree.NONE:
            return "None"
        raise ValueError

    try:
        return go(td)
    except ValueError:
        return None


def make_fast_path(entry, args: tuple):
    """A function for calls with this exact signature: checks, runs, builds the result.

    Only for top-level arguments that are arrays or Python floats; anything
    else (pytrees, static values) takes the general path.
    """
    if entry.runner is None:
        return None
    ns = {"np": np, "ndarray": np.ndarray, "MISS": MISS, "run": entry.runner}
    checks, params = [], []
    for i, a in enumerate(args):
        params.append(f"a{i}")
        if type(a) is np.ndarray:
            ns[f"S{i}"], ns[f"D{i}"] = a.shape, a.dtype
            checks.append(f"type(a{i}) is not ndarray or a{i}.shape != S{i} or a{i}.dtype is not D{i}")
        elif type(a) is float:
            checks.append(f"type(a{i}) is not float")
        elif type(a).__name__ in ("DeviceNDArray", "FakeCUDAArray"):  # a Numba device array
            ns[f"T{i}"], ns[f"S{i}"], ns[f"D{i}"] = type(a), a.shape, a.dtype
            checks.append(f"type(a{i}) is not T{i} or a{i}.shape != S{i} or a{i}.dtype != D{i}")
        else:
            return None
    tree = _tree_expr(entry.out_tree, ns)
    if tree is None:
        return None
    fix = []
    for i, f in entry.fixups:
        ns[f"F{i}"] = f
        fix.append(f"    o[{i}] = F{i}(o[{i}])")
    unpack = f"    {', '.join(params)}{',' if len(params) == 1 else ''} = args\n" if params else ""
    src = (
        "def fast(args):\n"
        f"    if len(args) != {len(args)}:\n        return MISS\n"
        + unpack
        + "".join(f"    if {c}:\n        return MISS\n" for c in checks)
        + f"    o = run({', '.join(params)})\n"
        + "".join(line + "\n" for line in fix)
        + f"    return {tree}\n"
    )
    exec(src, ns)
    return ns["fast"]
