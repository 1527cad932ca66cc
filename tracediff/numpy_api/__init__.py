"""The NumPy front end: NumPy functions and ufuncs on tracers, as primitives.

Broadcasting and dtype promotion (NEP 50) are resolved here, once, into
explicit `convert` and `broadcast` equations; primitives always see operands
of equal shape and dtype. Promotion asks NumPy itself (`ufunc.resolve_dtypes`,
`np.result_type`), so traced dtypes match what NumPy computes.

One module per family: `common` (avals, promotion, operands, axes, errors),
`ufuncs`, `shapes`, `reductions`, `indexing`, `contractions`, each importing
only the ones before it; this module dispatches NumPy's protocols
(`__array_ufunc__`, `__array_function__`) to them.
"""

from __future__ import annotations

import inspect
import sys

import numpy as np

from ..core import Aval
from ..tracer import Tracer, TracerError, install_front_end
from . import fft, inplace, linalg, misc, more, special
from .common import (
    _fail,
    _lift,
    _no_out,
    aval_of,
    normalize_axes,
    prepare,  # noqa: F401  (the Tracer's and api's)
    result_dtype,
    strong,
    ufunc_name,
)
from .contractions import (
    dot,
    einsum,
    inner,
    matmul,
    outer,
    tensordot,
    vdot,
)
from .indexing import (
    diagonal,
    getitem,  # noqa: F401  (the Tracer's and api's)
    repeat,
    take,
    take_along_axis,
    trace,
)
from .reductions import (
    _acc_dtype,
    argmax,
    argmin,
    cumsum,
    max,
    mean,
    min,
    norm,
    prod,
    round_,
    std,
    sum,
    var,
)
from .shapes import (
    atleast_1d,
    atleast_2d,
    broadcast_to,
    concatenate,
    diff,
    expand_dims,
    flip,
    hstack,
    moveaxis,
    ndim,
    ravel,
    reshape,
    shape,
    size,
    split,
    squeeze,
    stack,
    swapaxes,
    tile,
    transpose,
    vstack,
)
from .ufuncs import (  # noqa: F401  (the Tracer's and api's)
    UFUNC_COMPOSITES,
    UFUNCS,
    _trunc,
    angle,
    astype,
    clip,
    copy,
    full_like,
    imag,
    ones_like,
    real,
    stop_gradient,
    ufunc_api,
    ufunc_call,
    where,
    zeros_like,
)


def handle_ufunc(ufunc, method, inputs, kwargs):
    # a ufunc method's result is a new array, never an operand's tracer (np.add.reduce
    # over no axis; __call__ through ufunc_call); with out=, that array
    if kwargs.get("out") is not None:
        return _ufunc_method(ufunc, method, inputs, kwargs)
    return inplace.fresh_object(_ufunc_method(ufunc, method, inputs, kwargs), *inputs)


def _ufunc_method(ufunc, method, inputs, kwargs):
    if method == "__call__":
        out = kwargs.pop("out", None)
        r = matmul(*inputs, **kwargs) if ufunc is np.matmul else ufunc_api(ufunc, *inputs, **kwargs)
        return r if out is None else _write_out(ufunc, out, r)
    if method == "at":
        return inplace.add_at(ufunc, *inputs)
    name = f"{ufunc_name(ufunc)}.{method}"
    if method in ("reduce", "accumulate") and aval_of(inputs[0]).ndim == 0:
        if method == "accumulate":
            _fail(TypeError, f"{name}: cannot accumulate on a scalar")
        if kwargs.get("axis", 0) in (0, -1, None, (), (0,)):  # NumPy reduces a scalar to itself
            x = strong(_lift(inputs[0]))
            if ufunc in (np.add, np.multiply):  # in the accumulator dtype (bool, small ints: int64)
                x = astype(x, _acc_dtype("sum", aval_of(x).dtype))
            return x
    family = more.UFUNC_METHODS.get((ufunc, method))  # (np.maximum.accumulate...)
    if family is not None:
        return family(*inputs, **kwargs)
    if method == "reduce":
        red = {np.add: sum, np.multiply: prod, np.maximum: max, np.minimum: min}.get(ufunc)
        if red is not None:
            kwargs = {"axis": 0, **kwargs}
            if red in (max, min) and kwargs.pop("dtype", None) is not None:
                _fail(NotImplementedError, f"{name}: dtype= is not supported")
            return red(*inputs, **kwargs)
    if method == "accumulate" and ufunc is np.add:
        return cumsum(*inputs, **{"axis": 0, **kwargs})
    if method == "outer" and (ufunc in UFUNCS or ufunc in UFUNC_COMPOSITES):
        x, y = (strong(_lift(v)) for v in inputs)  # NumPy makes arrays of the operands
        ax, ay = aval_of(x), aval_of(y)
        return ufunc_api(ufunc, reshape(x, ax.shape + (1,) * ay.ndim), y, **kwargs)
    _fail(NotImplementedError, f"tracediff does not support {ufunc_name(ufunc)}.{method}")


