"""In-place stores and calls in converted code: the name being stored into is
rebound to what these return (a NumPy array that receives traced values becomes
traced)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..builder import current_builder, innermost_builder, is_tracing
from ..provenance import at, user_src
from ..tracer import Tracer, TracerError
from .arrays import traced_form
from .regions import Undefined

NEVER = False  # `if _td_.NEVER: x = None` binds x in the function for `nonlocal`


def load(thunk: Callable, name: str):
    """A local's value, or Undefined when it is not assigned yet."""
    try:
        return thunk()
    except NameError:
        return Undefined(name)


# the converter of user functions: pyconv sets it when it loads (pyconv emits the
# code that calls `fn`, so it sits above this module and is loaded first)
CONVERT = [lambda f: f]


def fn(f):
    """A callee in converted code: a user function is converted first (lazily);
    `np.array`, `np.asarray` and NumPy's scalar types take traced values."""
    if is_tracing():
        form = traced_form(f)
        return form if form is not None else CONVERT[0](f)
    return f


def _lift_array(arr: np.ndarray, *traced_with) -> Tracer:
    """A NumPy array of the function that receives traced values: a traced copy
    of it, in the innermost trace (the name is rebound to it)."""
    import sys

    # a view of an array someone else holds (z and v = z[1:]): the update must reach z,
    # which a name-by-name rebinding cannot do
    if arr.base is not None and sys.getrefcount(arr.base) > 2:
        raise TracerError(
            f"storing traced values into a view of a NumPy array{at(user_src())}: the update would "
            "have to reach the array it views, which stays a NumPy array; make that array traced "
            "first (e.g. z = np.zeros(n) + 0 * x) or build the result with np.concatenate/np.where"
        )
    if arr.dtype.kind not in "biuf":
        raise TracerError(
            f"cannot store traced values into a NumPy array of dtype {arr.dtype}{at(user_src())}"
        )
    return _traced_copy(arr, traced_with)


def _traced_copy(arr: np.ndarray, traced_with) -> Tracer:
    """A traced copy of a NumPy array, in the innermost trace of `traced_with`."""
    from ..prims.elementwise import copy_p

    b = innermost_builder(traced_with) or current_builder()
    return b.emit(copy_p, [np.array(arr, copy=True)], {})[0]


# what converted code passes an index with slices through: `_td_.index[1:, 0]` is
# (slice(1, None), 0), and prints as Python (a bare `1:` argument compiles from an
# AST, but `td.dump` shows the converted source, which must read as Python)
index = np.s_


def getitem(obj, idx):
    """`obj[idx]` in converted code: a NumPy array indexed by traced values (a
    lookup table, an embedding matrix) is read from a traced copy, which NumPy's
    own indexing cannot do (it would turn the traced index into an array). Only
    where NumPy's result is a copy too: a view (a row picked by a traced scalar)
    could be written through to the NumPy array, which the copy would not see."""
    if isinstance(obj, np.ndarray) and is_tracing():
        tr = _traced_in(idx)
        if tr:
            if obj.dtype.kind not in "biufc" or not _numpy_copies(obj, idx):
                raise TracerError(
                    f"indexing a NumPy array {obj.dtype}{list(obj.shape)} with traced values"
                    f"{at(user_src())}: supported where NumPy's result is a copy (an integer "
                    "array index, or one scalar index per axis) of a number array; for a row"
                    " picked by a traced scalar i use a[np.atleast_1d(i)][0]"
                )
            obj = _traced_copy(obj, tr)
    return obj[idx]


def _numpy_copies(obj: np.ndarray, idx) -> bool:
    """Is NumPy's obj[idx] a new array rather than a view of obj: an advanced
    index (an array of one or more dimensions), or a scalar index for every axis?"""
    parts = idx if isinstance(idx, tuple) else (idx,)
    for p in parts:
        if isinstance(p, list) or (isinstance(p, (Tracer, np.ndarray)) and p.ndim > 0):
            return True
    plain = all(p is not None and p is not Ellipsis and not isinstance(p, slice) for p in parts)
    return plain and len(parts) == obj.ndim


