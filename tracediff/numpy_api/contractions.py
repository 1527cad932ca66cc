"""Contractions: matmul, dot, vdot, inner, outer, tensordot and einsum, on one batched
matmul primitive.
"""

from __future__ import annotations

import string

import numpy as np

from ..builder import innermost_builder
from ..core import Aval
from ..prims import linalg as la
from ..prims import shape as sh
from ..tracer import Tracer, fresh_object
from .common import (
    _emit,
    _fail,
    _lift,
    _no_options,
    _no_out,
    _resolve,
    _token,
    aval_of,
    broadcast_shapes,
    normalize_axes,
    prepare,
    result_dtype,
)
from .indexing import (
    diagonal,
)
from .reductions import (
    sum,
)
from .shapes import (
    ravel,
    reshape,
    transpose,
)
from .ufuncs import (
    _UFUNC_DEFAULTS,
    astype,
)


def matmul(x, y, out=None, *, dtype=None, **kw):
    _no_out("np.matmul", out)
    _no_options("np.matmul", kw, _UFUNC_DEFAULTS)
    if dtype is not None:
        x, y = astype(_lift(x), dtype), astype(_lift(y), dtype)
    b = innermost_builder((x, y))
    if b is None:
        return np.matmul(x, y)
    ax, ay = aval_of(x), aval_of(y)
    if ax.ndim == 0 or ay.ndim == 0:
        _fail(ValueError, f"matmul: operands must not be scalars, got {ax} @ {ay}")
    try:
        dt = _resolve(np.matmul, (_token(ax), _token(ay)))[-1]
    except TypeError:
        _fail(TypeError, f"matmul: unsupported dtypes {ax} @ {ay}")
    xs = ax.shape if ax.ndim > 1 else (1,) + ax.shape
    ys = ay.shape if ay.ndim > 1 else ay.shape + (1,)
    if xs[-1] != ys[-2]:
        _fail(
            ValueError,
            f"matmul: shapes {ax} and {ay} do not match: contracted dimensions {xs[-1]} != {ys[-2]}",
        )
    batch = broadcast_shapes([Aval(xs[:-2], dt), Aval(ys[:-2], dt)], "matmul (batch dimensions)")
    x = prepare(b, x, dt, ax.shape)
    y = prepare(b, y, dt, ay.shape)
    if ax.ndim == 1:
        x = _emit(b, sh.reshape_p, x, shape=xs)
    if ay.ndim == 1:
        y = _emit(b, sh.reshape_p, y, shape=ys)
    if xs[:-2] != batch:
        x = _emit(b, sh.broadcast_p, x, shape=batch + xs[-2:])
    if ys[:-2] != batch:
        y = _emit(b, sh.broadcast_p, y, shape=batch + ys[-2:])
    out = _emit(b, la.matmul_p, x, y)
    final = batch + (xs[-2],) * (ax.ndim > 1) + (ys[-1],) * (ay.ndim > 1)
    return reshape(out, final) if final != out.shape else out


def dot(x, y, out=None):
    _no_out("np.dot", out)
    ax, ay = aval_of(x), aval_of(y)
    if ax.ndim == 0 or ay.ndim == 0:
        return np.multiply(x, y)
    if ay.ndim <= 2:
        return matmul(x, y)
    return tensordot(x, y, axes=([ax.ndim - 1], [ay.ndim - 2]))


def vdot(x, y):
    return dot(ravel(_lift(x)), ravel(_lift(y)))


def inner(x, y):
    ax, ay = aval_of(x), aval_of(y)
    if ax.ndim == 0 or ay.ndim == 0:
        return np.multiply(x, y)
    return tensordot(x, y, axes=([ax.ndim - 1], [ay.ndim - 1]))


def outer(x, y, out=None):
    _no_out("np.outer", out)
    x, y = ravel(_lift(x)), ravel(_lift(y))
    return np.multiply(reshape(x, (-1, 1)), reshape(y, (1, -1)))


def tensordot(x, y, axes=2):
    ax, ay = aval_of(x), aval_of(y)
    if isinstance(axes, (int, np.integer)):
        xa = list(range(ax.ndim - axes, ax.ndim))
        ya = list(range(axes))
    else:
        xa, ya = ([a] if isinstance(a, (int, np.integer)) else list(a) for a in axes)
    xa = [normalize_axes(a, ax.ndim, "np.tensordot")[0] for a in xa]
    ya = [normalize_axes(a, ay.ndim, "np.tensordot")[0] for a in ya]
    if len(xa) != len(ya) or any(ax.shape[i] != ay.shape[j] for i, j in zip(xa, ya)):
        _fail(ValueError, f"np.tensordot: shape mismatch for sum: {ax}, {ay}, axes {axes}")
    xf = [i for i in range(ax.ndim) if i not in xa]
    yf = [j for j in range(ay.ndim) if j not in ya]
    letters = iter(string.ascii_letters)
    xl = {i: next(letters) for i in range(ax.ndim)}
    yl = {j: next(letters) for j in yf}
    for i, j in zip(xa, ya):
        yl[j] = xl[i]
    sx = "".join(xl[i] for i in range(ax.ndim))
    sy = "".join(yl[j] for j in range(ay.ndim))
    so = "".join(xl[i] for i in xf) + "".join(yl[j] for j in yf)
    return _einsum(f"{sx},{sy}->{so}", x, y)


