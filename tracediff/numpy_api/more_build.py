"""Building and rearranging arrays: cross, kron, triu/tril, diag/diagflat, pad, roll,
rot90, meshgrid, linspace, full, atleast_3d, column_stack, dstack, array_split.

Static index maps are computed with NumPy on index arrays (np.pad of an arange gives
the source of every padded element), so each is one gather whose gradient scatters back.
"""

from __future__ import annotations

import operator

import numpy as np

from .common import _fail, _lift, aval_of, normalize_axes, result_dtype, strong, traced


def _ax(name: str, axis, ndim: int) -> int:
    return normalize_axes(axis, ndim, name)[0]


def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    a, b = _lift(a), _lift(b)
    if axis is not None:
        axisa = axisb = axisc = axis
    a = np.moveaxis(a, _ax("np.cross", axisa, aval_of(a).ndim), -1)
    b = np.moveaxis(b, _ax("np.cross", axisb, aval_of(b).ndim), -1)
    if aval_of(a).shape[-1] != 3 or aval_of(b).shape[-1] != 3:
        _fail(
            ValueError,
            f"np.cross: only 3-vectors are supported on traced arrays, got {aval_of(a)} and {aval_of(b)}",
        )
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    c = np.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], axis=-1)
    return np.moveaxis(c, -1, _ax("np.cross", axisc, aval_of(c).ndim))


def kron(a, b):
    a, b = strong(_lift(a)), strong(_lift(b))
    sa, sb = aval_of(a).shape, aval_of(b).shape
    nd = max(len(sa), len(sb))
    sa, sb = (1,) * (nd - len(sa)) + sa, (1,) * (nd - len(sb)) + sb
    # axes interleaved: a's i-th axis, then b's i-th; the product reshaped pairwise
    ia = tuple(d for s in sa for d in (s, 1))
    ib = tuple(d for s in sb for d in (1, s))
    out = np.reshape(a, ia) * np.reshape(b, ib)
    return np.reshape(out, tuple(x * y for x, y in zip(sa, sb)))


def _tri_mask(name: str, m, k: int, upper: bool):
    s = aval_of(m).shape
    if len(s) < 2:
        _fail(ValueError, f"np.{name}: input must be at least 2-D on traced arrays, got {aval_of(m)}")
    below = np.tri(s[-2], s[-1], k - 1 if upper else k, dtype=bool)  # tril(k) keeps j <= i + k
    return ~below if upper else below


def triu(m, k=0):
    return np.where(_tri_mask("triu", m, operator.index(k), True), m, np.zeros((), aval_of(m).dtype))


def tril(m, k=0):
    return np.where(_tri_mask("tril", m, operator.index(k), False), m, np.zeros((), aval_of(m).dtype))


def diag(v, k=0):
    v = _lift(v)
    k = operator.index(k)
    a = aval_of(v)
    if a.ndim == 2:
        return np.diagonal(v, k)
    if a.ndim != 1:
        _fail(ValueError, f"np.diag: input must be 1-D or 2-D, got {a}")
    n = a.shape[0] + abs(k)
    # every element's source in [v, 0]: v's index on the diagonal, else the zero
    idx = np.full((n, n), a.shape[0], np.int64)
    r = np.arange(a.shape[0])
    idx[r + max(-k, 0), r + max(k, 0)] = r
    return np.concatenate([v, np.zeros(1, a.dtype)])[idx]


def diagflat(v, k=0):
    return diag(np.ravel(_lift(v)), k)


def _pairs(name: str, width, ndim: int) -> list[tuple[int, int]]:
    w = np.asarray(width)
    if traced(width) or w.dtype.kind not in "iu" or np.any(w < 0):
        _fail(ValueError, f"np.pad: pad_width must be static non-negative integers, got {width!r}")
    try:
        return [(int(p), int(q)) for p, q in np.broadcast_to(w, (ndim, 2))]
    except ValueError:
        _fail(ValueError, f"np.{name}: pad_width {width!r} does not fit an array of dimension {ndim}")


def _cast(v, dt: np.dtype):
    return v.astype(dt) if traced(v) else np.asarray(v).astype(dt)


