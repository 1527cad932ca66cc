"""How transformations name and check the arguments they are given: a function's
name, an argument's name, `argnums` as users write it, which leaves are traced
(arrays, floats, device arrays) and the key of each in a signature, and the
leaves tracediff cannot trace."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import numpy as np

from . import pytree
from .core import Aval, TracediffError
from .numpy_api import aval_of
from .tracing import Tracer, TracerError, at, user_src


def _name(fun) -> str:
    return getattr(fun, "__name__", type(fun).__name__)


def _is_int(a) -> bool:
    return isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_))


def argnums_spec(argnums, what: str, name: str = "argnums") -> int | tuple[int, ...]:
    """`argnums` as an int, or a tuple of ints from any sequence of ints (users write lists)."""
    if _is_int(argnums):
        return int(argnums)
    try:
        nums = tuple(argnums)
    except TypeError:
        nums = None
    if nums is None or not all(_is_int(a) for a in nums):
        raise TypeError(f"{what}: {name} must be an int or a sequence of ints, got {argnums!r}")
    return tuple(int(a) for a in nums)


def _normalize_argnums(argnums, n_args: int, fun, what: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for a in nums:
        if not isinstance(a, int) or not -n_args <= a < n_args:
            raise ValueError(
                f"{what}: argnums {argnums!r} is out of range for {_name(fun)} called with "
                f"{n_args} positional argument(s)" + at(user_src())
            )
    return tuple(a % n_args for a in nums)


def _arg_name(fun, i: int) -> str:
    try:
        names = list(inspect.signature(fun).parameters)
        return f"argument {i} ({names[i]!r})" if i < len(names) else f"argument {i}"
    except (TypeError, ValueError):
        return f"argument {i}"


_ARRAY_KINDS = "biufc"  # bool, integers, floats, complex: what a traced array may hold


def _check_leaf(x: Any, fun, i: int | None) -> None:
    """Arguments tracediff cannot keep NumPy's semantics for raise, naming the argument."""
    what = _arg_name(fun, i) if i is not None else "a keyword argument"
    if isinstance(x, (np.matrix, np.ma.MaskedArray)):
        raise TypeError(
            f"{_name(fun)}: {what} is a {type(x).__module__}.{type(x).__name__}, whose operators "
            "differ from ndarray's (matrix products, masks); pass np.asarray(...) of it" + at(user_src())
        )
    if isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind not in _ARRAY_KINDS:
        raise TypeError(
            f"{_name(fun)}: {what} has dtype {x.dtype}; tracediff traces arrays of booleans, "
            "integers, floats and complex numbers" + at(user_src())
        )


class TransformError(TracediffError, TypeError):
    pass


def _is_dynamic(x: Any) -> bool:
    return (
        isinstance(x, (np.ndarray, Tracer, np.generic, float, complex))
        and not isinstance(x, (bool, np.str_, np.bytes_))
    ) or _is_device_array(x)


def _is_device_array(x: Any) -> bool:
    """A GPU array: a Numba device array (or the CUDA simulator's), or any object
    with `__cuda_array_interface__` (CuPy, PyTorch CUDA tensors)."""
    return type(x).__name__ == "FakeCUDAArray" or hasattr(x, "__cuda_array_interface__")


def _device_aval(x: Any) -> Aval:
    if type(x).__name__ == "FakeCUDAArray":
        return Aval(tuple(x.shape), np.dtype(x.dtype))
    cai = x.__cuda_array_interface__
    return Aval(tuple(cai["shape"]), np.dtype(cai["typestr"]))


def static_key(v: Any):
    """A static value as a cache key: values that compare equal but trace to other
    programs differ (2, 2.0, True and np.float64(2.0); 0.0 and -0.0), inside
    tuples, namedtuples, frozensets and value dataclasses too."""
    t = type(v)
    if isinstance(v, (tuple, list)):
        return (t, tuple(static_key(x) for x in v))
    if isinstance(v, frozenset):
        return (t, frozenset(static_key(x) for x in v))
    if isinstance(v, (float, np.floating)):
        return (t, float(v).hex())
    if isinstance(v, (complex, np.complexfloating)):
        return (t, complex(v).real.hex(), complex(v).imag.hex())
    if dataclasses.is_dataclass(v) and not isinstance(v, type) and v.__dataclass_params__.eq:
        return (t, tuple(static_key(getattr(v, f.name)) for f in dataclasses.fields(v)))
    return (t, v)


def _leaf_key(x: Any):
    t = type(x)
    if t is np.ndarray:
        return (x.shape, x.dtype)
    if t is float or t is complex:
        return t
    if t is Tracer:
        a = x.aval
        return (a.shape, a.dtype, a.weak, "t")
    if _is_device_array(x):
        a = _device_aval(x)
        return (a.shape, a.dtype)
    if _is_dynamic(x):
        return (np.shape(x), np.asarray(x).dtype)
    try:
        hash(x)
        return ("static", static_key(x))
    except TypeError:
        raise TransformError(
            f"value of type {type(x).__name__}, which is neither an array nor a hashable "
            "static value (int, bool, str, None, callable)"
        ) from None


def _name_bad_leaf(e: TransformError, fun, args) -> TransformError:
    """`e` (an unusable leaf) told with the argument that holds it."""
    for i, a in enumerate(args):
        for leaf in pytree.flatten(a)[0]:
            try:
                _leaf_key(leaf)
            except TransformError:
                return TransformError(f"{_name(fun)}: {_arg_name(fun, i)} holds a {e}" + at(user_src()))
    return TransformError(f"{_name(fun)}: a keyword argument holds a {e}" + at(user_src()))


def _dyn_aval(x: Any) -> Aval:
    return _device_aval(x) if _is_device_array(x) else aval_of(x)


def updated_arguments(fun, arg_tracers, invars, leaf_arg) -> tuple:
    """((dynamic leaf, its name), ...) for the arguments the traced function updated in
    place (x += 1, x[0] = v, through a view): their tracers hold another value than
    the program's inputs."""
    return tuple(
        (k, _arg_name(fun, leaf_arg[k]) if leaf_arg[k] is not None else "a keyword argument")
        for k, t in enumerate(arg_tracers)
        if t.tvar is not invars[k]
    )


def check_aliasing(updated: tuple, fun, dyn: list) -> None:
    """NumPy lets an argument see an in-place update of another argument that shares
    its memory (f(a, a)); a traced program's arguments are separate values, so such a
    call raises instead of giving another result."""
    for k, name in updated:
        a = dyn[k]
        for j, b in enumerate(dyn):
            if j != k and (
                a is b
                or (
                    isinstance(a, np.ndarray)
                    and isinstance(b, np.ndarray)
                    and np.may_share_memory(a, b)
                    and np.shares_memory(a, b)
                )
            ):
                raise TracerError(
                    f"{_name(fun)} updates {name} in place, and this call passes arrays that share "
                    "memory with it as other arguments: NumPy would let them see the update, which a "
                    "traced program's separate arguments cannot; pass a copy (x.copy())" + at(user_src())
                )