def _einsum_parse(subscripts, nops):
    s = subscripts.replace(" ", "")
    if "." in s:
        _fail(NotImplementedError, "np.einsum: '...' is not supported; name the axes")
    if "->" in s:
        ins, out = s.split("->")
    else:
        ins = s
        counts = {}
        for c in ins.replace(",", ""):
            counts[c] = counts.get(c, 0) + 1
        out = "".join(sorted(c for c, k in counts.items() if k == 1))
    ins = ins.split(",")
    if len(ins) != nops:
        _fail(ValueError, f"np.einsum: {subscripts!r} names {len(ins)} operands, got {nops}")
    return ins, out


def _einsum_prepare(x, sub, keep):
    """Take diagonals of repeated letters and sum letters not in `keep`."""
    a = aval_of(x)
    if len(sub) != a.ndim:
        _fail(ValueError, f"np.einsum: subscripts {sub!r} do not match operand {a}")
    while len(set(sub)) < len(sub):
        c = next(c for c in sub if sub.count(c) > 1)
        i = sub.index(c)
        j = sub.index(c, i + 1)
        x = diagonal(x, 0, i, j)
        sub = "".join(s for k, s in enumerate(sub) if k not in (i, j)) + c
    drop = [i for i, c in enumerate(sub) if c not in keep]
    if drop:  # einsum sums in the operands' dtype; booleans by `or`
        dt = aval_of(x).dtype
        if dt == np.dtype(bool):  # an `or` that is False over no terms
            x = sum(x, axis=tuple(drop), dtype=np.int64) > 0
        else:
            x = sum(x, axis=tuple(drop), dtype=dt)
        sub = "".join(c for i, c in enumerate(sub) if i not in drop)
    return x, sub


def einsum(subscripts, *operands, optimize=None, **kw):
    _no_options("np.einsum", kw, {"casting": "safe", "order": "K", "dtype": None})
    if not isinstance(subscripts, str):  # the sublist form: op, [0, 1], op, [1], [0]
        subscripts, operands = _einsum_sublists((subscripts,) + operands)
    if "." in subscripts:
        subscripts = _einsum_ellipsis(subscripts, operands)
    view = _one_operand_view(subscripts, operands)
    if view is not None:  # NumPy returns a view of the operand: later updates show in it
        return view
    z = _einsum(subscripts, *operands)
    # NumPy's einsum adds each product into a zeroed output: -0.0 products come out +0.0
    z = z + 0.0 if aval_of(z).dtype.kind == "f" else z
    return fresh_object(z, *operands)


def _one_operand_view(subscripts: str, operands):
    """A one-operand einsum that sums nothing ('ij->ji', 'i', 'ii->i'), as NumPy
    gives it: a view (diagonals for repeated letters, then the axes reordered);
    None for anything else."""
    if len(operands) != 1 or not isinstance(operands[0], Tracer):
        return None
    ins, arrow, out = subscripts.replace(" ", "").partition("->")
    if not arrow:  # implicit output: the letters named once, in alphabetical order
        out = "".join(sorted(c for c in set(ins) if ins.count(c) == 1))
    x = operands[0]
    if len(ins) != aval_of(x).ndim or sorted(out) != sorted(set(ins)) or len(set(out)) != len(out):
        return None
    letters = list(ins)
    while len(set(letters)) != len(letters):  # a repeated letter: its diagonal, moved last
        p = next(k for k, c in enumerate(letters) if letters.count(c) > 1)
        q = letters.index(letters[p], p + 1)
        x = np.diagonal(x, 0, p, q)
        letters = [c for k, c in enumerate(letters) if k not in (p, q)] + [letters[p]]
    return np.transpose(x, [letters.index(c) for c in out])


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _einsum_ellipsis(subscripts, operands) -> str:
    """The subscripts with each `...` spelled out in letters of their own, the axes it
    covers right-aligned across the operands (as NumPy broadcasts them)."""
    s = subscripts.replace(" ", "")
    ins, arrow, out = s.partition("->")
    ins = ins.split(",")
    if len(ins) != len(operands):
        _fail(ValueError, f"np.einsum: {subscripts!r} names {len(ins)} operands, got {len(operands)}")
    free = [c for c in _LETTERS if c not in s]
    covered = []
    for sub, op in zip(ins, operands):
        a = aval_of(op)
        k = a.ndim - (len(sub) - 3) if "..." in sub else 0
        if k < 0 or sub.count("...") > 1 or (("." in sub) and "..." not in sub):
            _fail(ValueError, f"np.einsum: subscripts {sub!r} do not match operand {a}")
        start = sub.index("...") if k else 0
        covered.append(a.shape[start : start + k])
    n = max((len(c) for c in covered), default=0)
    letters = "".join(free[:n])
    sizes: dict = {}
    for dims in covered:
        for c, d in zip(letters[n - len(dims) :], dims):
            if sizes.setdefault(c, d) != d:
                _fail(
                    NotImplementedError,
                    f"np.einsum: the axes '...' covers differ in size across operands ({sizes[c]} and {d}); "
                    "broadcasting them is not supported, broadcast the operands first",
                )
    ins = [sub.replace("...", letters[n - len(c) :]) for sub, c in zip(ins, covered)]
    if arrow:
        out = out.replace("...", letters)
    else:  # implicit output: the broadcast axes, then the letters used once, sorted
        named = "".join(sub for sub in ins).replace(",", "")
        out = letters + "".join(sorted(c for c in set(named) if named.count(c) == 1 and c not in letters))
    return ",".join(ins) + "->" + out


