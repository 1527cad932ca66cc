"""The IR: typed SSA values, equations, programs, and primitives.

The IR knows nothing about tracing, NumPy's front end or any backend. A
program (`IR`) is a list of equations over variables; each variable has an
abstract value (`Aval`: shape and dtype). A fused region or a loop body is an
`IR` held in an equation's params, so regions nest.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
COMPLEX_DTYPES = (np.dtype(np.complex64), np.dtype(np.complex128))
DYNAMIC = -1  # a leading dimension known at run time (a loop's trip count: its tape)


class TracediffError(Exception):
    """Base class of the errors tracediff raises on purpose."""


# exception types built from one message: re-raised as the same type with the
# operation and the user's line added to the message
_MESSAGE_TYPES = {
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    ZeroDivisionError,
    OverflowError,
    FloatingPointError,
    RuntimeError,
    NotImplementedError,
    np.linalg.LinAlgError,
    np.exceptions.AxisError,
}


def with_context(e: BaseException, message: str) -> BaseException:
    """`e` told with `message` (its text plus the operation and the user's line).

    A plain message exception is rebuilt as the same type, caused by `e`; any
    other (a user's exception whose constructor takes other arguments, say)
    keeps its type and arguments and gets the message as a note.
    """
    if type(e) in _MESSAGE_TYPES:
        new = type(e)(message)
        new.__cause__ = e
        return new
    if hasattr(e, "add_note"):  # Python 3.11+
        e.add_note(message)
    return e


@dataclass(frozen=True)
class Aval:
    """Abstract value: what is known of an array at trace time.

    `weak` marks a Python float or int (NEP 50): it takes the dtype of the
    array it meets instead of promoting it.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    weak: bool = False

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def is_inexact(self) -> bool:
        """Float or complex: a value derivatives flow through."""
        return self.dtype in FLOAT_DTYPES or self.dtype in COMPLEX_DTYPES

    def strong(self) -> Aval:
        return Aval(self.shape, self.dtype) if self.weak else self

    def __str__(self) -> str:
        return f"{dtype_name(self.dtype)}[{','.join(map(str, self.shape))}]"


_DTYPE_NAMES = {
    "float32": "f32",
    "float64": "f64",
    "float16": "f16",
    "int8": "i8",
    "int16": "i16",
    "int32": "i32",
    "int64": "i64",
    "uint8": "u8",
    "uint16": "u16",
    "uint32": "u32",
    "uint64": "u64",
    "bool": "bool",
}


def dtype_name(dtype: np.dtype) -> str:
    return _DTYPE_NAMES.get(np.dtype(dtype).name, np.dtype(dtype).name)


_var_ids = itertools.count()


class Var:
    """An SSA variable. Identity is the object; names are given at print time."""

    __slots__ = ("aval", "id")

    def __init__(self, aval: Aval):
        self.aval = aval
        self.id = next(_var_ids)

    def __repr__(self) -> str:
        return f"Var({self.id}:{self.aval})"


class Lit:
    """A constant: a Python/NumPy scalar or a NumPy array baked into the program.

    The value is copied when the literal is made: a program captures its
    constants by value, so a later change to the user's array is not seen.
    """

    __slots__ = ("val", "aval")

    def __init__(self, val: Any, aval: Aval | None = None):
        arr = np.array(val)
        self.val = arr
        self.aval = aval or Aval(arr.shape, arr.dtype)

    @property
    def is_scalar(self) -> bool:
        return self.val.ndim == 0

    def key(self) -> Any:
        """Hashable identity for CSE: scalars by value, arrays by object."""
        if self.is_scalar:
            v = self.val.item()
            # nan != nan, so key NaN by its repr; -0.0 and 0.0 stay distinct
            return (
                "s",
                self.aval.dtype.str,
                repr(v) if v != v or v == 0 else v,
                self.aval.weak,
            )
        return ("a", id(self.val))

    def __repr__(self) -> str:
        return f"Lit({self.val!r})"


Atom = Var | Lit


@dataclass(eq=False)
class Eqn:
    """`outvars = prim[params] inputs`, remembering the user's source line."""

    prim: Primitive
    inputs: tuple[Atom, ...]
    outvars: tuple[Var, ...]
    params: dict[str, Any]
    src: str = ""
    # "fwd" or "bwd" in programs made by reverse mode: which sweep made it
    phase: str = ""


@dataclass(eq=False)
class IR:
    """A program: `{ lambda invars . eqns in outvars }`."""

    invars: list[Var]
    eqns: list[Eqn]
    outvars: list[Atom]
    # statistics of the passes that produced it (name -> dict), for dumps
    stats: list = field(default_factory=list)

    def __str__(self) -> str:
        return _ir_text(self)

    @property
    def in_avals(self) -> list[Aval]:
        return [v.aval for v in self.invars]

    @property
    def out_avals(self) -> list[Aval]:
        return [v.aval for v in self.outvars]


def _ir_text_unset(ir: IR) -> str:
    return f"<IR: {len(ir.invars)} inputs, {len(ir.eqns)} equations; import tracediff.printer to print it>"


# The text of an IR (`str(ir)`) is made by printer.py, which is built on this
# module: it registers itself here when imported, so core imports nothing of tracediff.
_ir_text: Callable[[IR], str] = _ir_text_unset


def set_ir_text(fn: Callable[[IR], str]) -> None:
    """Make `fn` the text form of every IR (`str(ir)`)."""
    global _ir_text
    _ir_text = fn


# --- primitives --------------------------------------------------------------

ELEMENTWISE = "elementwise"
REDUCTION = "reduction"
CONTRACTION = "contraction"
SHAPE = "shape"
INDEXING = "indexing"
REGION = "region"
OTHER = "other"


class Primitive:
    """One operation of the IR and every rule about it.

    - `abstract(*avals, **params) -> Aval | list[Aval]`: shape and dtype rule;
      raises `ValueError`/`TypeError` on bad input.
    - `impl(*arrays, **params)`: the NumPy reference implementation.
    - `vjp(ct, ans, *inputs, **params)`: the cotangent of each input (None =
      zero), written with public ops so it differentiates again.
    - `batch(args, dims, size, **params) -> (outputs, out_dims)`: the batching
      rule (`vmap`): `dims[i]` is the axis of `args[i]` that holds the batch of
      `size`, or None; written with primitives, so a batched program is IR.
    - `differentiable=False`: outputs carry no derivative (comparisons, argmax).
    - `scalar`: how a backend writes the op on scalars inside a fused loop.
    - `cost`: its work per element in a loop, in additions (a backend weighs
      whether a loop is worth running on several threads).
    - `may_alias`: its result may be its first input or a view of it (reshape,
      transpose, slice...), so it may share memory with a program input.
    - `raises_for`: dtype kinds ("i", "u", ...) of its result for which its
      compiled code may raise (a loop that may raise runs on one thread).
    - `call`: for an operation that is a library call (LAPACK, special
      functions...), per target the expression computing its outputs from its
      inputs `{0}, {1}, ...` and params `{name}`; `imports`: per target, the
      import lines the generated module needs for it (and for `scalar` code).
    - `complex`: it takes complex operands (with its VJP in JAX's convention:
      the transpose under the pairing Re(sum(a * b))).
    """

    def __init__(
        self,
        name: str,
        kind: str,
        *,
        nout: int = 1,
        differentiable: bool = True,
    ):
        self.name = name
        self.kind = kind
        self.nout = nout
        self.differentiable = differentiable
        self.abstract: Callable[..., Any] | None = None
        self.impl: Callable[..., Any] | None = None
        self.vjp: Callable[..., Any] | None = None
        self.batch: Callable[..., Any] | None = None
        self.scalar: dict[str, Any] = {}
        self.cost = 1
        self.may_alias = False
        self.raises_for = ""
        # takes and gives complex values (data movement does; math opts in)
        self.complex = kind in (SHAPE, INDEXING, REGION, CONTRACTION)
        self.call: dict[str, str] = {}
        self.imports: dict[str, tuple[str, ...]] = {}
        REGISTRY[name] = self

    def def_abstract(self, fn: Callable) -> Callable:
        self.abstract = fn
        return fn

    def def_impl(self, fn: Callable) -> Callable:
        self.impl = fn
        return fn

    def def_vjp(self, fn: Callable) -> Callable:
        self.vjp = fn
        return fn

    def def_batch(self, fn: Callable) -> Callable:
        self.batch = fn
        return fn

    def out_avals(self, avals: Sequence[Aval], params: dict) -> list[Aval]:
        res = self.abstract(*avals, **params)
        return list(res) if self.nout != 1 else [res]

    def __repr__(self) -> str:
        return f"Primitive({self.name})"


REGISTRY: dict[str, Primitive] = {}


def atoms_equal_shape(avals: Sequence[Aval], name: str) -> tuple[int, ...]:
    shapes = {a.shape for a in avals}
    if len(shapes) != 1:
        raise ValueError(f"{name}: operands must have equal shapes, got " + ", ".join(str(a) for a in avals))
    return avals[0].shape
