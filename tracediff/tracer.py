"""The tracer: an object that stands in for an array while a function is traced.

A `Tracer` holds the SSA variable of its value and the builder recording it.
Its operators, NumPy protocols (`__array_ufunc__`, `__array_function__`),
indexing and methods hand over to the NumPy front end (`numpy_api`), which
turns them into equations; its conversions to Python values raise `TracerError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .core import Aval, TracediffError, Var
from .provenance import at, user_src

if TYPE_CHECKING:
    from .builder import Builder


class TracerError(TracediffError, TypeError):
    """A traced value was used where a concrete value is needed."""


# The NumPy front end: the `numpy_api` package and its `inplace` module, which the
# operators and methods below call. It is built on this module, so it installs
# itself when imported (`install_front_end`) rather than being imported here.
_api: Any = None
_inplace: Any = None


def install_front_end(api: Any, inplace: Any) -> None:
    global _api, _inplace
    _api, _inplace = api, inplace


def _concrete_error(what: str, t: Tracer) -> TracerError:
    src = user_src()
    return TracerError(
        f"{what} of a traced value {t.aval} needs its concrete value, which is "
        f"not known while tracing{at(src)}. tracediff converts `if`/`while`/`for`/`and`/`or` "
        "on traced values in the functions it traces, but not here (a builtin that compares "
        "traced values: max()/min()/sorted(); a direct call of bool()/float()/int(); a "
        "loop with an `else:` or a `return` inside a `with`/`try` in a loop, or code without readable source): "
        "use np.where(cond, a, b) for a choice per element, "
        "np.maximum/np.minimum/np.clip for bounds, or pass the value as a static argument."
    )


class Tracer:
    """Stands in for an array while a function is traced."""

    # `tvar`: the SSA value the tracer holds now (an in-place update rebinds it);
    # `_alias`: its views' bookkeeping, or its place in its root as a view (numpy_api.inplace)
    __slots__ = ("builder", "tvar", "_alias", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, builder: Builder, var: Var):
        self.builder = builder
        self.tvar = var
        self._alias = None

    @property
    def aval(self) -> Aval:
        return self.tvar.aval

    shape = property(lambda self: self.tvar.aval.shape)
    dtype = property(lambda self: self.tvar.aval.dtype)
    ndim = property(lambda self: len(self.tvar.aval.shape))
    size = property(lambda self: self.tvar.aval.size)
    T = property(lambda self: _api.view_call(np.transpose, self))
    mT = property(lambda self: _api.view_call(np.swapaxes, self, -1, -2))

    def __repr__(self) -> str:
        return f"Tracer<{self.aval}>"

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError(f"len() of a 0-d traced array{at(user_src())}")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError(f"iteration over a 0-d traced array{at(user_src())}")
        return (self[i] for i in range(self.shape[0]))

    def __bool__(self):
        raise _concrete_error("bool() (an `if`, `while`, `and`, `or` or `not`)", self)

    def __float__(self):
        raise _concrete_error("float()", self)

    def __int__(self):
        raise _concrete_error("int()", self)

    def __index__(self):
        src = user_src()
        raise TracerError(
            f"use as an index (operator.index) of a traced value {self.aval} needs its concrete "
            f"value, which is not known while tracing{at(src)}: a slice bound, a shape, a "
            "repeat count or a range() end must be concrete. Index with a traced integer array "
            "instead (x[i + np.arange(3)] for x[i:i + 3]), or pass the value as a static argument."
        )

    def __complex__(self):
        raise _concrete_error("complex()", self)

    def item(self):
        raise _concrete_error(".item()", self)

    def tolist(self):
        raise _concrete_error(".tolist()", self)

    def __getattr__(self, name):
        # only reached for names Tracer does not define
        if not name.startswith("__") and hasattr(np.ndarray, name):
            raise AttributeError(
                f"tracediff does not support the array attribute .{name} on traced arrays{at(user_src())}"
            )
        raise AttributeError(f"'Tracer' object has no attribute {name!r}")

    def __array__(self, dtype=None, copy=None):
        raise TracerError(
            f"a traced value {self.aval} cannot become a NumPy array (np.array/np.asarray, "
            f"a function NumPy cannot dispatch, or a NumPy array indexed with it in code "
            f"tracediff did not convert){at(user_src())}; build arrays from traced values "
            "with np.stack/np.concatenate."
        )

    __hash__ = object.__hash__

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _api.handle_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return _api.handle_function(func, args, kwargs)

    def __getitem__(self, idx):
        return _inplace.getitem_view(self, idx, _api.getitem(self, idx))

    def __setitem__(self, idx, val):
        _inplace.setitem(self, idx, val)

    # in-place operators update the array (and every name and view sharing it)
    def __iadd__(self, o):
        return _inplace.inplace(self, Tracer.__add__, o, "add")

    def __isub__(self, o):
        return _inplace.inplace(self, Tracer.__sub__, o, "subtract")

    def __imul__(self, o):
        return _inplace.inplace(self, Tracer.__mul__, o, "multiply")

    def __itruediv__(self, o):
        return _inplace.inplace(self, Tracer.__truediv__, o, "divide")

    def __ifloordiv__(self, o):
        return _inplace.inplace(self, Tracer.__floordiv__, o, "floor_divide")

    def __imod__(self, o):
        return _inplace.inplace(self, Tracer.__mod__, o, "remainder")

    def __ipow__(self, o):
        return _inplace.inplace(self, Tracer.__pow__, o, "power")

    def __imatmul__(self, o):
        return _inplace.inplace(self, Tracer.__matmul__, o, "matmul")

    def __iand__(self, o):
        return _inplace.inplace(self, Tracer.__and__, o, "bitwise_and")

    def __ior__(self, o):
        return _inplace.inplace(self, Tracer.__or__, o, "bitwise_or")

    def __ixor__(self, o):
        return _inplace.inplace(self, Tracer.__xor__, o, "bitwise_xor")

    # arithmetic: the same ufuncs NumPy would call
    def __add__(self, o):
        return _api.ufunc_call(np.add, self, o)

    def __radd__(self, o):
        return _api.ufunc_call(np.add, o, self)

    def __sub__(self, o):
        return _api.ufunc_call(np.subtract, self, o)

    def __rsub__(self, o):
        return _api.ufunc_call(np.subtract, o, self)

    def __mul__(self, o):
        return _api.ufunc_call(np.multiply, self, o)

    def __rmul__(self, o):
        return _api.ufunc_call(np.multiply, o, self)

    def __truediv__(self, o):
        return _api.ufunc_call(np.true_divide, self, o)

    def __rtruediv__(self, o):
        return _api.ufunc_call(np.true_divide, o, self)

    def __floordiv__(self, o):
        return _api.ufunc_call(np.floor_divide, self, o)

    def __rfloordiv__(self, o):
        return _api.ufunc_call(np.floor_divide, o, self)

    def __mod__(self, o):
        return _api.ufunc_call(np.remainder, self, o)

    def __rmod__(self, o):
        return _api.ufunc_call(np.remainder, o, self)

    def __divmod__(self, o):  # as NumPy's divmod: the floor quotient and the remainder
        return _api.ufunc_call(np.floor_divide, self, o), _api.ufunc_call(np.remainder, self, o)

    def __rdivmod__(self, o):
        return _api.ufunc_call(np.floor_divide, o, self), _api.ufunc_call(np.remainder, o, self)

    def __lshift__(self, o):
        return _api.ufunc_call(np.left_shift, self, o)

    def __rlshift__(self, o):
        return _api.ufunc_call(np.left_shift, o, self)

    def __rshift__(self, o):
        return _api.ufunc_call(np.right_shift, self, o)

    def __rrshift__(self, o):
        return _api.ufunc_call(np.right_shift, o, self)

    def __round__(self, ndigits=None):
        if ndigits is None:  # a Python int, as round() of a NumPy scalar gives
            raise _concrete_error("round() without ndigits (a Python int; np.round keeps it traced)", self)
        return _api.handle_function(np.round, (self, ndigits), {})

    def __pow__(self, o):
        if type(o) is int and o == 2:  # NumPy's `**` computes x ** 2 as np.square (bool: int8)
            return _api.ufunc_call(np.square, self)
        return _api.ufunc_call(np.power, self, o)

    def __rpow__(self, o):
        return _api.ufunc_call(np.power, o, self)

    def __matmul__(self, o):
        return _api.matmul(self, o)

    def __rmatmul__(self, o):
        return _api.matmul(o, self)

    def __neg__(self):
        return _api.ufunc_call(np.negative, self)

    def __pos__(self):
        return _api.ufunc_call(np.positive, self)  # a TypeError for booleans, as in NumPy

    def __abs__(self):
        return _api.ufunc_call(np.absolute, self)

    def __invert__(self):
        return _api.ufunc_call(np.invert, self)

    def __and__(self, o):
        return _api.ufunc_call(np.bitwise_and, self, o)

    def __rand__(self, o):
        return _api.ufunc_call(np.bitwise_and, o, self)

    def __or__(self, o):
        return _api.ufunc_call(np.bitwise_or, self, o)

    def __ror__(self, o):
        return _api.ufunc_call(np.bitwise_or, o, self)

    def __xor__(self, o):
        return _api.ufunc_call(np.bitwise_xor, self, o)

    def __rxor__(self, o):
        return _api.ufunc_call(np.bitwise_xor, o, self)

    def __lt__(self, o):
        return _api.ufunc_call(np.less, self, o)

    def __le__(self, o):
        return _api.ufunc_call(np.less_equal, self, o)

    def __gt__(self, o):
        return _api.ufunc_call(np.greater, self, o)

    def __ge__(self, o):
        return _api.ufunc_call(np.greater_equal, self, o)

    def __eq__(self, o):
        return _api.ufunc_call(np.equal, self, o)

    def __ne__(self, o):
        return _api.ufunc_call(np.not_equal, self, o)

    # methods: the same parameters as ndarray's, checked by the front end (through its
    # table, so a family module's version of a function, e.g. sum with where=, is the method's)
    def _method(self, func, *args, **kw):
        return fresh_object(_api.FUNCTIONS[func](self, *args, **kw), self)

    def sum(self, *args, **kw):
        return self._method(np.sum, *args, **kw)

    def mean(self, *args, **kw):
        return self._method(np.mean, *args, **kw)

    def prod(self, *args, **kw):
        return self._method(np.prod, *args, **kw)

    def max(self, *args, **kw):
        return self._method(np.max, *args, **kw)

    def min(self, *args, **kw):
        return self._method(np.min, *args, **kw)

    def var(self, *args, **kw):
        return self._method(np.var, *args, **kw)

    def std(self, *args, **kw):
        return self._method(np.std, *args, **kw)

    def cumsum(self, *args, **kw):
        return self._method(np.cumsum, *args, **kw)

    def cumprod(self, *args, **kw):
        return self._method(np.cumprod, *args, **kw)

    def argsort(self, *args, **kw):
        return self._method(np.argsort, *args, **kw)

    def sort(self, axis=-1, kind=None, order=None):
        """In place, as ndarray.sort: the name is rebound to the sorted values."""
        _inplace.write_result(self, _api.FUNCTIONS[np.sort](self, axis=axis, kind=kind, order=order), "sort")

    def any(self, *args, **kw):
        return _api.FUNCTIONS[np.any](self, *args, **kw)

    def all(self, *args, **kw):
        return _api.FUNCTIONS[np.all](self, *args, **kw)

    def argmax(self, *args, **kw):
        return _api.argmax(self, *args, **kw)

    def argmin(self, *args, **kw):
        return _api.argmin(self, *args, **kw)

    def round(self, *args, **kw):
        return fresh_object(_api.round_(self, *args, **kw), self)

    def reshape(self, *shape, order="C", copy=None):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = shape[0]
        return _api.view_call(np.reshape, self, shape, order=order)

    def transpose(self, *axes):
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = axes[0]
        return _api.view_call(np.transpose, self, axes or None)

    def swapaxes(self, axis1, axis2):
        return _api.view_call(np.swapaxes, self, axis1, axis2)

    def ravel(self, order="C"):
        return _api.view_call(np.ravel, self, order)

    def flatten(self, order="C"):
        return fresh_object(_api.ravel(self, order), self)

    def squeeze(self, axis=None):
        return _api.view_call(np.squeeze, self, axis)

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        if not copy and np.dtype(dtype) == self.dtype:
            return self  # NumPy returns the array itself: later updates show in both
        return fresh_object(_api.astype(self, dtype), self)

    def clip(self, *args, **kw):
        return fresh_object(_api.clip(self, *args, **kw), self)

    def dot(self, b, out=None):
        return fresh_object(_api.dot(self, b, out), self)

    def take(self, *args, **kw):
        return fresh_object(_api.take(self, *args, **kw), self)

    def repeat(self, repeats, axis=None):
        return fresh_object(_api.repeat(self, repeats, axis=axis), self)

    def copy(self, order="C"):
        return _api.copy(self)

    def conj(self):
        return self.conjugate()

    def conjugate(self):
        # ndarray's method returns a real array itself (np.conjugate, a ufunc, copies)
        return self if self.dtype.kind != "c" else fresh_object(np.conjugate(self), self)

    @property
    def real(self):
        return _api.FUNCTIONS[np.real](self)

    @property
    def imag(self):
        return _api.FUNCTIONS[np.imag](self)


def fresh_object(r: Any, *inputs: Any) -> Any:
    """`r`, as a tracer object of its own if it is one of `inputs`: a copy (astype,
    np.sum over no axis, +x, a join of one array...) must not share in-place
    updates with its source."""
    if isinstance(r, Tracer) and any(r is i for i in inputs):
        return Tracer(r.builder, r.tvar)
    return r