def _einsum_sublists(args):
    """(subscripts, operands) of einsum's sublist form (`np.einsum(a, [0, 1], b, [1])`)."""
    letters = _LETTERS

    def word(sub) -> str:
        out = []
        for s in sub:
            if s is Ellipsis:
                out.append("...")
            elif isinstance(s, (int, np.integer)) and 0 <= s < len(letters):
                out.append(letters[int(s)])
            else:
                _fail(
                    ValueError,
                    f"np.einsum: a subscript in sublist form must be an int in [0, 52) or ..., got {s!r}",
                )
        return "".join(out)

    operands = list(args[0::2][: len(args) // 2])
    subs = [word(s) for s in args[1::2][: len(args) // 2]]
    spec = ",".join(subs) + ("->" + word(args[-1]) if len(args) % 2 else "")
    return spec, operands


def _einsum(subscripts, *operands):
    """einsum in the operands' common dtype, as products and sums (tensordot's too)."""
    ins, out = _einsum_parse(subscripts, len(operands))
    dt = result_dtype(*(aval_of(o) for o in operands))
    ops = [astype(_lift(o), dt) for o in operands]
    while len(ops) > 2:  # left to right, keeping what later operands or the output need
        rest = "".join(ins[2:]) + out
        keep = "".join(c for c in dict.fromkeys(ins[0] + ins[1]) if c in rest)
        ops = [_einsum(f"{ins[0]},{ins[1]}->{keep}", ops[0], ops[1])] + ops[2:]
        ins = [keep] + ins[2:]
    if len(ops) == 1:
        x, sub = _einsum_prepare(ops[0], ins[0], out)
        if sorted(sub) != sorted(out):
            _fail(ValueError, f"np.einsum: output {out!r} names letters not in the input")
        return transpose(x, [sub.index(c) for c in out])
    x, sx = _einsum_prepare(ops[0], ins[0], ins[1] + out)
    y, sy = _einsum_prepare(ops[1], ins[1], sx + out)
    batch = [c for c in sx if c in sy and c in out]
    contract = [c for c in sx if c in sy and c not in out]
    lf = [c for c in sx if c not in sy]
    rf = [c for c in sy if c not in sx]
    dims = {c: aval_of(x).shape[i] for i, c in enumerate(sx)}
    for i, c in enumerate(sy):
        if dims.setdefault(c, aval_of(y).shape[i]) != aval_of(y).shape[i]:
            _fail(ValueError, f"np.einsum: size of axis {c!r} differs between operands in {subscripts!r}")
    size = lambda cs: int(np.prod([dims[c] for c in cs], dtype=np.int64))  # noqa: E731
    if not contract:
        # no contraction: a broadcast product, not a matmul of 1x1 blocks
        x = reshape(
            transpose(x, [sx.index(c) for c in batch + lf]),
            tuple(dims[c] for c in batch + lf) + (1,) * len(rf),
        )
        y = reshape(
            transpose(y, [sy.index(c) for c in batch + rf]),
            tuple(dims[c] for c in batch) + (1,) * len(lf) + tuple(dims[c] for c in rf),
        )
        z = np.multiply(x, y)
    else:
        x = reshape(
            transpose(x, [sx.index(c) for c in batch + lf + contract]),
            (size(batch), size(lf), size(contract)),
        )
        y = reshape(
            transpose(y, [sy.index(c) for c in batch + contract + rf]),
            (size(batch), size(contract), size(rf)),
        )
        z = reshape(matmul(x, y), tuple(dims[c] for c in batch + lf + rf))
    zs = "".join(batch + lf + rf)
    if sorted(zs) != sorted(out):
        _fail(ValueError, f"np.einsum: output {out!r} does not match the inputs of {subscripts!r}")
    return transpose(z, [zs.index(c) for c in out])
