"""In-place updates of traced arrays, with NumPy's aliasing semantics.

The IR stays functional: `x[idx] = v` becomes `x' = scatter(x, v, flat indices)`
and the tracer object `x` is rebound to `x'`, so every name bound to that
object (`y = x`) sees the update, as with NumPy. A view (`v = x[0]`, `x.T`,
`x.reshape(...)`, ...) is a tracer that remembers its root array, how to derive
its value from the root, and where its elements lie in the root: a write
through a view is a scatter into the root, and every live view of a root is
re-derived after the root changes.

Which results are views is decided by NumPy itself: the same view function is
applied to a *shadow* of the root (an uninitialized uint8 array of its shape,
never touched, so it costs no memory), and the result is a view exactly when
NumPy's result shares the shadow's memory; the shadow's offset and strides
give the flat indices of its elements. Read-only views (`np.broadcast_to`,
`np.diagonal`) stay read-only.

0-d traced values and traced Python numbers behave as NumPy scalars: `s += 1`
rebinds `s` (NumPy's reductions and ufuncs return scalars, which are immutable).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np

from ..builder import Builder, current_builder, innermost_builder, localize
from ..core import Var
from ..prims import indexing as ix
from ..provenance import at, user_src
from ..tracer import Tracer, TracerError, fresh_object  # noqa: F401 (the front end's name for it)
from .common import _fail, aval_of, traced, ufunc_name
from .shapes import broadcast_to, reshape
from .ufuncs import astype


class Root:
    """What a mutable traced array shares with its views."""

    __slots__ = ("shadow", "views")

    def __init__(self, shape):
        self.shadow = np.empty(shape, np.uint8)
        self.views: list[weakref.ref] = []


class View:
    """A tracer's place in its root: the root tracer, the view's shadow, its flat
    indices in the root when they are traced (else None: read from the shadow), and
    how to derive its value from the root's (`derive(root) -> tracer`)."""

    __slots__ = ("root", "shadow", "fmap", "derive")

    def __init__(self, root, shadow, fmap, derive):
        self.root, self.shadow, self.fmap, self.derive = root, shadow, fmap, derive


class Ambiguous:
    """The alias state of a value merged from branches of a traced `if` where it
    was a view or an enclosing array: which array an in-place update should reach
    is chosen at run time, which the functional IR cannot express."""

    __slots__ = ("src",)

    def __init__(self, src: str):
        self.src = src


def _root_info(t: Tracer) -> Root:
    info = t._alias
    if info is None:
        info = t._alias = Root(t.aval.shape)
    return info


def _place(t: Tracer):
    """(root tracer, shadow of t, traced flat map or None, derive from the root)."""
    info = t._alias
    if isinstance(info, View):
        return info.root, info.shadow, info.fmap, info.derive
    if isinstance(info, Ambiguous):
        raise TracerError(
            f"in-place update of {t.aval}, which a traced `if` made a view of another array (or "
            f"that array itself) in some branch{at(info.src)}: which array the update reaches "
            f"would depend on the condition; copy it first (.copy()){at(user_src())}"
        )
    return t, _root_info(t).shadow, None, lambda r: r


def flat_map(t: Tracer):
    """The flat indices into t's root of t's elements: a NumPy array, or a tracer."""
    root, shadow, fmap, _ = _place(t)
    if fmap is not None:
        return fmap
    base = _root_info(root).shadow
    n = base.size
    if shadow.size == 0:
        return np.zeros(shadow.shape, np.int64)
    off = shadow.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    iota = np.arange(n, dtype=np.int64)
    strides = tuple(s * iota.itemsize for s in shadow.strides)
    return np.lib.stride_tricks.as_strided(iota[off:], shadow.shape, strides).copy()


def _with_zero_ints(idx):
    """The index with each traced integer replaced by 0 (for the shadow)."""
    if not isinstance(idx, tuple):
        return 0 if traced(idx) else idx
    return tuple(0 if traced(i) else i for i in idx)


def _has_traced(idx) -> bool:
    return any(traced(i) for i in (idx if isinstance(idx, tuple) else (idx,)))