def _any_all(red, name, identity: bool):
    def fn(x, axis=None, out=None, keepdims=False, *, where=None):
        _no_out(name, out)
        truth = ufunc_api(np.not_equal, _lift(x), 0)  # NaN counts as true, as in NumPy
        if where is not None:  # left-out elements count as the identity
            truth = np.where(where, truth, identity)
        # the identity: any() of nothing is False, all() of nothing True
        t = aval_of(truth)
        axes = normalize_axes(axis, t.ndim, name)
        if any(t.shape[a] == 0 for a in axes):
            kept = [1 if i in axes else d for i, d in enumerate(t.shape)]
            return np.full(tuple(d for i, d in enumerate(kept) if keepdims or i not in axes), identity)
        return red(truth, axis=axis, keepdims=keepdims)

    return fn


FUNCTIONS = {
    np.sum: sum,
    np.prod: prod,
    np.max: max,
    np.amax: max,
    np.min: min,
    np.amin: min,
    np.mean: mean,
    np.any: _any_all(max, "np.any", False),
    np.all: _any_all(min, "np.all", True),
    np.var: var,
    np.std: std,
    np.argmax: argmax,
    np.argmin: argmin,
    np.cumsum: cumsum,
    np.linalg.norm: norm,
    np.reshape: reshape,
    np.ravel: ravel,
    np.transpose: transpose,
    np.swapaxes: swapaxes,
    np.moveaxis: moveaxis,
    np.expand_dims: expand_dims,
    np.squeeze: squeeze,
    np.broadcast_to: broadcast_to,
    np.atleast_1d: atleast_1d,
    np.atleast_2d: atleast_2d,
    np.concatenate: concatenate,
    np.stack: stack,
    np.hstack: hstack,
    np.vstack: vstack,
    np.flip: flip,
    np.fliplr: lambda x: flip(x, 1),
    np.flipud: lambda x: flip(x, 0),
    np.tile: tile,
    np.repeat: repeat,
    np.diff: diff,
    np.split: split,
    np.matmul: matmul,
    np.dot: dot,
    np.vdot: vdot,
    np.inner: inner,
    np.outer: outer,
    np.tensordot: tensordot,
    np.einsum: einsum,
    np.trace: trace,
    np.diagonal: diagonal,
    np.take: take,
    np.take_along_axis: take_along_axis,
    np.where: where,
    np.clip: clip,
    np.zeros_like: zeros_like,
    np.ones_like: ones_like,
    np.full_like: full_like,
    np.copyto: lambda dst, src, casting="same_kind", where=True: _fail(
        TracerError,
        "np.copyto writes a traced value into a NumPy array (np.full_like(numpy_array, traced) does "
        "this); use np.full_like(traced_array, value) or np.broadcast_to(value, shape) instead",
    ),
    np.empty_like: zeros_like,
    np.shape: shape,
    np.ndim: ndim,
    np.size: size,
    np.round: round_,
    np.fix: lambda x, out=None: (_no_out("np.fix", out), _trunc(strong(x)))[1],
    np.around: round_,
    np.copy: lambda x, order="K", subok=False: copy(x),
    np.real: real,
    np.imag: imag,
    np.angle: angle,
    np.iscomplexobj: lambda x: aval_of(x).dtype.kind == "c",
    np.isrealobj: lambda x: aval_of(x).dtype.kind != "c",
    np.real_if_close: lambda a, tol=100: (
        a
        if aval_of(a).dtype.kind != "c"
        else _fail(
            TracerError,
            "np.real_if_close of a traced complex array: its result's dtype depends on the values; "
            "use np.real(a) where the imaginary parts are known to be negligible",
        )
    ),
    np.result_type: lambda *xs: result_dtype(
        *(aval_of(x) if not isinstance(x, (np.dtype, type)) else Aval((), np.dtype(x)) for x in xs)
    ),
}


# the families of functions beyond the core (each module: FUNCTIONS, VIEW_FUNCS)
for _family in (linalg, special, more, fft, misc):
    FUNCTIONS.update(_family.FUNCTIONS)