def pad(array, pad_width, mode="constant", **kwargs):
    x = strong(_lift(array))
    a = aval_of(x)
    pw = _pairs("pad", pad_width, a.ndim)
    if mode == "constant":
        extra = set(kwargs) - {"constant_values"}
        cv = kwargs.get("constant_values", 0)
        if traced(cv) and aval_of(cv).ndim:
            _fail(
                NotImplementedError, f"np.pad: a traced constant_values must be a scalar, got {aval_of(cv)}"
            )
        # per axis and side (NumPy's forms: a scalar, (before, after), ((before, after), ...))
        table = None if traced(cv) else np.broadcast_to(np.asarray(cv), (a.ndim, 2))
        for ax, widths in enumerate(pw):
            s = aval_of(x).shape
            sides = [
                np.broadcast_to(
                    _cast(cv if table is None else table[ax, i], a.dtype), s[:ax] + (w,) + s[ax + 1 :]
                )
                for i, w in enumerate(widths)
            ]
            x = np.concatenate([sides[0], x, sides[1]], axis=ax)
    elif mode in ("edge", "reflect", "symmetric", "wrap"):
        extra = set(kwargs) - {"reflect_type"}
        if kwargs.get("reflect_type", "even") != "even":
            _fail(NotImplementedError, "np.pad: reflect_type='odd' is not supported")
        for ax, (lo, hi) in enumerate(pw):
            n = a.shape[ax]
            if lo == hi == 0:
                continue
            if n == 0:
                _fail(ValueError, f"np.pad: can't extend empty axis {ax} using mode {mode!r}")
            src = np.pad(np.arange(n), (lo, hi), mode=mode)  # NumPy's own index map
            x = np.take(x, src, axis=ax)
    else:
        _fail(NotImplementedError, f"np.pad: mode={mode!r} is not supported on traced arrays")
    if extra:
        _fail(ValueError, f"np.pad: unsupported keyword arguments for mode {mode!r}: {sorted(extra)}")
    return x


def roll(a, shift, axis=None):
    x = _lift(a)
    if traced(shift):
        _fail(NotImplementedError, "np.roll: shift must be static")
    if axis is None:
        return np.reshape(roll(np.ravel(x), shift, 0), aval_of(x).shape)
    shifts, axes = np.broadcast_arrays(np.asarray(shift), np.asarray(axis))
    total: dict[int, int] = {}
    for s, ax in zip(shifts.ravel(), axes.ravel()):
        ax = _ax("np.roll", int(ax), aval_of(x).ndim)
        total[ax] = total.get(ax, 0) + int(s)
    for ax, s in total.items():
        n = aval_of(x).shape[ax]
        if n == 0 or s % n == 0:
            continue
        s %= n
        lead = (slice(None),) * ax
        x = np.concatenate([x[lead + (slice(n - s, None),)], x[lead + (slice(0, n - s),)]], axis=ax)
    return x


def rot90(m, k=1, axes=(0, 1)):
    m = _lift(m)
    nd = aval_of(m).ndim
    if len(axes) != 2 or nd < 2:
        _fail(
            ValueError,
            f"np.rot90: needs two axes of an array of at least 2 dimensions, got {aval_of(m)}, axes={axes}",
        )
    a0, a1 = (_ax("np.rot90", ax, nd) for ax in axes)
    if a0 == a1:
        _fail(ValueError, f"np.rot90: axes must be different, got {axes}")
    k %= 4
    if k == 0:
        return m
    if k == 2:
        return np.flip(np.flip(m, a0), a1)
    perm = list(range(nd))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 1:
        return np.transpose(np.flip(m, a1), perm)
    return np.flip(np.transpose(m, perm), a1)


def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    if indexing not in ("xy", "ij"):
        _fail(ValueError, "np.meshgrid: valid values for `indexing` are 'xy' and 'ij'")
    xs = [np.ravel(_lift(x)) for x in xi]
    nd = len(xs)
    shapes = [[1] * nd for _ in xs]
    for i, s in enumerate(shapes):
        s[i] = -1
    if indexing == "xy" and nd > 1:
        for s in shapes:
            s[0], s[1] = s[1], s[0]
    out = [np.reshape(x, tuple(s)) for x, s in zip(xs, shapes)]
    if not sparse:
        full = np.broadcast_shapes(*(aval_of(o).shape for o in out))
        out = [
            np.broadcast_to(o, full) + np.zeros((), aval_of(o).dtype) if copy else np.broadcast_to(o, full)
            for o in out
        ]
    return tuple(out)


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *, device=None):
    num = operator.index(num)
    if num < 0:
        _fail(ValueError, f"np.linspace: number of samples, {num}, must be non-negative")
    start, stop = strong(_lift(start)), strong(_lift(stop))
    dt = np.result_type(result_dtype(aval_of(start), aval_of(stop)), float)
    start, stop = _cast(start, dt), _cast(stop, dt)
    div = num - 1 if endpoint else num
    delta = stop - start
    nd = max(aval_of(start).ndim, aval_of(stop).ndim)
    t = np.arange(num, dtype=dt).reshape((-1,) + (1,) * nd)
    step = delta / div if div > 0 else np.full_like(delta, np.nan)
    y = t * step + start if div > 0 else t * delta + start
    if endpoint and num > 1:
        y = np.concatenate([y[:-1], np.broadcast_to(stop, (1,) + aval_of(y).shape[1:])], axis=0)
    if axis != 0:
        y = np.moveaxis(y, 0, axis)
    if dtype is not None:
        y = np.floor(y).astype(dtype) if np.dtype(dtype).kind in "iu" else y.astype(dtype)
    return (y, step) if retstep else y


