"""`np.array`, `np.asarray` and NumPy's scalar types called on traced values.

NumPy does not let a library intercept these (they ask for `__array__`, which a
traced value cannot give), so converted code calls them through `fn`, which
hands back the functions below while tracing: a list of traced values becomes a
`np.stack` of them, a scalar type a conversion. Without a traced value in the
argument they call NumPy's own function.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from ..provenance import at, user_src
from ..tracer import Tracer


def _has_traced(obj: Any) -> bool:
    if isinstance(obj, Tracer):
        return True
    if isinstance(obj, (list, tuple)):
        return any(_has_traced(o) for o in obj)
    return False


def _build(obj: Any):
    """Nested lists/tuples of traced values and numbers as one traced array."""
    if isinstance(obj, (list, tuple)) and _has_traced(obj):
        parts = [_build(o) for o in obj]
        shapes = {np.shape(p) for p in parts}
        if len(shapes) > 1:
            raise ValueError(
                "making an array of a sequence holding traced values: the sequence is ragged "
                f"(inhomogeneous shapes {sorted(shapes, key=len)}), as NumPy would also refuse"
                + at(user_src())
            )
        return np.stack(parts)
    return obj


def _finish(x, dtype, ndmin: int):
    if isinstance(x, Tracer) and x.aval.weak:  # a traced Python number: NumPy's 0-d array is strong
        from ..numpy_api.common import strong

        x = strong(x)
    if dtype is not None:
        x = np.asarray(x).astype(dtype) if not isinstance(x, Tracer) else x.astype(dtype)
    if ndmin and np.ndim(x) < ndmin:
        x = np.reshape(x, (1,) * (ndmin - np.ndim(x)) + np.shape(x))
    return x


def array(obj, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, like=None):
    if not _has_traced(obj):
        return np.array(obj, dtype=dtype, copy=copy, order=order, subok=subok, ndmin=ndmin)
    x = _finish(_build(obj), dtype, ndmin)
    return np.copy(x) if copy and x is obj else x  # (np.array copies: no alias of obj)


def asarray(obj, dtype=None, order=None, *, device=None, copy=None, like=None):
    if not _has_traced(obj):
        return np.asarray(obj, dtype=dtype, order=order, copy=copy)
    x = _finish(_build(obj), dtype, 0)
    return np.copy(x) if copy and x is obj else x


def _scalar_type(t):
    def convert(x=0, /):
        if not _has_traced(x):
            return t(x)
        return _build(x).astype(t)

    convert.__name__ = t.__name__
    return convert


# what `fn` hands back while tracing, in place of NumPy's function
TRACED_FORMS = {
    np.array: array,
    np.asarray: asarray,
    np.asanyarray: asarray,
    np.ascontiguousarray: asarray,
    **{t: _scalar_type(t) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)},
}


# library functions NumPy cannot dispatch on traced values (scipy.stats methods,
# scipy.special.logsumexp, ...), registered by the front end by dotted path and
# resolved once the user's program has imported their module: resolving never
# imports (importing scipy.stats and scipy.signal costs a first call 1-2 s)
_BY_PATH: dict[str, Callable] = {}
_pending: list[str] = []  # registered paths not resolved yet
_seen_modules = [0]  # len(sys.modules) at the last attempt: nothing new, nothing to do


def register_form(path: str, form: Callable) -> None:
    """While tracing, calls of the object at `path` ("scipy.stats.norm.logpdf")
    go to `form`, which takes traced values."""
    _BY_PATH[path] = form
    _pending.append(path)


def _lookup(path: str) -> Any:
    """The object at `path` if its modules are imported, else None (imports nothing:
    SciPy's lazy module `__getattr__` would import a submodule on `getattr`)."""
    parts = path.split(".")
    obj: Any = sys.modules.get(parts[0])
    name = parts[0]
    for part in parts[1:]:
        if obj is None:
            return None
        name = f"{name}.{part}"
        if isinstance(obj, types.ModuleType):
            obj = sys.modules.get(name) or obj.__dict__.get(part)
        else:
            obj = getattr(obj, part, None)
    return obj


def _resolve() -> None:
    if len(sys.modules) == _seen_modules[0]:
        return
    _seen_modules[0] = len(sys.modules)
    for path in list(_pending):
        obj = _lookup(path)
        if obj is not None:
            TRACED_FORMS[obj] = _BY_PATH[path]
            _pending.remove(path)


# NumPy functions that take a sequence of arrays as such (the others make one
# array of a list argument, which NumPy cannot do with traced values in it)
_SEQUENCE_FUNCS = {
    np.concatenate,
    np.stack,
    np.hstack,
    np.vstack,
    np.dstack,
    np.column_stack,
    np.row_stack if hasattr(np, "row_stack") else np.vstack,
    np.block,
    np.einsum,
    np.meshgrid,
    np.broadcast_arrays,
    np.select,
    np.piecewise,
    np.linalg.multi_dot,
}


def _stacking_lists(f: Callable) -> Callable:
    """f with list/tuple arguments holding traced values made arrays first
    (`np.mean([a, b])`: NumPy would ask each traced value for `__array__`)."""

    def call(*args, **kwargs):
        args = tuple(_build(a) if isinstance(a, (list, tuple)) else a for a in args)
        return f(*args, **kwargs)

    call.__name__ = getattr(f, "__name__", "f")
    call.__wrapped__ = f
    return call


_STACKING: dict = {}


def traced_form(f: Any) -> Callable | None:
    """What runs in place of `f` on traced values, or None (f itself)."""
    try:
        form = TRACED_FORMS.get(f)
    except TypeError:  # (an unhashable callable)
        return None
    if form is None and _pending and _is_library(f):
        _resolve()
        form = TRACED_FORMS.get(f)
    if form is None and hasattr(f, "_implementation") and f not in _SEQUENCE_FUNCS:
        # a NumPy function dispatching through __array_function__
        form = _STACKING.get(f)
        if form is None:
            form = _STACKING[f] = _stacking_lists(f)
    return form


def _is_library(f: Any) -> bool:
    mod = getattr(f, "__module__", None) or type(getattr(f, "__self__", None)).__module__
    return isinstance(mod, str) and mod.split(".")[0] in {p.split(".")[0] for p in _BY_PATH}