def _traced_in(*xs) -> list:
    out = []
    for x in xs:
        if isinstance(x, Tracer):
            out.append(x)
        elif isinstance(x, tuple):
            out.extend(_traced_in(*x))
    return out


def _named(held_by: str | None) -> None:
    """A NumPy array that receives traced values becomes a traced copy, which only a
    local name can hold: one held by an attribute or a container entry (which must
    not keep a traced value) is refused, not updated in a copy that is dropped."""
    if held_by is not None:
        raise TracerError(
            f"storing traced values into the NumPy array held by {held_by}{at(user_src())}: "
            "tracediff keeps such stores only in arrays named by a local variable; "
            f"write `buf = {held_by}` before the stores and use `buf` after them"
        )


def setitem(obj, idx, value, held_by: str | None = None):
    """`obj[idx] = value`; returns what the name should hold afterwards. `held_by`:
    the expression that holds obj when it is no plain name (`self.buf`, `d["u"]`)."""
    if isinstance(obj, np.ndarray) and is_tracing():
        tr = _traced_in(value, idx)
        if tr:
            _named(held_by)
            obj = _lift_array(obj, *tr)
    obj[idx] = value
    return obj


_AUG = {
    "Add": "__iadd__",
    "Sub": "__isub__",
    "Mult": "__imul__",
    "Div": "__itruediv__",
    "FloorDiv": "__ifloordiv__",
    "Mod": "__imod__",
    "Pow": "__ipow__",
    "MatMult": "__imatmul__",
    "BitAnd": "__iand__",
    "BitOr": "__ior__",
    "BitXor": "__ixor__",
    "LShift": "__ilshift__",
    "RShift": "__irshift__",
}


def aug(obj, op: str, value):
    """`obj op= value`; returns what the name holds afterwards."""
    import operator

    if isinstance(obj, np.ndarray) and obj.ndim > 0 and is_tracing() and _traced_in(value):
        obj = _lift_array(obj, *_traced_in(value))
    fn = getattr(operator, _AUG[op].strip("_"))
    return fn(obj, value)


_BINARY = {"Add": "add", "Sub": "sub", "Mult": "mul", "Div": "truediv", "FloorDiv": "floordiv", "Mod": "mod",
           "Pow": "pow", "MatMult": "matmul", "BitAnd": "and_", "BitOr": "or_", "BitXor": "xor",
           "LShift": "lshift", "RShift": "rshift"}  # fmt: skip


def aug_item(obj, idx, op: str, value, held_by: str | None = None):
    """`obj[idx] op= value`; returns what the name holds afterwards."""
    import operator

    mask = idx[0] if isinstance(idx, tuple) and len(idx) == 1 else idx
    if (
        isinstance(obj, Tracer)
        and isinstance(mask, Tracer)
        and mask.dtype == np.dtype(bool)
        and mask.aval.shape == obj.aval.shape
    ):
        # x[mask] op= v with a traced mask: a fixed-shape select of x op v
        from ..numpy_api.inplace import setitem_where

        setitem_where(obj, mask, getattr(operator, _BINARY[op])(obj, value))
        return obj
    if isinstance(obj, np.ndarray) and is_tracing():
        tr = _traced_in(idx, value)
        if tr:  # obj becomes traced (as setitem makes it): read and update the traced copy
            _named(held_by)
            obj = _lift_array(obj, *tr)
    return setitem(obj, idx, aug(obj[idx], op, value))


def ufunc_at(ufunc, obj, *args):
    """`ufunc.at(obj, ...)`; returns what the name holds afterwards."""
    if isinstance(obj, np.ndarray) and is_tracing():
        tr = _traced_in(*args)
        if tr:
            obj = _lift_array(obj, *tr)
    ufunc.at(obj, *args)
    return obj


def call_out(fn: Callable, out):
    """`f(..., out=out)`; returns what the name holds afterwards."""
    if isinstance(out, np.ndarray) and is_tracing():
        try:
            fn(out)
            return out
        except TracerError:
            out = _lift_array(out)
    fn(out)
    return out
