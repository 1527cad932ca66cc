"""`np.array`, `np.asarray` and NumPy's scalar types called on traced values.

NumPy does not let a library intercept these (they ask for `__array__`, which a
traced value cannot give), so converted code calls them through `fn`, which
hands back the functions below while tracing: a list of traced values becomes a
`np.stack` of them, a scalar type a conversion. Without a traced value in the
argument they call NumPy's own function.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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
        return np.stack([_build(o) for o in obj])
    return obj


def _finish(x, dtype, ndmin: int):
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
