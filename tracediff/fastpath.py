"""Fast paths: for the most recent signatures of a transformed function, a small
generated Python function that checks the arguments' types, shapes and dtypes,
runs the stored program and builds the result, without a cache lookup (a call
then costs about a microsecond more than the program)."""

from __future__ import annotations

import numpy as np

from . import pytree

MISS = object()  # what a fast path returns for a call that is not its signature


def _tree_expr(td, leaves: list[str]) -> str | None:
    """Python expression building the output tree from the leaves' expressions
    (None: not expressible)."""
    it = iter(leaves)

    def go(t):
        if t == pytree.LEAF:
            return next(it)
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
    else (pytrees, static values) takes the general path. A runner that says
    how to call its kernel (`direct`) is inlined: for C-contiguous arrays the
    fast path calls the kernel itself, one Python frame in all.
    """
    runner = entry.runner
    if runner is None:
        return None
    direct = getattr(runner, "direct", None)
    if direct is not None and not all(type(a) is not np.ndarray or a.flags.c_contiguous for a in args):
        direct = None
    ns = {"ndarray": np.ndarray, "MISS": MISS}
    checks, params = [], []
    for i, a in enumerate(args):
        params.append(f"a{i}")
        if type(a) is np.ndarray:
            ns[f"_S{i}"], ns[f"_D{i}"] = a.shape, a.dtype
            # a 1-D array: its length (the strides check below fixes the rank); cheaper
            shape = (
                f"len(a{i}) != {a.shape[0]}" if a.ndim == 1 and direct is not None else f"a{i}.shape != _S{i}"
            )
            check = f"type(a{i}) is not ndarray"
            if (
                direct is not None
            ):  # the kernel takes C-contiguous arrays; (first: len() of a 0-d array raises)
                ns[f"_ST{i}"] = a.strides
                check += f" or a{i}.strides != _ST{i}"
            check += f" or {shape} or a{i}.dtype is not _D{i}"
            checks.append(check)
        elif type(a) is float:
            checks.append(f"type(a{i}) is not float")
        elif type(a).__name__ in ("DeviceNDArray", "FakeCUDAArray"):  # a Numba device array
            ns[f"_T{i}"], ns[f"_S{i}"], ns[f"_D{i}"] = type(a), a.shape, a.dtype
            checks.append(f"type(a{i}) is not _T{i} or a{i}.shape != _S{i} or a{i}.dtype != _D{i}")
        else:
            return None
    fixed = dict(entry.fixups)
    n_out = pytree.num_leaves(entry.out_tree)
    if direct is not None:
        alloc, call, outs = direct
        ns.update(runner.ns)  # the kernel, its constants, scalar types and result shapes
        compiled = runner.compiled_for(args)
        if compiled is not None:  # the arguments are checked here: skip Numba's dispatch
            ns["kernel"] = compiled
        run = "".join(f"    {ln}\n" for ln in alloc) + f"    {call}\n"
    else:
        ns["run"] = runner
        outs = [f"o[{k}]" for k in range(n_out)]
        run = f"    o = run({', '.join(params)})\n"
    if len(outs) != n_out:
        return None
    leaves = []
    for k, expr in enumerate(outs):
        if k in fixed:
            ns[f"_F{k}"] = fixed[k]
            expr = f"_F{k}({expr})"
        leaves.append(expr)
    tree = _tree_expr(entry.out_tree, leaves)
    if tree is None:
        return None
    unpack = f"    {', '.join(params)}{',' if len(params) == 1 else ''} = args\n" if params else ""
    src = (
        "def fast(args):\n"
        f"    if len(args) != {len(args)}:\n        return MISS\n"
        + unpack
        + "".join(f"    if {c}:\n        return MISS\n" for c in checks)
        + run
        + f"    return {tree}\n"
    )
    # the same as the transformed function's own __call__ (`Transformed.specialize`):
    # a call then costs one Python frame; other calls go to the general one
    ns["_NO"], ns["_general"] = _NO, entry_general
    given = f"{params[-1]} is _NO or " if params else ""
    src += (
        f"def call(self, {''.join(p + '=_NO, ' for p in params)}/, *more, **kwargs):\n"
        f"    if more or kwargs or {given}{' or '.join(f'({c})' for c in checks) or 'False'}:\n"
        f"        return _general(self, {''.join(p + ', ' for p in params)}*more, **kwargs)\n"
        + run
        + f"    return {tree}\n"
    )
    exec(src, ns)
    fast = ns["fast"]
    fast.method = ns["call"]
    return fast


class _Absent:
    """An argument not given (a fast path's parameters have it as default)."""

    def __repr__(self) -> str:
        return "<absent>"


_NO = _Absent()


def entry_general(self, *args, **kwargs):
    """The general call of a transformed function, for a specialized __call__'s misses."""
    args = tuple(a for a in args if a is not _NO)
    return self.call_general(*args, **kwargs)