FUNCTIONS[np.linalg.norm] = misc.complex_norm(FUNCTIONS[np.linalg.norm])


def _write_out(ufunc, out, r):
    """`ufunc(..., out=out)`: the result written into `out`, which is returned."""
    name = ufunc_name(ufunc)
    if isinstance(out, tuple):
        if len(out) != 1:
            _fail(ValueError, f"{name}: expected 1 output array in out=, got {len(out)}")
        out = out[0]
    if out is None:
        return r
    if not isinstance(out, Tracer):
        _fail(
            TracerError,
            f"{name}(..., out=...) writes traced values into an existing array that is NumPy's, not "
            "traced; use the returned array, or make the output array traced (np.zeros_like of a traced value)",
        )
    inplace.write_result(out, r, ufunc.__name__)
    return out


# NumPy functions whose result is a view of their first argument (where NumPy can make one)
VIEW_FUNCS = {
    np.reshape,
    np.ravel,
    np.transpose,
    np.swapaxes,
    np.moveaxis,
    np.expand_dims,
    np.squeeze,
    np.broadcast_to,
    np.atleast_1d,
    np.atleast_2d,
    np.flip,
    np.fliplr,
    np.flipud,
    np.diagonal,
    np.real,
}
for _family in (linalg, special, more, fft, misc):
    VIEW_FUNCS |= getattr(_family, "VIEW_FUNCS", set())


def view_call(func, x, *args, **kwargs):
    """`func(x, ...)` for a NumPy function of VIEW_FUNCS: a view of x where NumPy makes one."""
    impl = FUNCTIONS[func]
    r = impl(x, *args, **kwargs)
    return inplace.track(x, r, lambda s: func(s, *args, **kwargs), lambda v: impl(v, *args, **kwargs))


# functions that keep Python numbers weakly typed (NEP 50); every other NumPy
# function makes arrays of its operands, so a traced Python float becomes float64
_WEAK_AWARE = {np.where, np.clip, np.result_type}


def _strong_args(v):
    if isinstance(v, (list, tuple)):
        return type(v)(_strong_args(x) for x in v)
    return strong(v)


_RENAMES: dict = {}


def _numpy_names(func, impl) -> dict:
    """{NumPy's keyword: ours} where a parameter has another name here than in NumPy's
    signature (matched by position): `np.swapaxes(x, axis1=0, axis2=1)` works."""
    hit = _RENAMES.get(func)
    if hit is None:
        hit = {}
        try:
            positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            ps = [p for p in inspect.signature(func).parameters.values() if p.kind in positional]
            qs = [q for q in inspect.signature(impl).parameters.values() if q.kind in positional]
            theirs = {q.name for q in qs}
            hit = {
                p.name: q.name
                for p, q in zip(ps, qs)
                if p.kind == p.POSITIONAL_OR_KEYWORD and p.name != q.name and p.name not in theirs
            }
        except (TypeError, ValueError):  # (no signature to read)
            pass
        _RENAMES[func] = hit
    return hit


def handle_function(func, args, kwargs):
    if kwargs and func in FUNCTIONS:
        names = _numpy_names(func, FUNCTIONS[func])
        if names:
            kwargs = {names.get(k, k): v for k, v in kwargs.items()}
    if func not in _WEAK_AWARE:
        args = _strong_args(args)
        kwargs = {k: strong(v) for k, v in kwargs.items()}
    impl = FUNCTIONS.get(func)
    if impl is None:
        name = getattr(func, "__module__", "numpy").replace("numpy._core.", "numpy.")
        _fail(NotImplementedError, f"tracediff does not support {name}.{func.__name__} on traced arrays")
    if func in VIEW_FUNCS and args and isinstance(args[0], Tracer):
        return view_call(func, *args, **kwargs)
    r = impl(*args, **kwargs)
    if func in _RETURNS_INPUT:  # as NumPy's: the very array where it returns it (np.diff with n=0)
        return r
    # a copying function (np.copy, np.sum over no axis, a join of one array) returns a
    # tracer of its own
    ins = [a for a in args if isinstance(a, Tracer)]
    ins += [t for a in args if isinstance(a, (list, tuple)) for t in a if isinstance(t, Tracer)]
    return inplace.fresh_object(r, *ins)


# functions NumPy lets return their input itself: they decide where they copy
_RETURNS_INPUT = {np.diff, np.real_if_close, np.nan_to_num, np.einsum}


# the Tracer's operators, protocols and methods call this front end; it is built
# on the Tracer, so it hands itself over rather than being imported by it
install_front_end(sys.modules[__name__], inplace)