def full(shape, fill_value, dtype=None, order="C", *, device=None, like=None):
    """np.full with a traced fill value (NumPy cannot dispatch it: routed by path)."""
    if not traced(fill_value):
        return np.full(shape, fill_value, dtype=dtype, order=order)
    v = strong(fill_value)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return np.broadcast_to(v.astype(dtype) if dtype is not None else v, shape) + np.zeros(
        (), dtype or aval_of(v).dtype
    )


def arange(*args, **kwargs):
    """np.arange while tracing: its length would depend on traced endpoints."""
    if any(traced(a) for a in list(args) + list(kwargs.values())):
        _fail(
            TypeError,
            "np.arange with a traced start, stop or step: the number of elements would depend on traced "
            "values; use np.linspace(start, stop, num) or start + step * np.arange(num) with a static num",
        )
    return np.arange(*args, **kwargs)


def atleast_3d(*arys):
    out = []
    for x in arys:
        x = _lift(x)
        s = aval_of(x).shape
        shape = (1, 1, 1) if len(s) == 0 else (1, s[0], 1) if len(s) == 1 else s + (1,) if len(s) == 2 else s
        out.append(np.reshape(x, shape))
    return out[0] if len(out) == 1 else tuple(out)


def column_stack(tup):
    arrays = [_lift(a) for a in tup]
    arrays = [np.reshape(a, (-1, 1)) if aval_of(a).ndim < 2 else a for a in arrays]
    return np.concatenate(arrays, axis=1)


def dstack(tup):
    arrays = [atleast_3d(_lift(a)) for a in tup]
    return np.concatenate(arrays, axis=2)


def array_split(ary, indices_or_sections, axis=0):
    x = _lift(ary)
    nd = aval_of(x).ndim
    ax = _ax("np.array_split", axis, nd)
    n = aval_of(x).shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0:
            _fail(ValueError, "np.array_split: number sections must be larger than 0")
        each, extra = divmod(n, k)
        sizes = [each + 1] * extra + [each] * (k - extra)
        bounds = np.concatenate([[0], np.cumsum(sizes)])
    else:
        bounds = np.concatenate([[0], np.asarray(indices_or_sections, np.int64), [n]])
    lead = (slice(None),) * ax
    return [x[lead + (slice(int(lo), int(hi)),)] for lo, hi in zip(bounds[:-1], bounds[1:])]


class _Concatenator:
    """`np.r_[...]` / `np.c_[...]` with traced items (converted code routes the objects
    here): r_ joins 1-D pieces along axis 0, c_ makes 1-D pieces columns and joins on
    the last axis. Slices become NumPy ranges; string directives are not supported."""

    def __init__(self, name: str, columns: bool):
        self.name, self.columns = name, columns

    def __getitem__(self, key):
        items = key if isinstance(key, tuple) else (key,)
        parts = []
        for it in items:
            if isinstance(it, str):
                _fail(
                    NotImplementedError,
                    f"np.{self.name}[...]: string directives are not supported on traced arrays",
                )
            if isinstance(it, slice):
                step = it.step if it.step is not None else 1
                start = 0 if it.start is None else it.start
                if isinstance(step, complex):
                    it = np.linspace(start, it.stop, int(abs(step)))
                else:
                    it = np.arange(start, it.stop, step)
            x = strong(_lift(it))
            nd = aval_of(x).ndim
            if self.columns:
                x = np.reshape(x, (-1, 1)) if nd < 2 else x
            else:
                x = np.reshape(x, (1,)) if nd == 0 else x
            parts.append(x)
        return np.concatenate(parts, axis=-1 if self.columns else 0)


r_ = _Concatenator("r_", columns=False)
c_ = _Concatenator("c_", columns=True)


FUNCTIONS = {
    np.cross: cross,
    np.kron: kron,
    np.triu: triu,
    np.tril: tril,
    np.diag: diag,
    np.diagflat: diagflat,
    np.pad: pad,
    np.roll: roll,
    np.rot90: rot90,
    np.meshgrid: meshgrid,
    np.linspace: linspace,
    np.atleast_3d: atleast_3d,
    np.column_stack: column_stack,
    np.dstack: dstack,
    np.array_split: array_split,
}