def track(x, y, shadow_fn: Callable, derive: Callable, traced_map: Callable | None = None):
    """Register `y` (or each of a list) as a view of x's root where NumPy's
    `shadow_fn(shadow of x)` shares memory with the root.

    `derive(value of x)` recomputes y from x; `traced_map(flat map of x)` gives
    y's flat map when x's is traced (or the view op has traced indices)."""
    if not isinstance(x, Tracer) or x.aval.weak:
        return y
    if isinstance(x._alias, Ambiguous):  # a view of it is as ambiguous
        for yk in y if isinstance(y, list) else [y]:
            if isinstance(yk, Tracer) and yk is not x and yk._alias is None:
                yk._alias = x._alias
        return y
    root, shadow, fmap, derive_x = _place(x)
    try:
        sy = shadow_fn(shadow)
    except Exception:  # the front end has accepted what NumPy rejects: not a view
        return y
    ys, sys_ = (y, sy) if isinstance(y, list) else ([y], [sy])
    base = _root_info(root).shadow
    for k, (yk, sk) in enumerate(zip(ys, sys_)):
        if not isinstance(yk, Tracer) or yk is x or yk is root:
            continue
        if not isinstance(sk, np.ndarray) or not np.may_share_memory(sk, base):
            continue
        if yk._alias is not None:  # a front end result that is already someone's view
            continue
        fm = None
        if fmap is not None or traced_map is not None:  # the view's flat map is traced too
            fm = (traced_map or derive)(_as_tracer(x, flat_map(x)))
            if isinstance(fm, list):
                fm = fm[k]
        dk = _derive_chain(derive_x, derive, k if isinstance(y, list) else None)
        yk._alias = View(root, sk, fm, dk)
        _root_info(root).views.append(weakref.ref(yk))
    return y


def _derive_chain(first, then, k):
    if k is None:
        return lambda r: then(first(r))
    return lambda r: then(first(r))[k]


def getitem_view(x, idx, y):
    """Track `y = x[idx]`: basic indexing (traced integers included) gives a view."""
    if not isinstance(x, Tracer):
        return y
    from .indexing import getitem

    if _has_traced(idx):
        return track(
            x,
            y,
            lambda s: s[_with_zero_ints(idx)],
            lambda v: getitem(v, idx),
            lambda fm: getitem(fm, idx),
        )
    return track(x, y, lambda s: s[idx], lambda v: getitem(v, idx))


# --- writes ---------------------------------------------------------------------------


def _check_owner(root: Tracer, *others) -> None:
    """The update happens in the innermost trace: a root of an enclosing trace is
    moved into it when that trace is a region (a traced branch or loop body)."""
    innermost_builder((root, *others))  # raises for a leaked value
    if root.builder is not current_builder():
        localize(root)


def _setitem_value(v, shape, dtype, what: str):
    """The value stored by `x[idx] = v`: cast (unsafely, as NumPy's setitem does)
    and broadcast to the indexed shape."""
    a = aval_of(v)
    vs = a.shape
    while len(vs) > len(shape) and vs[0] == 1:  # NumPy drops leading unit axes of the value
        vs = vs[1:]
    try:
        np.broadcast_shapes(vs, shape)
        if np.broadcast_shapes(vs, shape) != tuple(shape):
            raise ValueError
    except ValueError:
        _fail(
            ValueError,
            f"{what}: could not broadcast input array from shape {a.shape} into shape {tuple(shape)}",
        )
    v = astype(v, dtype) if traced(v) else np.asarray(v).astype(dtype)
    if vs != a.shape:
        v = reshape(v, vs)
    return broadcast_to(v, tuple(shape)) if vs != tuple(shape) else v


def _writable(t: Tracer, what: str) -> None:
    info = t._alias
    if isinstance(info, View) and not info.shadow.flags.writeable:
        _fail(ValueError, f"{what}: assignment destination is read-only")


def _rebind(root: Tracer, new: Tracer) -> None:
    """The root now holds `new`; its live views follow."""
    root.tvar = new.tvar
    refresh_views(root)


def refresh_views(root: Tracer) -> None:
    info = root._alias
    if info is None:
        return
    alive = []
    for ref in info.views:
        v = ref()
        if v is None or (not v.builder.alive and v.builder is not root.builder):
            # (a view made in a trace that has ended, a loop body's `row` of the array it
            # iterates: derived from that trace's counter, and no name can reach it)
            continue
        alive.append(ref)
        v.builder = root.builder
        v.tvar = v._alias.derive(root).tvar
    info.views = alive


