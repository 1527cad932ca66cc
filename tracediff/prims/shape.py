"""Shape primitives: they move or repeat elements, never compute with them."""

from __future__ import annotations

import numpy as np

from ..batching import move_axis, shape_of, to_front
from ..core import SHAPE, Aval, Primitive


def _bind(prim, *args, **params):
    from ..builder import bind

    return bind(prim, *args, **params)


reshape_p = Primitive("reshape", SHAPE)


@reshape_p.def_abstract
def _reshape_abstract(x, *, shape):
    if int(np.prod(shape, dtype=np.int64)) != x.size:
        raise ValueError(f"reshape: cannot reshape {x} into shape {shape}")
    return Aval(tuple(shape), x.dtype, x.weak)


reshape_p.def_impl(lambda x, *, shape: np.reshape(x, shape))
reshape_p.may_alias = True
reshape_p.def_vjp(lambda ct, ans, x, *, shape: [np.reshape(ct, x.shape)])


@reshape_p.def_batch
def _reshape_batch(args, dims, size, *, shape):
    x, d = args[0], dims[0]
    own = shape_of(x)[:d] + shape_of(x)[d + 1 :]
    if d and tuple(shape[:d]) == own[:d]:  # the axes before the batch stay: it stays too
        return [_bind(reshape_p, x, shape=tuple(shape[:d]) + (size,) + tuple(shape[d:]))], [d]
    if d == len(own):  # the batch last: it stays last
        return [_bind(reshape_p, x, shape=tuple(shape) + (size,))], [len(shape)]
    return [_bind(reshape_p, move_axis(x, d, 0), shape=(size,) + tuple(shape))], [0]


transpose_p = Primitive("transpose", SHAPE)


@transpose_p.def_abstract
def _transpose_abstract(x, *, perm):
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {perm} are not a permutation for {x}")
    return Aval(tuple(x.shape[p] for p in perm), x.dtype, x.weak)


transpose_p.def_impl(lambda x, *, perm: np.transpose(x, perm))
transpose_p.may_alias = True
transpose_p.def_vjp(lambda ct, ans, x, *, perm: [np.transpose(ct, tuple(np.argsort(perm)))])


@transpose_p.def_batch
def _transpose_batch(args, dims, size, *, perm):
    x = move_axis(args[0], dims[0], 0)
    return [_bind(transpose_p, x, perm=(0,) + tuple(p + 1 for p in perm))], [0]


broadcast_p = Primitive("broadcast", SHAPE)


def broadcast_axes(in_shape, shape):
    """Axes of `shape` that broadcasting `in_shape` (right-aligned) expands."""
    lead = len(shape) - len(in_shape)
    return tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(in_shape) if d == 1 and shape[lead + i] != 1
    )


@broadcast_p.def_abstract
def _broadcast_abstract(x, *, shape):
    lead = len(shape) - x.ndim
    if lead < 0 or any(d not in (1, s) for d, s in zip(x.shape, shape[lead:])):
        raise ValueError(f"broadcast: cannot broadcast {x} to shape {shape}")
    return Aval(tuple(shape), x.dtype, x.weak)


broadcast_p.def_impl(lambda x, *, shape: np.broadcast_to(x, shape))
broadcast_p.may_alias = True


@broadcast_p.def_vjp
def _broadcast_vjp(ct, ans, x, *, shape):
    summed = np.sum(ct, axis=broadcast_axes(x.shape, shape))
    return [np.reshape(summed, x.shape)]


@broadcast_p.def_batch
def _broadcast_batch(args, dims, size, *, shape):
    # the member's axes stay right-aligned under the new leading ones
    x = move_axis(args[0], dims[0], 0)
    own = shape_of(x)[1:]
    x = _bind(reshape_p, x, shape=(size,) + (1,) * (len(shape) - len(own)) + own)
    return [_bind(broadcast_p, x, shape=(size,) + tuple(shape))], [0]


concatenate_p = Primitive("concatenate", SHAPE)


@concatenate_p.def_abstract
def _concatenate_abstract(*xs, axis):
    first = xs[0]
    for x in xs:
        if (
            x.ndim != first.ndim
            or x.dtype != first.dtype
            or any(a != b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != axis)
        ):
            raise ValueError(
                f"concatenate: operands must agree except along axis {axis}, got " + ", ".join(map(str, xs))
            )
    shape = list(first.shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    return Aval(tuple(shape), first.dtype)


concatenate_p.def_impl(lambda *xs, axis: np.concatenate(xs, axis=axis))


@concatenate_p.def_batch
def _concatenate_batch(args, dims, size, *, axis):
    xs = [to_front(x, d, size) for x, d in zip(args, dims)]
    return [_bind(concatenate_p, *xs, axis=axis + 1)], [0]


@concatenate_p.def_vjp
def _concatenate_vjp(ct, ans, *xs, axis):
    out, start = [], 0
    for x in xs:
        n = x.shape[axis]
        idx = [slice(None)] * ct.ndim
        idx[axis] = slice(start, start + n)
        out.append(ct[tuple(idx)])
        start += n
    return out


# slice[spec]: spec = ((start, stop, step), ...) per axis, already normalized;
# stop is None where a negative step runs through index 0.
slice_p = Primitive("slice", SHAPE)


def _slices(spec):
    return tuple(slice(*s) for s in spec)


def _sliced_shape(shape, spec):
    return tuple(len(range(*slice(*s).indices(n))) for s, n in zip(spec, shape))


@slice_p.def_abstract
def _slice_abstract(x, *, spec):
    if len(spec) != x.ndim:
        raise ValueError(f"slice: {len(spec)} slices for {x}")
    return Aval(_sliced_shape(x.shape, spec), x.dtype, x.weak)


slice_p.def_impl(lambda x, *, spec: x[_slices(spec)])
slice_p.may_alias = True
slice_p.def_vjp(lambda ct, ans, x, *, spec: [unslice(ct, x.shape, spec)])


@slice_p.def_batch
def _slice_batch(args, dims, size, *, spec):
    x = move_axis(args[0], dims[0], 0)
    return [_bind(slice_p, x, spec=((0, size, 1),) + tuple(spec))], [0]


# unslice: zeros of `shape` with ct written at the slice (the slice's VJP)
unslice_p = Primitive("unslice", SHAPE)


@unslice_p.def_abstract
def _unslice_abstract(x, *, shape, spec):
    if _sliced_shape(shape, spec) != x.shape:
        raise ValueError(f"unslice: {x} does not fill the slice {spec} of {shape}")
    return Aval(tuple(shape), x.dtype)


@unslice_p.def_impl
def _unslice_impl(x, *, shape, spec):
    out = np.zeros(shape, np.asarray(x).dtype)
    out[_slices(spec)] = x
    return out


unslice_p.def_vjp(lambda ct, ans, x, *, shape, spec: [ct[_slices(spec)]])


@unslice_p.def_batch
def _unslice_batch(args, dims, size, *, shape, spec):
    x = move_axis(args[0], dims[0], 0)
    return [_bind(unslice_p, x, shape=(size,) + tuple(shape), spec=((0, size, 1),) + tuple(spec))], [0]


def unslice(ct, shape, spec):
    from ..builder import bind

    return bind(unslice_p, ct, shape=tuple(shape), spec=spec)