def restore_localized(b: Builder) -> list[tuple[Tracer, Var]]:
    """Put back the roots `b` took over (`builder.localize`), their views with
    them; returns (root, its value in b) for each."""
    out = []
    for root, builder, var in b.localized.values():
        out.append((root, root.tvar))
        root.builder, root.tvar = builder, var
        refresh_views(root)
    b.localized = {}
    return out


def store(t: Tracer, fsel, value, what: str, accumulate: bool = False) -> None:
    """Store `value` (already of the indexed shape and t's dtype) at the root
    positions `fsel`; with `accumulate`, add it there (np.add.at)."""
    root = _place(t)[0]
    _check_owner(root, value, fsel)
    if traced(value) and value.builder is not root.builder:
        value = astype(value, value.dtype)  # brings an enclosing trace's value into this one
    if not traced(fsel):
        fsel = np.array(fsel, dtype=np.int64)  # contiguous; 0-d stays 0-d
        if (
            not accumulate
            and fsel.size == root.aval.size
            and np.array_equal(fsel.ravel(), np.arange(fsel.size))
        ):
            _rebind(root, reshape(_as_tracer(root, value), root.aval.shape))
            return
    if accumulate:
        new = ix.scatter_accum(root, value, fsel)
    else:
        unique = fsel.size <= 1 if traced(fsel) else np.unique(fsel).size == fsel.size
        new = ix.scatter(root, value, fsel, unique=unique)
    _rebind(root, new)


def _as_tracer(t: Tracer, v):
    """`v` as a value of t's trace (a constant is staged as a copy)."""
    if traced(v):
        return v
    from ..prims.elementwise import copy_p

    return t.builder.emit(copy_p, [np.array(v)], {})[0]


def _scalar_path(t: Tracer, idx):
    """`t[idx]` where idx holds only integers (traced or not) and `:`: its root flat
    indices by arithmetic (offset + i * stride), without an index array per store."""
    from .indexing import _normalize_index

    entries = idx if isinstance(idx, tuple) else (idx,)
    if len(entries) > t.aval.ndim or not any(traced(e) for e in entries):
        return None
    for e in entries:
        if not (
            (traced(e) and e.aval.shape == () and e.dtype.kind in "iu")
            or (isinstance(e, (int, np.integer)) and not isinstance(e, (bool, np.bool_)))
            or (isinstance(e, slice) and e == slice(None))
        ):
            return None
    root, shadow, fmap, _ = _place(t)
    if fmap is not None:
        return None
    static = tuple(0 if traced(e) else e for e in entries)
    try:
        sub = shadow[static]
    except IndexError as err:
        _fail(IndexError, str(err))
    probe = View(root, sub if isinstance(sub, np.ndarray) else shadow[static + (Ellipsis,)], None, None)
    holder = Tracer.__new__(Tracer)
    holder._alias = probe
    base = flat_map(holder)
    f = base
    for ax, e in enumerate(entries):
        if traced(e):
            f = f + _normalize_index(e, t.aval.shape[ax], ax) * int(shadow.strides[ax])
    return f


def _selected(t: Tracer, idx, what: str):
    """The root flat indices of `t[idx]`."""
    from .indexing import getitem

    fast = _scalar_path(t, idx)
    if fast is not None:
        return fast
    fm = flat_map(t)
    if traced(fm) or _has_traced(idx):
        if not traced(fm):
            fm = _as_tracer(t, fm)
        return getitem(fm, idx)
    try:
        return np.asarray(fm[idx])
    except IndexError as e:
        _fail(IndexError, f"{what}: {e}")


def setitem(t: Tracer, idx, value) -> None:
    """`t[idx] = value`."""
    what = f"assignment to a traced array {t.aval}"
    _writable(t, what)
    mask = idx[0] if isinstance(idx, tuple) and len(idx) == 1 else idx
    if traced(mask) and mask.dtype == np.dtype(bool) and mask.aval.shape == t.aval.shape:
        # x[mask] = v with a traced mask: a fixed-shape select (v one value, as NumPy needs)
        if aval_of(value).size != 1:
            _fail(
                TracerError,
                f"{what}: x[mask] = v with a traced mask needs one value v (the number of selected "
                "elements is known only at run time); use np.where(mask, v, x)",
            )
        from .ufuncs import where

        v = astype(value, t.dtype) if traced(value) else np.asarray(value).astype(t.dtype)
        v = reshape(v, ()) if aval_of(v).shape != () else v
        store(t, flat_map(t), where(mask, v, t), what)
        return
    fsel = _selected(t, idx, what)
    value = _setitem_value(value, aval_of(fsel).shape, t.dtype, what)
    store(t, fsel, value, what)


def setitem_where(t: Tracer, mask, values) -> None:
    """t[mask] = values[mask] (values of t's shape): one select, written into t."""
    from .ufuncs import where

    what = f"assignment to a traced array {t.aval}"
    _writable(t, what)
    v = astype(values, t.dtype) if traced(values) else np.asarray(values).astype(t.dtype)
    store(t, flat_map(t), where(mask, v, t), what)


def inplace(t: Tracer, op: Callable, o, name: str):
    """`t op= o` (`name` the ufunc's): a traced array is updated in place; a 0-d
    value or a traced Python number is rebound, as NumPy scalars are."""
    r = op(t, o)
    if not traced(t) or t.aval.weak or t.aval.ndim == 0:
        return r
    write_result(t, r, name)
    return t


def write_result(t: Tracer, r, name: str) -> None:
    """Write a ufunc's result into `t` as `out=t` does (casting 'same_kind')."""
    a = aval_of(r)
    if not np.can_cast(a.dtype, t.dtype, "same_kind"):
        _fail(
            TypeError,
            f"Cannot cast ufunc '{name}' output from {a.dtype!r} to {t.dtype!r} with casting rule 'same_kind'",
        )
    if a.shape != t.aval.shape:
        try:
            ok = np.broadcast_shapes(a.shape, t.aval.shape) == t.aval.shape
        except ValueError:
            ok = False
        if not ok:
            _fail(
                ValueError,
                f"non-broadcastable output operand with shape {t.aval.shape} doesn't match the "
                f"broadcast shape {np.broadcast_shapes(a.shape, t.aval.shape) if _bc(a, t) else a.shape}",
            )
    _writable(t, f"np.{name}(..., out=...)")
    fsel = flat_map(t)
    value = _setitem_value(r, t.aval.shape, t.dtype, f"np.{name}")
    store(t, fsel, value, f"np.{name}")


def _bc(a, t) -> bool:
    try:
        np.broadcast_shapes(a.shape, t.aval.shape)
        return True
    except ValueError:
        return False


def add_at(ufunc, t, idx, v):
    """`np.add.at(t, idx, v)` / `np.subtract.at`: unbuffered accumulation."""
    name = f"{ufunc_name(ufunc)}.at"
    if not traced(t):
        _fail(
            TracerError,
            f"{name} writes traced values into a NumPy array; make the array traced first "
            "(e.g. np.zeros_like of a traced value) or build the result with np.where",
        )
    if ufunc not in (np.add, np.subtract):
        _fail(NotImplementedError, f"{name} is not supported (np.add.at and np.subtract.at are)")
    _writable(t, name)
    fsel = _selected(t, idx, name)
    shape = aval_of(fsel).shape
    av = aval_of(v)
    loop = np.result_type(t.dtype, 0.0 if av.weak and av.dtype.kind == "f" else (0 if av.weak else av.dtype))
    if not np.can_cast(loop, t.dtype, "same_kind"):
        _fail(TypeError, f"{name}: cannot cast the {loop} result into {t.aval} with casting rule 'same_kind'")
    if ufunc is np.subtract:
        v = np.negative(v)  # x - v is x + (-v), exactly
    if loop != t.dtype:
        # NumPy adds in the wider dtype, then rounds: element by element, as below
        uniq = not traced(fsel) and np.unique(fsel).size == fsel.size
        if not uniq:
            _fail(
                NotImplementedError,
                f"{name} with a {av} value into {t.aval} at repeated or traced indices; cast the "
                "value to the array's dtype first",
            )
        old = ix.gather(_place(t)[0], fsel)
        new = astype(broadcast_to(astype(old, loop) + v, shape), t.dtype)
        store(t, fsel, new, name)
        return
    value = _setitem_value(v, shape, t.dtype, name)
    store(t, fsel, value, name, accumulate=True)
