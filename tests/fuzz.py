"""A differential fuzzer for tracediff: random NumPy programs against NumPy itself.

How it works (docs/fuzzing.md has the long version):

* A *batch* is a few inputs (arrays of float32/float64/int64/int32/bool with
  0-d, size-0, size-1 and broadcasting shapes, NumPy scalars, Python floats,
  ints and bools; values normal or special: +-0.0, NaN, +-inf, huge, tiny,
  subnormal) and K *programs* over them. A program is data: a list of
  statements `vN = <one NumPy operation>` (`Stmt`), built from a grammar over
  the NumPy functions, ufuncs, ufunc methods, operators, indexing forms and
  Tracer methods that tracediff supports. Each candidate statement is run on
  the batch's concrete values while it is generated, so shapes and dtypes are
  tracked by NumPy itself and nearly every program is valid; a few are kept
  on purpose where NumPy raises (to check the error behaviour).
* A program prints as plain NumPy source (`Program.source`), the same text
  that is executed for NumPy and traced by tracediff, so every report is a
  standalone repro.
* Checks: NumPy's result (with errors ignored) against tracediff's interpreter,
  the *unoptimized* program run by the interpreter, and the compiled CPU
  path (all programs of a batch in one `td.jit`, so one Numba compile covers
  K programs); same structure, shapes and dtypes; values bit-exact for exact
  operations and within a per-element tolerance derived from an error model
  otherwise; no result aliases an input, a captured constant or another
  result; writing into a result and calling again gives the first result;
  inputs are not modified; where NumPy raises, tracediff raises a compatible,
  documented exception; gradients of smooth float programs against finite
  differences (td.check_grads, td.grad, td.jit(td.grad)), and grad-of-grad on
  a subset.

Run `python tests/fuzz.py --help` for the long-run command.
"""

from __future__ import annotations

import argparse
import linecache
import math
import os
import random
import re
import sys
import time
import traceback
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

os.environ.setdefault("TRACEDIFF_VERIFY", "1")  # check the IR after every pass, as the tests do

import scipy.special  # noqa: E402,F401  (scipy.special.expit is supported once imported)

import tracediff as td  # noqa: E402
from tracediff.interpret import Interpreter  # noqa: E402
from tracediff.passes.pipeline import optimize  # noqa: E402
from tracediff.testing import GradCheckError  # noqa: E402

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
MAX_SIZE = 256  # elements of any value a program makes (keeps repros printable)
ULP_K = 8  # transcendental functions: NumPy's error + tracediff's, both within 4 ulp
STRICT = os.environ.get("FUZZ_STRICT", "") == "1"
# the compiled target checked: "cpu", or "cuda" (under NUMBA_ENABLE_CUDASIM=1 without a GPU)
JIT_TARGET = os.environ.get("FUZZ_TARGET", "cpu")


def jit_on_target(fn, math_mode: str = "fast"):
    return (
        td.jit(fn, math=math_mode) if JIT_TARGET == "cpu" else td.jit(fn, target=JIT_TARGET)
    )  # generator slips raise (for developing the grammar)


SAFETY = 2.0  # end-to-end tolerance: this times the largest deviation seen under noise

# --- random choices -------------------------------------------------------------------


class Rand:
    """The generator's source of choices: a seeded `random.Random`, or Hypothesis.

    With `draw` (Hypothesis' `data.draw`), every choice is a drawn integer, so
    Hypothesis can replay and shrink a batch; rare choices (`chance`) shrink
    towards "no".
    """

    def __init__(self, seed: Any = None, draw=None):
        self.rng = random.Random(seed)
        self.draw = draw
        if draw is not None:
            from hypothesis import strategies as st

            self._ints = st.integers

    def int(self, lo: int, hi: int) -> int:
        if self.draw is not None:
            return self.draw(self._ints(lo, hi))
        return self.rng.randint(lo, hi)

    def chance(self, p: float) -> bool:
        return self.int(0, 999) >= 1000 - int(round(p * 1000))

    def choice(self, seq):
        seq = list(seq)
        return seq[self.int(0, len(seq) - 1)]

    def weighted(self, pairs):
        pairs = [(w, x) for w, x in pairs if w > 0]
        total = sum(w for w, _ in pairs)
        r = self.int(0, total - 1)
        if (
            self.draw is not None
        ):  # Hypothesis favours 0 and the maximum: don't let that favour the first items
            r = (r + total // 3) % total
        for w, x in pairs:
            if r < w:
                return x
            r -= w
        raise AssertionError("unreachable")

    def seed(self) -> int:
        return self.int(0, 2**31 - 1)


# --- values and their source text ---------------------------------------------------------


def _flt(v: float) -> str:
    v = float(v)
    if math.isnan(v):
        return "np.nan"
    if math.isinf(v):
        return "np.inf" if v > 0 else "-np.inf"
    return repr(v)


def _nested(a: np.ndarray) -> str:
    if a.ndim == 0:
        x = a.item()
        return _flt(x) if a.dtype.kind == "f" else repr(x)
    return "[" + ", ".join(_nested(x) for x in a) + "]"


DTYPE_SRC = {
    "float16": "np.float16",
    "float32": "np.float32",
    "float64": "np.float64",
    "int8": "np.int8",
    "int32": "np.int32",
    "int64": "np.int64",
    "bool": "np.bool_",
    "uint8": "np.uint8",
}


def lit(v: Any) -> str:
    """Python source that rebuilds `v` exactly (arrays, NumPy and Python scalars, lists)."""
    if isinstance(v, list):
        return "[" + ", ".join(lit(x) for x in v) + "]"
    if isinstance(v, tuple):
        return "(" + "".join(lit(x) + ", " for x in v) + ")"
    if type(v) is float:
        return {"np.nan": 'float("nan")', "np.inf": 'float("inf")', "-np.inf": 'float("-inf")'}.get(
            _flt(v), _flt(v)
        )
    if type(v) in (int, bool) or v is None:
        return repr(v)
    if isinstance(v, np.generic):
        return f"{DTYPE_SRC.get(v.dtype.name, 'np.' + v.dtype.name)}({_nested(np.asarray(v))})"
    a = np.asarray(v)
    dt = DTYPE_SRC.get(a.dtype.name, "np." + a.dtype.name)
    if a.size == 0:
        return f"np.zeros({a.shape!r}, dtype={dt})"
    return f"np.array({_nested(a)}, dtype={dt})"


def kind_of(v: Any) -> str:
    t = type(v)
    if t is float:
        return "pyfloat"
    if t is bool:
        return "pybool"
    if t is int:
        return "pyint"
    if isinstance(v, np.generic):
        return "npscalar"
    if isinstance(v, np.ndarray):
        return "array"
    if isinstance(v, list) and all(isinstance(x, np.ndarray) for x in v):
        return "list"
    return "other"


@dataclass
class Val:
    """A named value a statement can read: an input, a constant or a statement's result."""

    name: str
    value: Any
    origin: str = "stmt"  # "arg", "const", "stmt"

    @property
    def kind(self) -> str:
        return kind_of(self.value)

    @property
    def arr(self) -> np.ndarray:
        return np.asarray(self.value)

    @property
    def shape(self) -> tuple:
        return np.shape(self.value)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def dtype(self) -> np.dtype:
        return np.asarray(self.value).dtype

    @property
    def fk(self) -> str:
        """dtype kind: 'f', 'i' or 'b'."""
        return self.dtype.kind


# --- programs -----------------------------------------------------------------------------------


@dataclass
class Stmt:
    """`var = expr`: one NumPy operation (or an exact composition, for indices and masks).

    `err` is its error model (None: NumPy computes it exactly, the result must
    match bit for bit): ("ulp", k, scale) within k ulp of the result or of the
    operand magnitude `scale` (an expression); ("sum", bound) a sum of terms
    whose absolute values add up to `bound`; ("contract", bound) the same for
    products summed (BLAS: wild where a term is not finite); ("prod", lmax,
    lmin) a product (wild where partial products may overflow/underflow);
    ("var", tolexpr) var/std. `wild` is a boolean expression: elements where
    NumPy itself is not deterministic (a NaN's sign, 1//0 for ints...). `zsign`:
    the sign of a zero result is not deterministic (max/min of +-0).
    """

    var: str
    expr: str
    op: str
    uses: tuple = ()
    err: tuple | None = None
    wild: str | None = None
    zsign: bool = False
    smooth: bool = True
    limit: bool = False  # uses what tracediff documents as unsupported
    limit_jit: bool = False  # unsupported by the compiled backend only (float16)


@dataclass
class Program:
    stmts: list
    outs: list  # returned names: one is returned bare, several as a tuple
    error: str | None = None  # NumPy's exception, for a program kept because it raises

    def used_names(self) -> set:
        names = set(self.outs)
        for s in self.stmts:
            names.update(s.uses)
        return names - {s.var for s in self.stmts}

    def body(self, indent="    ") -> str:
        lines = [f"{indent}{s.var} = {s.expr}" for s in self.stmts]
        ret = self.outs[0] if len(self.outs) == 1 else "(" + ", ".join(self.outs) + ",)"
        lines.append(f"{indent}return {ret}")
        return "\n".join(lines)

    def source(self, name: str, params: list) -> str:
        return f"def {name}({', '.join(params)}):\n{self.body()}\n"

    def ops(self) -> list:
        return [s.op for s in self.stmts]

    @property
    def smooth(self) -> bool:
        return all(s.smooth for s in self.stmts)

    @property
    def limit(self) -> bool:
        return any(s.limit for s in self.stmts)

    @property
    def limit_jit(self) -> bool:
        return any(s.limit or s.limit_jit for s in self.stmts)

    def prefix(self, k: int) -> Program:
        """Statements 0..k, returning statement k, without dead statements."""
        return dce(Program(self.stmts[: k + 1], [self.stmts[k].var]))


def dce(p: Program) -> Program:
    live = set(p.outs)
    keep = []
    for s in reversed(p.stmts):
        if s.var in live:
            keep.append(s)
            live.update(s.uses)
    return Program(list(reversed(keep)), list(p.outs), p.error)


@dataclass
class Batch:
    args: list  # Vals named a, b, c, d
    consts: dict  # name -> np.ndarray (captured constants: module-level in the source)
    programs: list
    seed: Any = None
    math: str = "fast"

    @property
    def params(self) -> list:
        return [v.name for v in self.args]

    def arg_values(self) -> list:
        return [v.value for v in self.args]

    def __repr__(self) -> str:  # what Hypothesis prints for a falsifying batch: runnable source
        lines = [f"{v.name} = {lit(v.value)}" for v in self.args]
        lines += [f"{k} = {lit(v)}" for k, v in self.consts.items()]
        return "\n" + "\n".join(lines) + "\n\n" + self.module_source()

    def module_source(self, programs=None, names=None) -> str:
        programs = self.programs if programs is None else programs
        names = names or [f"p{i}" for i in range(len(programs))]
        return "\n".join(p.source(n, self.params) for p, n in zip(programs, names))


BASE_NS = {"np": np, "scipy": scipy}


def _abs64(v):
    """|v| in float64 with non-finite values as 0 (the finite terms of a sum)."""
    a = np.abs(np.asarray(v, dtype=np.float64))
    return np.where(np.isfinite(a), a, 0.0)


def _abs64_raw(v):
    return np.abs(np.asarray(v, dtype=np.float64))


def _lmax(v):
    """log2 of max(|v|, 1): how much a factor can grow a partial product."""
    with np.errstate(all="ignore"):
        a = np.abs(np.asarray(v, dtype=np.float64))
        return np.where(np.isfinite(a), np.log2(np.maximum(a, 1.0)), 0.0)


def _lmin(v):
    """log2 of min(|v|, 1) for nonzero finite v: how much a factor can shrink one."""
    with np.errstate(all="ignore"):
        a = np.abs(np.asarray(v, dtype=np.float64))
        return np.where(np.isfinite(a) & (a > 0), np.log2(np.minimum(a, 1.0)), 0.0)


def _vartol(x, res, axis, ddof, keepdims, std):
    """Tolerance of var/std: both computed as two-pass sums (NumPy's and tracediff's).

    With n terms, deviations d and mean error delta <= (n+2) u mean|x|, the
    computed sum of squares is off by at most (n+4) u sum(d^2) + n delta^2.
    """
    r = np.asarray(res)
    u = np.finfo(r.dtype).eps / 2 if r.dtype.kind == "f" else np.finfo(np.float64).eps / 2
    x64 = np.asarray(x, dtype=np.float64)
    if r.size == 0 or x64.size == 0:
        return np.zeros(r.shape)
    n = x64.size // max(r.size, 1)
    dd = n - ddof
    if dd <= 0:
        return np.zeros(r.shape)  # NumPy divides by 0: inf or nan, exactly
    with np.errstate(all="ignore"):
        v0 = np.var(x64, axis=axis, keepdims=keepdims)
        m = np.mean(np.abs(x64), axis=axis, keepdims=keepdims)
        delta = (n + 2) * u * m
        tv = 2.0 * ((n + 4) * u * v0 * n / dd + n * delta * delta / dd)
        if not std:
            return np.broadcast_to(tv, r.shape)
        v = v0 * n / dd
        t = np.sqrt(v + tv) - np.sqrt(np.maximum(v - tv, 0.0)) + 2 * u * np.sqrt(v)
        return np.broadcast_to(t, r.shape)


def _sq64(v):
    return _abs64(v) ** 2


HELPERS = {"_A": _abs64, "_SQ": _sq64, "_LMAX": _lmax, "_LMIN": _lmin, "_VARTOL": _vartol}


def np_eval(expr: str, ns: dict):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return eval(expr, ns)  # noqa: S307  (the fuzzer's own generated source)


# --- inputs ---------------------------------------------------------------------------------------

SPECIALS = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e30, -1e30, 1e300, -1e300, 1e-30, 1e-310, 5e-324, 1e-45,
            -1e-40, 1.0, -1.0, 0.5, 3.4e38, -3.4e38, 1.2e-38, 709.0, -745.0, 88.5, 1e15]  # fmt: skip
DIMS = [(4, 0), (18, 1), (20, 2), (20, 3), (14, 4), (9, 5), (4, 6)]
NDIMS = [(8, 0), (27, 1), (35, 2), (24, 3), (6, 4)]


def _shape(rnd: Rand, base: tuple) -> tuple:
    how = rnd.weighted([(40, "base"), (20, "suffix"), (20, "ones"), (20, "random")])
    if how == "base":
        s = base
    elif how == "suffix":
        s = base[rnd.int(0, len(base)) :]
    elif how == "ones":
        s = tuple(1 if rnd.chance(0.4) else d for d in base)
    else:
        s = tuple(rnd.weighted(DIMS) for _ in range(rnd.weighted(NDIMS)))
    while int(np.prod(s, dtype=np.int64)) > 96:
        s = s[1:]
    return tuple(s)


def _float_values(rnd: Rand, nrng, shape, dtype, special: bool):
    mode = rnd.weighted([(40, "normal"), (15, "positive"), (15, "ints"), (10, "wide"), (10, "unit")])
    if mode == "normal":
        x = nrng.standard_normal(shape) * rnd.choice([1.0, 1.0, 3.0, 1e3, 1e-3])
    elif mode == "positive":
        x = nrng.uniform(0.1, 3.0, shape)
    elif mode == "ints":
        x = nrng.integers(-4, 5, shape).astype(np.float64) * rnd.choice([1.0, 0.5])
    elif mode == "wide":
        x = nrng.standard_normal(shape) * 10.0 ** nrng.integers(-30, 30, shape)
    else:
        x = nrng.uniform(-1.0, 1.0, shape)
    x = np.asarray(x, dtype=np.float64)
    if special and x.size:
        pick = nrng.uniform(size=shape) < 0.25
        sp = np.asarray(SPECIALS)[nrng.integers(0, len(SPECIALS), shape)]
        x = np.where(pick, sp, x)
    with np.errstate(all="ignore"):
        return x.astype(dtype)


def _int_values(rnd: Rand, nrng, shape, dtype):
    if rnd.chance(0.8):
        return nrng.integers(-5, 6, shape).astype(dtype)
    info = np.iinfo(dtype)
    x = nrng.integers(-(2**40), 2**40, shape) if dtype == np.int64 else nrng.integers(-(2**20), 2**20, shape)
    ext = nrng.uniform(size=shape) < 0.2
    return np.where(ext, np.asarray([info.min, info.max, 0, -1])[nrng.integers(0, 4, shape)], x).astype(dtype)


def gen_inputs(rnd: Rand, special: bool) -> list:
    nrng = np.random.default_rng(rnd.seed())
    base = tuple(rnd.weighted(DIMS) for _ in range(rnd.weighted(NDIMS)))
    vals = []
    for i in range(rnd.int(1, 4)):
        name = "abcd"[i]
        kind = rnd.weighted([(66, "array"), (10, "pyfloat"), (5, "pyint"), (8, "npscalar"), (2, "pybool")])
        kind = "array" if i == 0 else kind  # at least one array
        if kind == "pyfloat":
            v = float(_float_values(rnd, nrng, (), np.float64, special))
        elif kind == "pyint":
            v = rnd.choice([0, 1, 2, 3, -1, -2, 5])
        elif kind == "pybool":
            v = rnd.chance(0.5)
        else:
            dt = np.dtype(
                rnd.weighted([(30, "float64"), (30, "float32"), (12, "int64"), (4, "int32"), (8, "bool")])
            )
            shape = () if kind == "npscalar" else _shape(rnd, base)
            if dt.kind == "f":
                v = _float_values(rnd, nrng, shape, dt, special)
            elif dt.kind == "i":
                v = _int_values(rnd, nrng, shape, dt)
            else:
                v = nrng.uniform(size=shape) < 0.5
            v = np.asarray(v, dtype=dt)
            if kind == "npscalar":
                v = v[()]
        vals.append(Val(name, v, "arg"))
    return vals


# --- the grammar ------------------------------------------------------------------------------------


@dataclass
class Cand:
    """A candidate statement, before NumPy has run it."""

    expr: str
    op: str
    uses: tuple
    err: tuple | None = None
    wild: str | None = None
    zsign: bool = False
    smooth: bool = True
    limit: bool = False
    limit_jit: bool = False


def ULP(scale=None, k=ULP_K):
    return ("ulp", k, scale)


# name: (weight, error model, smooth, operator form)
UNARY = {
    "negative": (4, None, True, "-{x}"),
    "absolute": (3, None, False, "abs({x})"),
    "fabs": (1, None, False, None),
    "sign": (2, None, False, None),
    "floor": (2, None, False, None),
    "ceil": (1, None, False, None),
    "rint": (2, None, False, None),
    "trunc": (1, None, False, None),
    "fix": (1, None, False, None),
    "exp": (4, ULP(), True, None),
    "exp2": (1, ULP(), True, None),
    "expm1": (2, ULP(), True, None),
    "log": (4, ULP(), True, None),
    "log2": (1, ULP(), True, None),
    "log10": (1, ULP(), True, None),
    "log1p": (2, ULP(), True, None),
    "sqrt": (3, None, True, None),
    "cbrt": (1, ULP(), True, None),
    "square": (2, None, True, None),
    "reciprocal": (2, None, True, None),
    "sin": (3, ULP(), True, None),
    "cos": (2, ULP(), True, None),
    "tan": (1, ULP(), True, None),
    "arcsin": (1, ULP(), True, None),
    "arccos": (1, ULP(), True, None),
    "arctan": (1, ULP(), True, None),
    "sinh": (1, ULP(), True, None),
    "cosh": (1, ULP(), True, None),
    "tanh": (3, ULP(), True, None),
    "arcsinh": (1, ULP(), True, None),
    "arccosh": (1, ULP(), True, None),
    "arctanh": (1, ULP(), True, None),
    "logical_not": (1, None, False, None),
    "invert": (1, None, False, "~{x}"),
    "isnan": (1, None, False, None),
    "isinf": (1, None, False, None),
    "isfinite": (1, None, False, None),
    "positive": (1, None, True, "+{x}"),
    "conjugate": (1, None, True, "{x}.conj()"),
    "deg2rad": (1, ULP(k=2), True, None),
    "radians": (1, ULP(k=2), True, None),
    "rad2deg": (1, ULP(k=2), True, None),
    "degrees": (1, ULP(k=2), True, None),
    "signbit": (1, None, False, None),
}

_OPSCALE = "np.maximum(_A({x}), _A({y}))"
# name: (weight, error model, smooth, operator, zsign)
BINARY = {
    "add": (8, None, True, "+", False),
    "subtract": (6, None, True, "-", False),
    "multiply": (8, None, True, "*", False),
    "divide": (5, None, True, "/", False),
    "true_divide": (1, None, True, None, False),
    "power": (4, ULP(), True, "**", False),
    "maximum": (3, None, False, None, True),
    "minimum": (2, None, False, None, True),
    "fmax": (1, None, False, None, True),
    "fmin": (1, None, False, None, True),
    "arctan2": (1, ULP(), True, None, False),
    "hypot": (1, ULP(), True, None, False),
    "logaddexp": (2, ULP(_OPSCALE), True, None, False),
    "logaddexp2": (1, ULP(_OPSCALE), True, None, False),
    "remainder": (2, None, False, "%", False),
    "floor_divide": (2, None, False, "//", False),
    "copysign": (1, None, False, None, False),
    "float_power": (1, ULP(), True, None, False),
    "less": (2, None, False, "<", False),
    "less_equal": (1, None, False, "<=", False),
    "greater": (2, None, False, ">", False),
    "greater_equal": (1, None, False, ">=", False),
    "equal": (1, None, False, "==", False),
    "not_equal": (1, None, False, "!=", False),
    "logical_and": (1, None, False, None, False),
    "logical_or": (1, None, False, None, False),
    "logical_xor": (1, None, False, None, False),
    "bitwise_and": (1, None, False, "&", False),
    "bitwise_or": (1, None, False, "|", False),
    "bitwise_xor": (1, None, False, "^", False),
}

SCALAR_LITS = [(10, "2.0"), (8, "1.0"), (6, "0.5"), (5, "-1.5"), (5, "3"), (5, "2"), (4, "0.0"), (4, "-0.0"),
               (3, "-1"), (3, "0"), (2, "1e30"), (2, "1e-30"), (1, "1e300"), (2, "np.inf"), (2, "-np.inf"),
               (2, "np.nan"), (1, "5e-324"), (2, "True"), (2, "np.float32(2.5)"), (2, "np.float64(-0.5)"),
               (2, "np.int64(3)"), (1, "np.int32(-2)"), (1, "np.True_"), (1, "np.float32(np.nan)"),
               (1, "2**31"), (1, "-2**40")]  # fmt: skip
NICE_LITS = [(10, "2.0"), (8, "1.0"), (6, "0.5"), (5, "-1.5"), (5, "3"), (5, "2"), (3, "0.0"), (3, "-1")]


def _bshape(*shapes):
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        return None


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


class Gen:
    """Builds the programs of one batch; NumPy runs every candidate statement."""

    def __init__(self, rnd: Rand, batch: Batch, p_error=0.06, p_limit=0.02):
        self.rnd = rnd
        self.batch = batch
        self.p_error = p_error
        self.p_limit = p_limit
        self.nconst = 0

    # pools
    def start_program(self):
        self.pool = list(self.batch.args) + [Val(k, v, "const") for k, v in self.batch.consts.items()]
        self.ns = dict(BASE_NS)
        self.ns.update(HELPERS)
        self.ns.update({v.name: v.value for v in self.pool})
        self.n = 0
        # names whose value tracediff traces (the others are constants while tracing)
        self.traced = {v.name for v in self.batch.args if _dynamic(v.value)}

    def pick(self, pred=None, numeric=True):
        cands = [
            v
            for v in self.pool
            if (not numeric or v.kind in ("array", "npscalar", "pyfloat", "pyint", "pybool"))
            and (pred is None or pred(v))
        ]
        if not cands:
            return None
        # results of earlier statements are picked more often: deeper programs
        return self.rnd.weighted(
            [(4 if v.origin == "stmt" else 2 if v.kind == "array" else 1, v) for v in cands]
        )

    def arr(self, pred=None):
        return self.pick(lambda v: v.kind in ("array", "npscalar") and (pred is None or pred(v)))

    def scalar_lit(self, nice=False) -> str:
        return self.rnd.weighted(NICE_LITS if nice else SCALAR_LITS)

    def const(self, shape, dtype=None, nice=True) -> str:
        """A new captured constant (a module-level array in the repro)."""
        rnd = self.rnd
        dtype = np.dtype(
            dtype or rnd.weighted([(50, "float64"), (25, "float32"), (15, "int64"), (10, "bool")])
        )
        nrng = np.random.default_rng(rnd.seed())
        if dtype.kind == "f":
            v = _float_values(rnd, nrng, shape, dtype, special=not nice and rnd.chance(0.3))
        elif dtype.kind == "i":
            v = nrng.integers(-3, 4, shape).astype(dtype)
        else:
            v = nrng.uniform(size=shape) < 0.5
        name = f"C{len(self.batch.consts)}"
        self.batch.consts[name] = np.asarray(v, dtype=dtype)
        self.pool.append(Val(name, self.batch.consts[name], "const"))
        self.ns[name] = self.batch.consts[name]
        return name

    def axis(self, nd: int, none=True, tuple_ok=True, oob=0.03):
        """An `axis=` value: None, an int (maybe negative), or a tuple."""
        r = self.rnd
        if none and (nd == 0 or r.chance(0.3)):
            return None
        if nd == 0 or r.chance(oob):
            return r.choice([nd, -nd - 1, 5])
        if tuple_ok and nd >= 2 and r.chance(0.25):
            k = r.int(1, nd)
            axes = []
            pool = list(range(nd))
            for _ in range(k):
                a = pool.pop(r.int(0, len(pool) - 1))
                axes.append(a - nd if r.chance(0.3) else a)
            return tuple(axes)
        a = r.int(0, nd - 1)
        return a - nd if r.chance(0.3) else a

    def partner(self, x: Val, pred, make_shape=None, dtype=None):
        """A value satisfying `pred`, else a new constant of `make_shape`."""
        y = self.pick(lambda v: v.kind in ("array", "npscalar") and pred(v))
        if y is not None and (make_shape is None or self.rnd.chance(0.7)):
            return y.name
        if make_shape is None:
            return None
        if dtype is None:
            dtype = x.dtype if x.fk in "fib" and self.rnd.chance(0.6) else None
        if make_shape == "x":
            return x.name
        return self.const(tuple(make_shape), dtype)

    # statements
    def run(self, c: Cand):
        """Evaluate `c` with NumPy; returns the value or the exception."""
        try:
            return np_eval(c.expr, self.ns)
        except Exception as e:  # noqa: BLE001  (NumPy's error is data for the checker)
            return e

    def accept(self, c: Cand, value) -> Stmt:
        var = f"v{self.n}"
        self.n += 1
        v = np.asarray(value) if not isinstance(value, list) else None
        exact = v is None or v.dtype.kind != "f"
        if c.err is not None and c.err[0] in ("sum", "contract"):
            # the sign of a zero sum depends on the accumulator's start (NumPy: +0.0 for fewer than
            # 8 terms, the first term for more; a BLAS: 0 + -0 or -0 alone)
            c.zsign = True
        s = Stmt(
            var,
            c.expr,
            c.op,
            tuple(c.uses),
            None if exact else c.err,
            c.wild,
            c.zsign and not exact,
            c.smooth,
            c.limit,
            c.limit_jit,
        )
        self.pool.append(Val(var, value, "stmt"))
        self.ns[var] = value
        if any(u in self.traced for u in c.uses):
            self.traced.add(var)
        return s

    def ok_value(self, value, c: Cand) -> bool:
        k = kind_of(value)
        if k == "list":
            return 0 < len(value) <= 8 and all(self.ok_array(x, c) for x in value)
        if k not in ("array", "npscalar", "pyfloat", "pyint", "pybool"):
            return False
        return self.ok_array(np.asarray(value), c)

    def ok_array(self, a: np.ndarray, c: Cand) -> bool:
        if a.size > MAX_SIZE or a.ndim > 5:
            return False
        if a.dtype.kind not in "fib" or (
            a.dtype.kind == "f" and a.dtype not in (F32, F64) and not c.limit_jit
        ):
            return False
        return a.dtype.kind != "i" or a.dtype.itemsize in (1, 4, 8)

    def gen_program(self, max_stmts: int) -> Program:
        self.start_program()
        stmts: list = []
        error = None
        want_error = self.rnd.chance(self.p_error)
        n = self.rnd.int(1, max_stmts)
        tries = 0
        while len(stmts) < n and tries < 12 * n:
            tries += 1
            op = self.rnd.weighted([(w, f) for f, w in GRAMMAR])
            if op is g_limit and not self.rnd.chance(self.p_limit * 25):
                continue
            try:
                cands = op(self)
            except Exception:  # a generator's own slip (e.g. an axis out of range): try another
                if STRICT:
                    raise
                continue
            if not cands:
                continue
            saved = (list(self.pool), dict(self.ns), self.n, set(self.traced))
            new = []
            for c in cands:
                value = self.run(c)
                if isinstance(value, Exception):
                    if want_error and c is cands[-1] and _error_ok(value):
                        new.append(self.accept(c, None))
                        error = f"{type(value).__name__}: {value}"
                    break
                if not self.ok_value(value, c):
                    break
                new.append(self.accept(c, value))
            else:
                stmts.extend(new)
                continue
            if error is not None:
                stmts.extend(new)
                break
            self.pool, self.ns, self.n, self.traced = saved
        if want_error and error is None:  # end with a statement where NumPy raises, if one can be found
            for _ in range(10):
                try:
                    cands = g_error(self)
                except Exception:
                    if STRICT:
                        raise
                    continue
                if not cands:
                    continue
                value = self.run(cands[0])
                if isinstance(value, Exception) and _error_ok(value):
                    stmts.append(self.accept(cands[0], None))
                    error = f"{type(value).__name__}: {value}"
                    break
        if not stmts:
            return None
        outs = [stmts[-1].var]
        if error is None and self.rnd.chance(0.15):
            extra = self.rnd.choice([s.var for s in stmts] + self.batch.params)
            if extra not in outs:
                outs.append(extra)
        return renumber(dce(Program(stmts, outs, error)))


def renumber(p: Program) -> Program:
    """Statement variables named v0, v1, ... in order (readable repros)."""
    names = {s.var: f"v{i}" for i, s in enumerate(p.stmts)}

    def sub(text):
        return re.sub(r"\bv\d+\b", lambda m: names.get(m.group(0), m.group(0)), text)

    stmts = []
    for st in p.stmts:
        d = dict(st.__dict__)
        d.update(
            var=names[st.var],
            expr=sub(st.expr),
            uses=tuple(names.get(u, u) for u in st.uses),
            wild=sub(st.wild) if st.wild else None,
            err=tuple(sub(e) if isinstance(e, str) else e for e in st.err) if st.err else None,
        )
        stmts.append(Stmt(**d))
    return Program(stmts, [names.get(o, o) for o in p.outs], p.error)


def _error_ok(e: Exception) -> bool:
    """NumPy errors worth keeping as error programs (not the fuzzer's own mistakes)."""
    return isinstance(e, (ValueError, TypeError, IndexError, OverflowError)) and not isinstance(
        e, (NameError, SyntaxError)
    )


# --- op generators: each returns a list of candidate statements (or None) ------------------------


def g_unary(g: Gen):
    r = g.rnd
    name = r.weighted([(w, k) for k, (w, *_) in UNARY.items()] + [(2, "expit"), (2, "round")])
    x = g.pick()
    if x is None:
        return None
    if name == "expit":
        return [Cand(f"scipy.special.expit({x.name})", "scipy.special.expit", (x.name,), ULP())]
    if name == "round":
        d = r.weighted([(6, None), (2, 1), (2, 2), (1, -1), (1, 0)])
        form = r.choice(["np.round({x}{d})", "np.around({x}{d})"])
        dec = "" if d is None else f", {d}"
        err = None if d in (None, 0) else ULP(k=2)
        return [Cand(form.format(x=x.name, d=dec), "np.round", (x.name,), err, smooth=False)]
    _, err, smooth, opform = UNARY[name]
    if opform and r.chance(0.5):
        expr = opform.format(x=x.name)
        if name == "conjugate" and r.chance(0.5):
            expr = r.choice([f"{x.name}.conjugate()", f"np.real({x.name})", f"{x.name}.real"])
    elif r.chance(0.06):
        expr = f"np.{name}({x.name}, dtype={r.choice(['np.float32', 'np.float64'])})"
    else:
        expr = f"np.{name}({x.name})"
    wild = None
    if name == "reciprocal" and x.fk in "iu":
        wild = f"np.asarray({x.name}) == 0"  # 1/0 for ints: a platform-dependent value
    if name == "signbit":
        wild = f"np.isnan({x.name})"  # the sign of a NaN depends on how it was made
    if err is not None and err[2]:
        err = ("ulp", err[1], err[2].format(x=x.name))
    return [Cand(expr, f"np.{name}", (x.name,), err, wild=wild, smooth=smooth)]


def _operand(g: Gen, x: Val, nice=False):
    """A second operand for an elementwise op with x: a broadcastable value or a literal."""
    r = g.rnd
    if r.chance(0.3):
        return None, g.scalar_lit(nice)
    if r.chance(0.03):
        y = g.pick()  # maybe not broadcastable: an error program
    else:
        y = g.pick(lambda v: (s := _bshape(v.shape, x.shape)) is not None and _size(s) <= MAX_SIZE)
    if y is None:
        return None, g.scalar_lit(nice)
    return y, y.name


def _paren(t: str) -> str:
    """`t` as an operand of a binary operator (literals like -1.5 or 2**31 need parentheses)."""
    return f"({t})" if t.startswith("-") or "**" in t else t


def g_binary(g: Gen):
    r = g.rnd
    name = r.weighted([(w, k) for k, (w, *_) in BINARY.items()])
    _, err, smooth, sym, zsign = BINARY[name]
    x = g.pick()
    if x is None:
        return None
    y, ytxt = _operand(g, x)
    if y is None and x.kind in ("pyfloat", "pyint", "pybool") and sym:
        return None  # pure Python arithmetic is Python's business, not NumPy's
    a, b = (x.name, ytxt) if r.chance(0.7) else (ytxt, x.name)
    if sym and r.chance(0.6) and not (x.kind.startswith("py") and (y is None or y.kind.startswith("py"))):
        expr = f"{_paren(a)} {sym} {_paren(b)}"
    else:
        expr = f"np.{name}({a}, {b})"
    uses = (x.name,) + ((y.name,) if y is not None else ())
    if err is not None and err[2]:
        err = ("ulp", err[1], err[2].format(x=a, y=b))
    wild = None
    if name == "copysign":
        wild = f"np.broadcast_to(np.isnan({b}), np.broadcast_shapes(np.shape({a}), np.shape({b})))"
    return [Cand(expr, f"np.{name}", uses, err, wild=wild, zsign=zsign, smooth=smooth)]


REDUCTIONS = ["sum", "prod", "max", "amax", "min", "amin", "mean", "var", "std", "argmax", "argmin", "cumsum",
              "norm", "diff", "trace"]  # fmt: skip
METHODS = {"sum", "prod", "max", "min", "mean", "var", "std", "argmax", "argmin", "cumsum"}


def _reduce_err(fname: str, template: str, x: str, kw: str, axis, keepdims, ddof=0):
    """The error model of reduction `fname` written by `template` (with {F} and {x})."""
    if fname in ("sum", "mean", "cumsum", "norm", "trace"):
        return ("sum", template.format(F=fname, x=f"_A({x})", kw=kw))
    if fname == "prod":
        t = template.replace("{F}", "sum")
        return ("prod", t.format(x=f"_LMAX({x})", kw=kw), t.format(x=f"_LMIN({x})", kw=kw))
    if fname in ("var", "std"):
        return ("var", f"_VARTOL({x}, _RES, {axis!r}, {ddof!r}, {keepdims!r}, {fname == 'std'})")
    return None


def g_reduce(g: Gen):
    r = g.rnd
    fname = r.choice(REDUCTIONS)
    x = g.pick()
    if x is None:
        return None
    nd = x.ndim
    kw = []
    axis = None
    keepdims = False
    ddof = 0
    if fname in ("argmax", "argmin", "cumsum"):
        axis = g.axis(nd, tuple_ok=False)
    elif fname == "diff":
        axis = g.axis(nd, none=False, tuple_ok=False) if nd else -1
    elif fname == "trace":
        kw.append(f"offset={r.int(-1, 1)}" if r.chance(0.3) else "")
        if nd > 2 and r.chance(0.5):
            kw.append(f"axis1={nd - 1}, axis2={r.int(0, nd - 2)}")
    elif fname == "norm":
        if nd >= 1 and r.chance(0.5):
            axis = g.axis(nd, none=False, tuple_ok=nd == 2)
            if isinstance(axis, tuple) and len(axis) != 2:
                axis = axis[0]
        if nd == 2 and axis is None and r.chance(0.2):
            kw.append("ord='fro'")
        elif (nd == 1 or isinstance(axis, int)) and r.chance(0.2):
            kw.append("ord=2")
    else:
        axis = g.axis(nd)
    if axis is not None and fname not in ("diff", "trace"):
        kw.append(f"axis={axis!r}")
    elif fname == "diff":
        kw.append(f"axis={axis!r}")
        if r.chance(0.3):
            kw.append("n=2")
    if fname not in ("cumsum", "diff", "trace") and r.chance(0.25):
        keepdims = True
        kw.append("keepdims=True")
    if fname in ("sum", "prod", "mean", "cumsum") and r.chance(0.1):
        dts = ["np.float64", "np.float32", "np.int64"]
        if fname == "mean" and x.size == 0:  # 0/0 cast to an integer is undefined (NaN -> int)
            dts = dts[:2]
        kw.append(f"dtype={r.choice(dts)}")
    if fname in ("var", "std") and r.chance(0.4):
        axes = () if axis is None else axis if isinstance(axis, tuple) else (axis,)
        n = _size([x.shape[a] for a in axes if -nd <= a < nd]) if axes else x.size
        ddof = r.choice([0, 1, 1, 2, n, n + 1])
        kw.append(f"ddof={ddof}")
    kwtxt = ", ".join(k for k in kw if k)
    if fname == "norm":
        template = "np.linalg.{F}({x}" + (", {kw})" if kwtxt else ")")
    elif fname in METHODS and x.kind == "array" and r.chance(0.4):
        template = "{x}.{F}(" + ("{kw})" if kwtxt else ")")
    else:
        template = "np.{F}({x}" + (", {kw})" if kwtxt else ")")
    expr = template.format(F=fname, x=x.name, kw=kwtxt)
    if fname in ("amax", "amin"):
        base = fname[1:]
        template = template.replace("{F}", base)
    else:
        base = fname
    err = _reduce_err(base, template, x.name, kwtxt, axis, keepdims, ddof)
    smooth = base not in ("max", "min", "argmax", "argmin")
    zsign = base in ("max", "min")
    return [Cand(expr, f"np.{fname}", (x.name,), err, zsign=zsign, smooth=smooth)]


def g_ufunc_method(g: Gen):
    r = g.rnd
    x = g.pick()
    if x is None:
        return None
    kind = r.weighted([(4, "reduce"), (2, "accumulate"), (3, "outer")])
    if kind == "outer":
        name = r.weighted([(w, k) for k, (w, *_) in BINARY.items()])
        _, err, smooth, _, zsign = BINARY[name]
        y = g.pick(lambda v: v.size * max(x.size, 1) <= MAX_SIZE)
        if y is None:
            return None
        if err is not None and err[2]:
            err = ("ulp", err[1], f"np.maximum.outer(_A({x.name}), _A({y.name}))")
        expr = f"np.{name}.outer({x.name}, {y.name})"
        return [Cand(expr, f"np.{name}.outer", (x.name, y.name), err, zsign=zsign, smooth=smooth)]
    if kind == "accumulate":
        axis = g.axis(x.ndim, none=False, tuple_ok=False) if x.ndim else 0
        expr = f"np.add.accumulate({x.name}, axis={axis})"
        return [
            Cand(
                expr, "np.add.accumulate", (x.name,), ("sum", f"np.add.accumulate(_A({x.name}), axis={axis})")
            )
        ]
    u = r.choice(["add", "multiply", "maximum", "minimum"])
    axis = g.axis(x.ndim) if r.chance(0.7) else 0
    kw = f", axis={axis!r}" + (", keepdims=True" if r.chance(0.2) else "")
    expr = f"np.{u}.reduce({x.name}{kw})"
    if u == "add":
        err = ("sum", f"np.add.reduce(_A({x.name}){kw})")
    elif u == "multiply":
        err = ("prod", f"np.add.reduce(_LMAX({x.name}){kw})", f"np.add.reduce(_LMIN({x.name}){kw})")
    else:
        err = None
    return [
        Cand(
            expr, f"np.{u}.reduce", (x.name,), err, zsign=u in ("maximum", "minimum"), smooth=err is not None
        )
    ]


def _factor_shape(r: Rand, n: int) -> tuple:
    """A random shape with n elements."""
    if n == 0:
        k = r.int(1, 3)
        s = [r.int(0, 3) for _ in range(k)]
        s[r.int(0, k - 1)] = 0
        return tuple(s)
    dims = []
    rest = n
    for _ in range(r.int(0, 3)):
        divs = [d for d in range(1, rest + 1) if rest % d == 0]
        d = r.choice(divs)
        dims.append(d)
        rest //= d
    dims.append(rest)
    if r.chance(0.2):
        dims.insert(r.int(0, len(dims)), 1)
    return tuple(dims)


def g_shape(g: Gen):
    r = g.rnd
    x = g.pick()
    if x is None:
        return None
    nd, xs = x.ndim, x.name
    op = r.choice(["reshape", "ravel", "transpose", "swapaxes", "moveaxis", "expand_dims", "squeeze",
                   "broadcast_to", "atleast", "flip", "tile", "repeat"])  # fmt: skip
    if op == "reshape":
        s = _factor_shape(r, x.size)
        if r.chance(0.3) and s and x.size:
            i = r.int(0, len(s) - 1)
            s = s[:i] + (-1,) + s[i + 1 :]
        if r.chance(0.03):
            s = s + (2,)
        f = r.weighted([(3, "np"), (2, "meth"), (1, "star")])
        if f == "np":
            e = f"np.reshape({xs}, {s!r})"
        elif f == "meth" or x.kind != "array":
            e = f"{xs}.reshape({s!r})" if x.kind == "array" else f"np.reshape({xs}, {s!r})"
        else:
            e = f"{xs}.reshape({', '.join(map(str, s))})" if s else f"{xs}.reshape(())"
        return [Cand(e, "reshape", (xs,))]
    if op == "ravel":
        e = (
            r.choice([f"np.ravel({xs})", f"{xs}.ravel()", f"{xs}.flatten()"])
            if x.kind == "array"
            else f"np.ravel({xs})"
        )
        return [Cand(e, "ravel", (xs,))]
    if op == "transpose":
        perm = list(range(nd))
        for i in range(nd - 1, 0, -1):
            j = r.int(0, i)
            perm[i], perm[j] = perm[j], perm[i]
        perm = [p - nd if r.chance(0.2) else p for p in perm]
        meth = x.kind == "array"
        forms = [f"np.transpose({xs})", f"np.transpose({xs}, {tuple(perm)!r})"]
        if meth:
            forms += [f"{xs}.T", f"{xs}.transpose({tuple(perm)!r})", f"{xs}.transpose()"]
            if nd >= 1:
                forms.append(f"{xs}.transpose({', '.join(map(str, perm))})")
            if nd >= 2:
                forms.append(f"{xs}.mT")
        return [Cand(r.choice(forms), "transpose", (xs,))]
    if op == "swapaxes":
        a, b = g.axis(nd, none=False, tuple_ok=False), g.axis(nd, none=False, tuple_ok=False)
        e = (
            f"{xs}.swapaxes({a}, {b})"
            if x.kind == "array" and r.chance(0.5)
            else f"np.swapaxes({xs}, {a}, {b})"
        )
        return [Cand(e, "swapaxes", (xs,))]
    if op == "moveaxis":
        a, b = g.axis(nd, none=False, tuple_ok=False), g.axis(nd, none=False, tuple_ok=False)
        return [Cand(f"np.moveaxis({xs}, {a}, {b})", "moveaxis", (xs,))]
    if op == "expand_dims":
        k = r.int(1, 2)
        a = g.axis(nd + k, none=False, tuple_ok=k > 1)
        return [Cand(f"np.expand_dims({xs}, {a!r})", "expand_dims", (xs,))]
    if op == "squeeze":
        ones = [i for i, d in enumerate(x.shape) if d == 1]
        if ones and r.chance(0.5):
            a = r.choice(ones) - (nd if r.chance(0.3) else 0)
            kw = f"axis={a}" if r.chance(0.5) else str(a)
        elif r.chance(0.05) and nd:
            kw = f"axis={r.int(0, nd - 1)}"
        else:
            kw = ""
        e = (
            f"{xs}.squeeze({kw})"
            if x.kind == "array" and r.chance(0.4)
            else f"np.squeeze({xs}{', ' + kw if kw else ''})"
        )
        return [Cand(e, "squeeze", (xs,))]
    if op == "broadcast_to":
        s = [d if d != 1 or r.chance(0.5) else r.int(0, 3) for d in x.shape]
        s = [r.int(1, 3) for _ in range(r.weighted([(3, 0), (2, 1), (1, 2)]))] + s
        if r.chance(0.03) and s:
            s[-1] += 1
        return [Cand(f"np.broadcast_to({xs}, {tuple(s)!r})", "broadcast_to", (xs,))]
    if op == "atleast":
        return [Cand(f"np.atleast_{r.choice([1, 2])}d({xs})", "atleast_nd", (xs,))]
    if op == "flip":
        if nd >= 2 and r.chance(0.3):
            return [Cand(f"np.{r.choice(['fliplr', 'flipud'])}({xs})", "fliplr/flipud", (xs,))]
        if nd == 1 and r.chance(0.1):
            return [Cand(f"np.flipud({xs})", "fliplr/flipud", (xs,))]
        a = g.axis(nd)
        return [Cand(f"np.flip({xs})" if a is None else f"np.flip({xs}, {a!r})", "flip", (xs,))]
    if op == "tile":
        reps = r.int(1, 3) if r.chance(0.4) else tuple(r.int(1, 3) for _ in range(r.int(1, 3)))
        return [Cand(f"np.tile({xs}, {reps!r})", "tile", (xs,))]
    # repeat
    axis = g.axis(nd, tuple_ok=False) if nd else None
    n_ax = x.size if axis is None else (x.shape[axis] if -nd <= axis < nd else 1)
    reps = r.int(0, 3) if r.chance(0.6) else [r.int(0, 2) for _ in range(n_ax if r.chance(0.9) else n_ax + 1)]
    kw = "" if axis is None else f", axis={axis}"
    if x.kind == "array" and r.chance(0.4):
        return [Cand(f"{xs}.repeat({reps!r}{kw})", "repeat", (xs,))]
    return [Cand(f"np.repeat({xs}, {reps!r}{kw})", "repeat", (xs,))]


def _same_but(shape, axis):
    return lambda v: (
        v.ndim == len(shape)
        and all(a == b for i, (a, b) in enumerate(zip(v.shape, shape)) if i != axis % len(shape))
    )


def g_join(g: Gen):
    r = g.rnd
    lists = g.pick(lambda v: v.kind == "list", numeric=False)
    if lists is not None and r.chance(0.5):
        L = lists
        n = len(L.value)
        how = r.choice(["index", "concat", "stack"])
        if how == "index":
            return [Cand(f"{L.name}[{r.int(-n, n - 1)}]", "split()[i]", (L.name,))]
        if how == "concat":
            nd = L.value[0].ndim
            return [
                Cand(f"np.concatenate({L.name}, axis={g.axis(nd, tuple_ok=False)})", "concatenate", (L.name,))
            ]
        return [Cand(f"np.stack({L.name}, axis={r.int(-1, L.value[0].ndim)})", "stack", (L.name,))]
    x = g.arr()
    if x is None:
        return None
    nd = x.ndim
    op = r.weighted([(4, "concatenate"), (3, "stack"), (1, "hstack"), (1, "vstack"), (3, "split")])
    if op == "split":
        if nd == 0:
            return None
        axis = g.axis(nd, none=False, tuple_ok=False)
        n = x.shape[axis] if -nd <= axis < nd else 2
        if r.chance(0.6):
            divs = [d for d in range(1, max(n, 1) + 1) if n % d == 0] or [1]
            sec = r.choice(divs) if r.chance(0.95) else n + 1
        else:
            sec = sorted(r.int(-1, n + 1) for _ in range(r.int(1, 2)))
        return [Cand(f"np.split({x.name}, {sec!r}, axis={axis})", "split", (x.name,))]
    if op in ("concatenate", "hstack", "vstack"):
        if nd == 0 and op == "concatenate":
            return None
        axis = g.axis(nd, none=op == "concatenate", tuple_ok=False) if nd else 0
        ax = 0 if axis is None else axis
        k = r.int(1, 2)
        names = [x.name]
        for _ in range(k):
            shp = list(x.shape)
            if shp and -nd <= ax < nd:
                shp[ax] = r.int(0, 3)
            if op == "concatenate" and axis is not None:
                y = g.partner(x, _same_but(x.shape, ax) if nd else (lambda v: False), shp)
            else:
                y = g.partner(x, lambda v: v.shape == x.shape, x.shape)
            names.append(y or x.name)
        seq = "[" + ", ".join(names) + "]" if r.chance(0.7) else "(" + ", ".join(names) + ")"
        if op == "concatenate":
            e = (
                f"np.concatenate({seq})"
                if axis == 0 and r.chance(0.3)
                else f"np.concatenate({seq}, axis={axis})"
            )
        else:
            e = f"np.{op}({seq})"
        return [Cand(e, op, tuple(dict.fromkeys(names)))]
    names = [x.name]
    for _ in range(r.int(0, 2)):
        names.append(g.partner(x, lambda v: v.shape == x.shape, x.shape) or x.name)
    axis = r.int(-nd - 1, nd)
    e = (
        f"np.stack([{', '.join(names)}], axis={axis})"
        if r.chance(0.7)
        else f"np.stack(({', '.join(names)},))"
    )
    return [Cand(e, "stack", tuple(dict.fromkeys(names)))]


def _index_entry(g: Gen, n: int, adv_ok=True):
    """One entry of an index tuple for an axis of length n: (text, uses, kind)."""
    r = g.rnd
    k = r.weighted([(30, "full"), (30, "slice"), (15, "int"), (10, "intarr"), (5, "mask"), (6, "traced")])
    if not adv_ok and k in ("intarr", "mask", "traced"):
        k = "slice"
    if k == "full":
        return ":", (), k
    if k == "slice":

        def bound():
            return "" if r.chance(0.4) else str(r.int(-n - 2, n + 2))

        step = r.weighted(
            [(5, ""), (3, "2"), (3, "-1"), (2, "-2"), (1, "3"), (0 if not r.chance(0.02) else 1, "0")]
        )
        return f"{bound()}:{bound()}" + (f":{step}" if step else ""), (), k
    if k == "int":
        if n == 0 or r.chance(0.03):
            return str(r.choice([n, -n - 1, 0])), (), k
        return str(r.int(-n, n - 1)), (), k
    if k == "intarr":
        m = r.int(1, 4)
        vals = [r.int(-n, n - 1) if n and not r.chance(0.03) else n for _ in range(m)]
        if r.chance(0.3):
            return f"np.array({vals!r})", (), k
        if r.chance(0.2) and m >= 2:
            return f"np.array({[vals[:1] * 2, vals[1:2] * 2]!r})", (), k
        return repr(vals), (), k
    if k == "mask":
        bits = [r.chance(0.5) for _ in range(n if not r.chance(0.03) else n + 1)]
        return f"np.array({bits!r})", (), k
    iv = g.pick(lambda v: v.fk == "i" and v.size <= 8 and v.kind in ("array", "npscalar"))
    if iv is None or n == 0:
        return ":", (), "full"
    if r.chance(0.9):
        return f"{iv.name} % {n}", (iv.name,), k
    return iv.name, (iv.name,), k


def g_index(g: Gen):
    r = g.rnd
    x = g.arr(lambda v: v.kind == "array")
    if x is None:
        return None
    nd = x.ndim
    how = r.weighted([(8, "subscript"), (2, "take"), (1, "take_along_axis"), (1, "scalar_mask")])
    if how == "scalar_mask":
        if r.chance(0.3):
            return [Cand(f"{x.name}[True]", "x[True]", (x.name,), limit=True)]
        return [Cand(f"{x.name}[{r.choice(['np.True_', 'np.False_'])}]", "x[np.bool_]", (x.name,))]
    if how == "take":
        axis = g.axis(nd, tuple_ok=False) if nd else None
        n = x.size if axis is None else x.shape[axis] if -nd <= axis < nd else 1
        txt, uses, _ = _index_entry(g, n)
        if txt in (":",) or ":" in txt or txt.startswith("np.array([T") or txt.startswith("np.array([F"):
            txt = str(r.int(-n, n - 1)) if n else "0"
        kw = "" if axis is None else f", axis={axis}"
        e = f"{x.name}.take({txt}{kw})" if r.chance(0.4) else f"np.take({x.name}, {txt}{kw})"
        return [Cand(e, "take", (x.name, *uses), limit=_const_by_traced(g, x, uses))]
    if how == "take_along_axis":
        if nd == 0:
            return None
        axis = g.axis(nd, none=False, tuple_ok=False)
        if not -nd <= axis < nd:
            axis = 0
        if r.chance(0.4):
            idx = f"np.{r.choice(['argmax', 'argmin'])}({x.name}, axis={axis}, keepdims=True)"
        else:
            shp = list(x.shape)
            shp[axis] = r.int(1, 3)
            shp = [d if not r.chance(0.2) else 1 for d in shp]
            n = x.shape[axis]
            if n == 0:
                return None
            nrng = np.random.default_rng(r.seed())
            idx = lit(nrng.integers(-n, n, shp))
        # an index from argmax/argmin: x[argmax(x)] is max(x), not smooth (a near tie flips it)
        return [Cand(f"np.take_along_axis({x.name}, {idx}, axis={axis})", "take_along_axis", (x.name,),
                     smooth="arg" not in idx)]  # fmt: skip
    entries, uses = [], [x.name]
    m = r.int(1, nd) if nd else 0
    for i in range(m):
        txt, u, _ = _index_entry(g, x.shape[i])
        entries.append(txt)
        uses.extend(u)
    limit = _const_by_traced(g, x, uses[1:])
    if r.chance(0.15) or nd == 0:
        entries.insert(r.int(0, len(entries)), "None")
    if r.chance(0.15):
        if r.chance(0.5) and m < nd:
            entries.append("...")
        else:
            entries.insert(0, "...")
            entries = entries[: len(entries)]
    if not entries:
        entries = ["..."]
    if entries.count("...") and len(entries) > 1 and entries[0] == "..." and m == nd:
        entries = entries[1:]  # keep the index valid: '...' stands for the axes not named
    e = f"{x.name}[{', '.join(entries)}]"
    return [Cand(e, "getitem", tuple(dict.fromkeys(uses)), limit=limit)]


def _const_by_traced(g: Gen, x: Val, uses) -> bool:
    """A NumPy constant indexed by a traced value: NumPy cannot dispatch that to tracediff
    (ndarray.__getitem__ converts the index with __array__): a documented TracerError."""
    return x.name not in g.traced and any(u in g.traced for u in uses)


def _letters(k, start=0):
    return "ijklmnop"[start : start + k]


def g_contract(g: Gen):
    r = g.rnd
    x = g.arr(lambda v: v.kind == "array" and v.ndim >= 1 and v.fk in "fib")
    if x is None:
        return None
    xs = x.name
    op = r.weighted([(5, "matmul"), (3, "dot"), (1, "vdot"), (1, "inner"), (2, "outer"), (2, "tensordot"),
                     (4, "einsum"), (1, "diagonal")])  # fmt: skip
    if op == "diagonal":
        if x.ndim < 2:
            return None
        a1, a2 = r.int(0, x.ndim - 1), r.int(0, x.ndim - 1)
        kw = (
            f", {r.int(-2, 2)}, {a1}, {a2}"
            if r.chance(0.6)
            else f", offset={r.int(-1, 1)}"
            if r.chance(0.5)
            else ""
        )
        return [Cand(f"np.diagonal({xs}{kw})", "diagonal", (xs,))]
    if op in ("matmul", "dot"):
        k = x.shape[-1]
        if r.chance(0.3) and x.ndim >= 2:
            y = xs + ".T" if x.ndim == 2 else f"np.swapaxes({xs}, -1, -2)"
            uses = (xs,)
        else:
            m = r.int(1, 4)
            want = (k,) if r.chance(0.3) else (k, m)
            pred = (
                (lambda v: v.ndim == 1 and v.shape[0] == k)
                if len(want) == 1
                else (lambda v: v.ndim >= 2 and v.shape[-2] == k and _size(v.shape) <= MAX_SIZE)
            )
            y = g.partner(x, pred, want)
            uses = (xs, y)
        forms = {
            "matmul": [f"{xs} @ {y}", f"np.matmul({xs}, {y})"],
            "dot": [f"np.dot({xs}, {y})", f"{xs}.dot({y})"],
        }
        e = r.choice(forms[op])
        err = ("contract", _abs_template(e, uses))
        limit = e.startswith(f"{xs}.dot(") and _const_by_traced(g, x, uses[1:])  # ndarray.dot(tracer)
        return [Cand(e, op, uses, err, limit=limit)]
    if op == "vdot":
        y = g.partner(x, lambda v: v.size == x.size, x.shape)
        e = f"np.vdot({xs}, {y})"
        return [Cand(e, "vdot", (xs, y), ("contract", _abs_template(e, (xs, y))))]
    if op == "inner":
        y = g.partner(x, lambda v: v.ndim >= 1 and v.shape[-1] == x.shape[-1], (r.int(1, 3), x.shape[-1]))
        e = f"np.inner({xs}, {y})"
        return [Cand(e, "inner", (xs, y), ("contract", _abs_template(e, (xs, y))))]
    if op == "outer":
        y = g.pick(lambda v: v.size * max(x.size, 1) <= MAX_SIZE)
        if y is None:
            return None
        e = f"np.outer({xs}, {y.name})"
        return [Cand(e, "outer", (xs, y.name))]
    if op == "tensordot":
        k = r.int(0, min(2, x.ndim))
        if r.chance(0.6):
            want = x.shape[x.ndim - k :] + ((r.int(1, 3),) if r.chance(0.7) else ())
            y = g.partner(x, lambda v: v.shape[:k] == x.shape[x.ndim - k :] and v.ndim >= k, want)
            e = f"np.tensordot({xs}, {y}, {k})" if r.chance(0.5) else f"np.tensordot({xs}, {y}, axes={k})"
        else:
            i = r.int(0, x.ndim - 1)
            want = (r.int(1, 3), x.shape[i])
            y = g.partner(x, lambda v: v.ndim == 2 and v.shape[1] == x.shape[i], want)
            e = f"np.tensordot({xs}, {y}, axes=([{i}], [1]))"
        return [Cand(e, "tensordot", (xs, y), ("contract", _abs_template(e, (xs, y))))]
    # einsum
    xl = list(_letters(x.ndim))
    if x.ndim >= 2 and x.shape[0] == x.shape[1] and r.chance(0.2):
        xl[1] = xl[0]  # a diagonal
    if r.chance(0.3):  # one operand
        letters = list(dict.fromkeys(xl))
        out = [c for c in letters if r.chance(0.6)]
        for i in range(len(out) - 1, 0, -1):
            j = r.int(0, i)
            out[i], out[j] = out[j], out[i]
        sub = f"{''.join(xl)}->{''.join(out)}"
        e = f"np.einsum({sub!r}, {xs})"
        return [Cand(e, "einsum", (xs,), ("contract", _abs_template(e, (xs,))))]
    dims = {c: x.shape[i] for i, c in enumerate(xl)}
    yl = [c for c in dict.fromkeys(xl) if r.chance(0.5)] + list(_letters(r.int(0, 2), 5))
    for i in range(len(yl) - 1, 0, -1):
        j = r.int(0, i)
        yl[i], yl[j] = yl[j], yl[i]
    if not yl:
        yl = [xl[-1]]
    yshape = tuple(dims.get(c, r.int(1, 3)) for c in yl)
    y = g.partner(x, lambda v: v.shape == yshape, yshape)
    allc = list(dict.fromkeys(xl + yl))
    out = [c for c in allc if r.chance(0.5)]
    if r.chance(0.2):
        sub = f"{''.join(xl)},{''.join(yl)}"
    else:
        sub = f"{''.join(xl)},{''.join(yl)}->{''.join(out)}"
    e = f"np.einsum({sub!r}, {xs}, {y})"
    return [Cand(e, "einsum", (xs, y), ("contract", _abs_template(e, (xs, y))))]


def _abs_template(e: str, uses) -> str:
    """`e` with each operand name replaced by its absolute value (the bound of a sum of products)."""
    out = e
    for u in dict.fromkeys(uses):
        out = re.sub(rf"(?<![\w.]){re.escape(u)}(?![\w])", f"_A({u})", out)
    return out


def g_select(g: Gen):
    r = g.rnd
    x = g.pick()
    if x is None:
        return None
    if r.chance(0.5):  # where
        how = r.weighted([(3, "bool"), (3, "cmp"), (1, "mask"), (1, "nonbool")])
        uses = [x.name]
        if how == "bool":
            c = g.pick(lambda v: v.fk == "b" and _bshape(v.shape, x.shape) is not None)
            if c is None:
                how = "cmp"
            else:
                cond = c.name
                uses.append(c.name)
        if how == "cmp":
            cond = f"{x.name} {r.choice(['>', '<', '>=', '=='])} {r.choice(['0', '0.5', '1', '-1'])}"
        elif how == "mask":
            cond = g.const(x.shape if x.shape and r.chance(0.7) else x.shape[-1:], np.bool_)
            uses.append(cond)
        elif how == "nonbool":
            c = g.pick(lambda v: v.fk in "if" and _bshape(v.shape, x.shape) is not None)
            cond = c.name if c is not None else "1.0"
            if c is not None:
                uses.append(c.name)
        y, ytxt = _operand(g, x)
        if y is not None:
            uses.append(y.name)
        a, b = (x.name, ytxt) if r.chance(0.5) else (ytxt, x.name)
        smooth = how in ("bool", "mask")
        return [Cand(f"np.where({cond}, {a}, {b})", "np.where", tuple(dict.fromkeys(uses)), smooth=smooth)]
    # clip
    lo = r.choice([None, "0.0", "-1.0", "0.5", "-0.5", "np.nan", "1"])
    hi = r.choice([None, "1.0", "2.0", "0.5", "0"])
    uses = [x.name]
    if r.chance(0.2):
        y = g.pick(lambda v: _bshape(v.shape, x.shape) is not None)
        if y is not None:
            lo = y.name
            uses.append(y.name)
    if lo is None and hi is None:
        hi = "1.0"
    if x.kind == "array" and r.chance(0.4):
        if r.chance(0.5):
            kw = ", ".join(f"{k}={v}" for k, v in (("min", lo), ("max", hi)) if v is not None)
            e = f"{x.name}.clip({kw})"
        else:
            e = f"{x.name}.clip({lo}, {hi})"
    else:
        e = f"np.clip({x.name}, {lo}, {hi})"
    return [Cand(e, "clip", tuple(uses), zsign=True, smooth=False)]


def g_astype(g: Gen):
    r = g.rnd
    x = g.pick(lambda v: v.kind in ("array", "npscalar"))
    if x is None:
        return None
    dt = r.weighted([(6, "np.float64"), (6, "np.float32"), (4, "np.int64"), (2, "np.int32"), (3, "bool"),
                     (1, "np.int8"), (1, "np.float16")])  # fmt: skip
    src = x.name
    if x.fk == "f" and dt in ("np.int64", "np.int32", "np.int8"):
        # float -> int of NaN, inf or out-of-range values is undefined: keep values in range
        big = {"np.int64": "1e9", "np.int32": "1e9", "np.int8": "100.0"}[dt]
        with np.errstate(all="ignore"):
            unsafe = not np.all(np.isfinite(x.arr)) or np.any(np.abs(x.arr.astype(np.float64)) >= float(big))
        if unsafe:
            src = f"np.clip(np.where(np.isfinite({x.name}), {x.name}, 0), -{big}, {big})"
    form = f"{src}.astype({dt})" if src == x.name else f"({src}).astype({dt})"
    return [Cand(form, "astype", (x.name,), smooth=dt in ("np.float64", "np.float32") and x.fk == "f",
                 limit_jit=dt == "np.float16")]  # fmt: skip


def g_create(g: Gen):
    r = g.rnd
    x = g.pick()
    if x is None:
        return None
    xs = x.name
    op = r.choice(["zeros_like", "ones_like", "full_like", "empty_like", "copy"])
    dt = f", dtype={r.choice(['np.float32', 'np.float64', 'np.int64', 'bool'])}" if r.chance(0.2) else ""
    if op == "copy":
        e = f"{xs}.copy()" if x.kind == "array" and r.chance(0.5) else f"np.copy({xs})"
        return [Cand(e, "copy", (xs,))]
    if op == "empty_like":
        return [Cand(f"np.zeros_like(np.empty_like({xs}{dt}))", "empty_like", (xs,))]
    if op == "full_like":
        if x.fk == "f" and not dt:
            fill = r.choice(["2.5", "-0.0", "np.nan", "np.inf", "3"])
        else:
            fill = r.choice(["2", "0", "1", "True"])
        s = g.pick(lambda v: v.kind in ("pyfloat", "npscalar") and v.fk == "f" and x.fk == "f" and not dt)
        uses = (xs,)
        if s is not None and r.chance(0.3):
            fill, uses = s.name, (xs, s.name)
        # np.full_like(numpy_constant, traced) makes NumPy copy a tracer into an array: a TracerError
        limit = _const_by_traced(g, x, uses[1:])
        return [Cand(f"np.full_like({xs}, {fill}{dt})", "full_like", uses, limit=limit)]
    return [Cand(f"np.{op}({xs}{dt})", op, (xs,))]


def g_static(g: Gen):
    """Python values computed from shapes, and Python iteration over the first axis."""
    r = g.rnd
    x = g.arr(lambda v: v.kind == "array" and v.ndim >= 1 and v.fk in "fi")
    if x is None:
        return None
    xs = x.name
    how = r.choice(["len", "shape", "ndim", "size", "iter", "builtin_sum", "result_type"])
    if how == "len":
        return [Cand(f"{xs} * len({xs})", "len()", (xs,))]
    if how == "shape":
        return [
            Cand(f"{xs} + {xs}.shape[-1]" if r.chance(0.5) else f"{xs} - np.shape({xs})[0]", "shape", (xs,))
        ]
    if how == "ndim":
        return [Cand(f"{xs} * {xs}.ndim" if r.chance(0.5) else f"{xs} * np.ndim({xs})", "ndim", (xs,))]
    if how == "size":
        return [Cand(f"{xs} / {xs}.size" if r.chance(0.5) else f"{xs} / np.size({xs})", "size", (xs,))]
    if how == "iter":
        return [Cand(f"np.stack([row * 2 for row in {xs}], axis={r.int(-1, 0)})", "iteration", (xs,))]
    if how == "builtin_sum":
        return [Cand(f"sum({xs})", "builtin sum()", (xs,))]
    y = g.pick()
    if y is None:
        return None
    return [Cand(f"{xs}.astype(np.result_type({xs}, {y.name}))", "np.result_type", (xs, y.name))]


def g_idiom(g: Gen):
    """Patterns the optimizer rewrites (or must not): one NumPy operation per statement."""
    r = g.rnd
    x = g.pick(lambda v: v.fk == "f")
    if x is None:
        return None
    xs = x.name
    k = g.n
    v = [f"v{k + i}" for i in range(6)]
    how = r.choice(
        ["logistic", "identity", "pow", "softmax", "normalize", "double", "explog", "relu", "center"]
    )
    if how == "logistic":
        return [
            Cand(f"-{xs}", "np.negative", (xs,)),
            Cand(f"np.exp({v[0]})", "np.exp", (v[0],), ULP()),
            Cand(r.choice([f"1 + {v[1]}", f"{v[1]} + 1.0", f"1.0 + {v[1]}"]), "np.add", (v[1],)),
            Cand(r.choice([f"1 / {v[2]}", f"1.0 / {v[2]}"]), "np.divide", (v[2],)),
        ]
    if how == "identity":
        e = r.choice(["{x} * 1.0", "{x} + 0.0", "{x} - 0.0", "{x} + -0.0", "1.0 * {x}", "0.0 + {x}", "-0.0 + {x}",
                      "{x} / 1.0", "{x} - {x}", "{x} * 0", "{x} / {x}", "{x} + {x}", "{x} * 2", "{x} * {x}",
                      "np.where(True, {x}, 0.0)", "{x}.astype({x}.dtype)", "{x} * True"])  # fmt: skip
        return [Cand(e.format(x=xs), "identity:" + e, (xs,))]
    if how == "pow":
        p = r.choice(
            ["2", "2.0", "1", "1.0", "0", "0.0", "-1", "-1.0", "0.5", "3", "-2", "-0.5", "np.float32(2)"]
        )
        return [Cand(f"{xs} ** {p}", "np.power", (xs,), ULP())]
    if how == "softmax":
        ax = -1 if x.ndim else None
        if ax is None or x.shape[-1] == 0:
            return None
        return [
            Cand(f"np.max({xs}, axis=-1, keepdims=True)", "np.max", (xs,), zsign=True, smooth=False),
            Cand(f"{xs} - {v[0]}", "np.subtract", (xs, v[0])),
            Cand(f"np.exp({v[1]})", "np.exp", (v[1],), ULP()),
            Cand(
                f"np.sum({v[2]}, axis=-1, keepdims=True)",
                "np.sum",
                (v[2],),
                ("sum", f"np.sum(_A({v[2]}), axis=-1, keepdims=True)"),
            ),  # fmt: skip
            Cand(f"{v[2]} / {v[3]}", "np.divide", (v[2], v[3])),
        ]
    if how == "normalize":
        return [
            Cand(f"{xs} * {xs}", "np.multiply", (xs,)),
            Cand(f"np.sum({v[0]})", "np.sum", (v[0],), ("sum", f"np.sum(_A({v[0]}))")),
            Cand(f"np.sqrt({v[1]})", "np.sqrt", (v[1],)),
            Cand(f"{xs} / {v[2]}", "np.divide", (xs, v[2])),
        ]
    if how == "double":
        op = r.choice(["-{x}", "{x}.T", "np.transpose({x})", "{x}.reshape(-1)", "np.exp({x})", "np.abs({x})"])
        e1 = op.format(x=xs)
        e2 = op.format(x=v[0])
        if "reshape" in op:
            e2 = f"{v[0]}.reshape({x.shape!r})"
        err = ULP() if "exp" in op else None
        return [Cand(e1, "double:" + op, (xs,), err, smooth="abs" not in op),
                Cand(e2, "double:" + op, (v[0],), err, smooth="abs" not in op)]  # fmt: skip
    if how == "explog":
        a, b = r.choice(
            [("np.log", "np.exp"), ("np.exp", "np.log"), ("np.sqrt", "np.square"), ("np.log1p", "np.expm1")]
        )
        return [
            Cand(f"{a}({xs})", a, (xs,), None if a == "np.sqrt" else ULP()),
            Cand(f"{b}({v[0]})", b, (v[0],), None if b == "np.square" else ULP()),
        ]
    if how == "relu":
        e = r.choice(["np.maximum({x}, 0)", "np.maximum({x}, 0.0)", "np.where({x} > 0, {x}, 0.0)",
                      "{x} * ({x} > 0)", "np.maximum(0.0, {x})"])  # fmt: skip
        return [Cand(e.format(x=xs), "relu:" + e, (xs,), zsign=True, smooth=False)]
    ax = g.axis(x.ndim, tuple_ok=False) if x.ndim else None
    kw = "" if ax is None else f", axis={ax}"
    return [
        Cand(
            f"np.mean({xs}{kw}, keepdims=True)",
            "np.mean",
            (xs,),
            ("sum", f"np.mean(_A({xs}){kw}, keepdims=True)"),
        ),
        Cand(f"{xs} - {v[0]}", "np.subtract", (xs, v[0])),
    ]


def g_limit(g: Gen):
    """Constructs tracediff documents as unsupported: they must raise a clear error."""
    r = g.rnd
    x = g.arr(lambda v: v.kind == "array")
    if x is None:
        return None
    xs = x.name
    e = r.choice([
        "np.histogram({x})[0]", "np.lexsort(({x},))", "{x}[{x} > 0]", "np.where({x} > 0)", "np.asarray({x})",
        "np.nonzero({x})[0]", "np.astype({x}, np.float64)", "{x}.any()", "{x}.all()", "np.linalg.norm({x}, 1)",
        "np.add({x}, 1, out=np.zeros_like({x}, dtype=np.float64))", "np.unique({x})", "{x}.round()",
        "{x}.reshape(-1, order='F')",
    ])  # fmt: skip
    return [Cand(e.format(x=xs), "unsupported:" + e, (xs,), limit=True, smooth=False)]


def g_error(g: Gen):
    """A statement likely to make NumPy raise: out-of-range axes and indices, shapes that do
    not fit, integer powers, bool arithmetic, integer overflow..."""
    r = g.rnd
    x = g.arr(lambda v: v.kind == "array") or g.pick()
    if x is None:
        return None
    xs, nd, n = x.name, x.ndim, (x.shape[0] if x.ndim else 0)
    bad = [
        f"np.sum({xs}, axis={nd + 1})", f"np.cumsum({xs}, axis={-nd - 2})", f"np.expand_dims({xs}, {nd + 2})",
        f"np.swapaxes({xs}, 0, {nd})", f"np.moveaxis({xs}, {nd}, 0)", f"np.flip({xs}, {nd + 1})",
        f"np.argmax({xs}, axis={nd})", f"np.diff({xs}, axis={nd})", f"np.mean({xs}, axis=({0}, {0}))",
        f"np.reshape({xs}, ({x.size + 1},))", f"{xs}.reshape(-1, -1)", f"np.transpose({xs}, {tuple(range(nd + 1))!r})",
        f"np.broadcast_to({xs}, {(x.shape[-1] + 1,) if nd else (2, 0)!r})", f"np.squeeze({xs}, axis={nd})",
        f"{xs}[{n}]", f"{xs}[{-n - 1}]", f"{xs}[{'0, ' * (nd + 1)}]", f"{xs}[np.array([{n}])]", f"{xs}[0.5]",
        f"{xs}[np.array({[True] * (n + 1)!r})]", f"np.take({xs}, {x.size})", f"np.split({xs}, {max(n, 1) + 1})",
        f"np.concatenate([{xs}, {xs}[None]])", f"np.stack([{xs}, np.zeros({(n + 1,)!r})])",
        f"np.repeat({xs}, [1] * {x.size + 2})", f"{xs} @ np.ones(({(x.shape[-1] if nd else 1) + 1}, 2))",
        f"np.einsum('ij,jk->ik', {xs}, {xs})" if nd != 2 else f"np.einsum('i,i->', {xs}, {xs})",
        f"np.vdot({xs}, np.ones({x.size + 1}))", f"np.take_along_axis({xs}, np.zeros((1,) * {nd + 1}, int), axis=0)",
        f"np.where({xs} > 0, {xs}, np.ones({(x.shape[-1] + 1,) if nd else (2, 3)!r}))", f"np.max({xs}[:0])",
        f"{xs} ** -1", f"{xs} ** np.int64(-2)", f"{xs} - {xs}", f"-{xs}", f"{xs} + 2**40", f"{xs} * 2**64",
        f"~{xs}", f"{xs} << 1", f"np.tile({xs}, -1)", f"np.clip({xs})",
    ]  # fmt: skip
    iv = g.pick(lambda v: v.fk == "i" and v.kind in ("array", "npscalar") and v.size <= 8)
    if iv is not None and nd:
        bad.append(f"{xs}[np.abs({iv.name}) + {n}]")  # a traced index out of range: raises when it runs
        bad.append(f"np.take({xs}, np.abs({iv.name}) + {x.size})")
    e = r.choice(bad)
    uses = (xs,) + ((iv.name,) if iv is not None and iv.name in e else ())
    return [Cand(e, "error:" + re.sub(r"\b(v\d+|[a-d]|C\d+)\b", "x", re.sub(r"-?\d+", "N", e))[:40], uses)]


GRAMMAR = [
    (g_unary, 16),
    (g_binary, 20),
    (g_reduce, 12),
    (g_shape, 12),
    (g_index, 10),
    (g_contract, 6),
    (g_select, 5),
    (g_join, 5),
    (g_astype, 4),
    (g_create, 2),
    (g_ufunc_method, 3),
    (g_static, 2),
    (g_idiom, 5),
    (g_limit, 1),
]


def gen_batch(rnd: Rand, n_programs=12, max_stmts=6, p_error=0.06, p_limit=0.02, seed=None) -> Batch:
    special = rnd.chance(0.45)
    args = gen_inputs(rnd, special)
    batch = Batch(args, {}, [], seed, math=rnd.weighted([(4, "fast"), (1, "libm")]))
    g = Gen(rnd, batch, p_error, p_limit)
    for _ in range(n_programs):
        p = g.gen_program(max_stmts)
        if p is not None:
            batch.programs.append(p)
    return batch


# --- the NumPy reference and its tolerance ----------------------------------------------------------
#
# Every statement has an error model (Stmt.err). The reference is NumPy's result.
# Its tolerance comes from running the program again under *noise*: in each of
# TRIALS runs, each inexact statement's result is moved by its full error bound
# (all up, all down, then random signs), elements NumPy leaves undefined (`wild`)
# are replaced by +-inf, NaN or 0, and zeros of `zsign` statements flip sign.
# Per output element: where a trial changes the NaN/inf pattern or a bool/int
# value, the element is unconstrained (any value passes); otherwise the
# tolerance is SAFETY times the largest deviation seen. A program of exact
# operations has no noise: bit-exact, NaN positions and zero signs included.

TRIALS = 5
WILD_FLOAT = [np.nan, np.inf, -np.inf, 0.0, 1e5]
WILD_INT = [7, -3, 0, 1, 2]


def flatten(x) -> tuple[list, Any]:
    """Leaves and structure of a result (tuples and lists of leaves, as tracediff's pytrees)."""
    if type(x) in (tuple, list):
        leaves, defs = [], []
        for c in x:
            lv, d = flatten(c)
            leaves.extend(lv)
            defs.append(d)
        return leaves, (type(x).__name__, tuple(defs))
    return [x], "*"


def _restore(like, a: np.ndarray):
    """`a` with the Python type of `like` (Python scalar, NumPy scalar or array)."""
    if type(like) in (float, int, bool):
        return type(like)(a.item())
    if isinstance(like, np.generic):
        return a[()]
    return a


def program_ns(batch: Batch, args) -> dict:
    ns = dict(BASE_NS)
    ns.update(HELPERS)
    ns.update(batch.consts)
    ns.update(zip(batch.params, args))
    return ns


def op_tol(s: Stmt, a: np.ndarray, ns: dict):
    """(tolerance, wild) of statement `s` whose NumPy result is the float array `a`."""
    dt = a.dtype
    fi = np.finfo(dt)
    u = fi.eps / 2
    zero = np.zeros(a.shape, bool)
    ns["_RES"] = a
    kind = s.err[0]
    with np.errstate(all="ignore"):
        if kind == "ulp":
            mag = np.abs(a.astype(np.float64))
            if s.err[2]:
                mag = np.maximum(mag, np.broadcast_to(np.asarray(np_eval(s.err[2], ns), np.float64), a.shape))
            mag = np.minimum(np.where(np.isfinite(mag), mag, 0.0), fi.max).astype(dt)
            return s.err[1] * np.spacing(mag).astype(np.float64), zero
        n = max([np.size(ns[x]) for x in s.uses if x in ns and not isinstance(ns[x], list)] + [1])
        if kind in ("sum", "contract"):
            b = np.broadcast_to(np.asarray(np_eval(s.err[1], ns), np.float64), a.shape)
            tol = 2.0 * (n + 2) * u * b
            wild = b * (n + 2) >= fi.max  # partial sums may overflow in one order and not another
            if kind == "contract":  # BLAS may skip zeros: inf*0 terms are not reproducible
                ns["_A"] = _abs64_raw
                try:
                    raw = np.broadcast_to(np.asarray(np_eval(s.err[1], ns), np.float64), a.shape)
                finally:
                    ns["_A"] = _abs64
                wild = wild | ~np.isfinite(raw)
                # the |x| (x) |y| template runs through BLAS too, which may skip a 0 * nan
                # term there as well: with a non-finite operand, nothing is reproducible
                if any(
                    np.asarray(ns[x]).dtype.kind == "f" and not np.all(np.isfinite(ns[x]))
                    for x in s.uses
                    if x in ns and not isinstance(ns[x], list)
                ):
                    wild = np.ones(a.shape, bool)
            return np.where(wild, 0.0, tol), wild
        if kind == "prod":
            lmax = np.broadcast_to(np.asarray(np_eval(s.err[1], ns), np.float64), a.shape)
            lmin = np.broadcast_to(np.asarray(np_eval(s.err[2], ns), np.float64), a.shape)
            wild = (lmax >= fi.maxexp - 2) | (lmin <= fi.minexp + fi.nmant + 2)
            return 2.0 * (n + 1) * u * np.abs(a.astype(np.float64)), wild
        if kind == "var":
            t = np.broadcast_to(np.asarray(np_eval(s.err[1], ns), np.float64), a.shape)
            return np.where(np.isfinite(t), t, 0.0), ~np.isfinite(t)
    raise ValueError(f"unknown error model {s.err!r}")


def perturb(s: Stmt, val, ns: dict, trial: int, rng):
    if isinstance(val, list) or (s.err is None and s.wild is None and not s.zsign):
        return val
    a = np.array(val)
    if a.dtype.kind not in "fib":
        return val
    wild = np.zeros(a.shape, bool)
    with np.errstate(all="ignore"):
        if s.err is not None and a.dtype.kind == "f":
            tol, w = op_tol(s, a, ns)
            wild |= w
            sign = 1.0 if trial == 0 else -1.0 if trial == 1 else rng.uniform(-1.0, 1.0, a.shape)
            moved = (a.astype(np.float64) + sign * tol).astype(a.dtype)
            a = np.where(np.isfinite(a) & np.isfinite(tol), moved, a)
        if s.wild is not None:
            wild |= np.broadcast_to(np.asarray(np_eval(s.wild, ns), bool), a.shape)
        if wild.any():
            a = np.array(a)
            if a.dtype.kind == "f":
                a[wild] = WILD_FLOAT[trial % len(WILD_FLOAT)]
            elif a.dtype.kind == "b":
                a[wild] = bool(trial % 2)
            else:
                a[wild] = WILD_INT[trial % len(WILD_INT)]
        if s.zsign and a.dtype.kind == "f":
            z = a == 0
            if z.any():
                a = np.array(a)
                sz = (rng.uniform(size=a.shape) < 0.5) if trial > 1 else np.full(a.shape, trial == 1)
                a[z] = np.where(sz[z], -0.0, 0.0)
    return _restore(val, a)


def run_numpy(prog: Program, batch: Batch, args, trial=None):
    """Run `prog` with NumPy statement by statement; returns (result, namespace)."""
    ns = program_ns(batch, args)
    rng = np.random.default_rng(1234 + (trial or 0))
    for s in prog.stmts:
        val = np_eval(s.expr, ns)
        if trial is not None:
            val = perturb(s, val, ns, trial, rng)
        ns[s.var] = val
    outs = [ns[o] for o in prog.outs]
    return (outs[0] if len(outs) == 1 else tuple(outs)), ns


@dataclass
class Ref:
    """NumPy's result of a program and the tolerance of each output element."""

    exc: BaseException | None = None
    out: Any = None
    leaves: list = field(default_factory=list)
    tree: Any = None
    tol: list = field(default_factory=list)
    wild: list = field(default_factory=list)
    zfree: list = field(default_factory=list)


def noisy(prog: Program) -> bool:
    return any(s.err is not None or s.wild is not None or s.zsign for s in prog.stmts)


def reference(prog: Program, batch: Batch, args) -> Ref:
    try:
        out, _ = run_numpy(prog, batch, args)
    except Exception as e:  # noqa: BLE001
        return Ref(exc=e)
    leaves, tree = flatten(out)
    ref = Ref(out=out, leaves=leaves, tree=tree)
    arrs = [np.asarray(x) for x in leaves]
    ref.tol = [np.zeros(a.shape) for a in arrs]
    ref.wild = [np.zeros(a.shape, bool) for a in arrs]
    ref.zfree = [np.zeros(a.shape, bool) for a in arrs]
    if not noisy(prog):
        return ref
    with np.errstate(all="ignore"):
        for t in range(TRIALS):
            tout, _ = run_numpy(prog, batch, args, trial=t)
            for i, (r, x) in enumerate(zip(arrs, flatten(tout)[0])):
                x = np.asarray(x)
                if x.shape != r.shape:  # the noise reached a value a shape depends on: no tolerance
                    ref.wild[i][...] = True
                    continue
                if r.dtype.kind == "f":
                    rn, xn = np.isnan(r), np.isnan(x)
                    ref.wild[i] |= (rn != xn) | ((np.isinf(r) | np.isinf(x)) & (r != x) & ~rn & ~xn)
                    fin = np.isfinite(r) & np.isfinite(x)
                    dev = np.where(fin, np.abs(r.astype(np.float64) - x.astype(np.float64)), 0.0)
                    ref.tol[i] = np.maximum(ref.tol[i], SAFETY * dev)
                    # a zero that noise moves (or flips) has no determined sign
                    ref.zfree[i] |= (r == 0) & ((x != 0) | (np.signbit(r) != np.signbit(x)))
                else:
                    ref.wild[i] |= r != x
    return ref


def compare_leaf(r, tol, wild, zfree, g) -> tuple[str, str] | None:
    """(category, description) of how tracediff's leaf `g` differs from NumPy's `r`, or None."""
    R, G = np.asarray(r), np.asarray(g)
    if isinstance(r, np.ndarray) and R.ndim and not isinstance(g, np.ndarray):
        return "type", f"got a {type(g).__name__}, NumPy gives an array of shape {R.shape}"
    if G.shape != R.shape:
        return "shape", f"shape {G.shape}, NumPy gives {R.shape}"
    if G.dtype != R.dtype:
        return "dtype", f"dtype {G.dtype}, NumPy gives {R.dtype}"
    if R.dtype.kind != "f":
        bad = (R != G) & ~wild
        cat = "value"
    else:
        with np.errstate(all="ignore"):
            rn, gn = np.isnan(R), np.isnan(G)
            r64, g64 = R.astype(np.float64), G.astype(np.float64)
            fin = np.isfinite(R) & np.isfinite(G)
            top = np.finfo(R.dtype).max
            nan_bad = rn != gn
            inf_bad = ~fin & ~rn & ~gn & (R != G)
            # within tolerance of the overflow threshold: inf and a huge finite value agree
            inf_bad &= ~(
                (np.isinf(G) & np.isfinite(R) & (np.abs(r64) + tol >= top)) & (np.sign(G) == np.sign(R))
            )
            val_bad = fin & (np.abs(r64 - g64) > tol)
            z_bad = fin & (R == 0) & (G == 0) & (np.signbit(R) != np.signbit(G)) & ~zfree
            bad = (nan_bad | inf_bad | val_bad | z_bad) & ~wild
            cat = (
                "nan"
                if (nan_bad & ~wild).any()
                else "inf"
                if (inf_bad & ~wild).any()
                else "signed-zero"
                if (z_bad & ~wild).any()
                else "value"
            )
    if not bad.any():
        return None
    idx = [tuple(int(i) for i in ix) for ix in np.argwhere(bad)[:3]]
    parts = []
    for ix in idx:
        tl = np.asarray(tol)[ix] if np.ndim(tol) else tol
        parts.append(
            f"at {ix}: got {G[ix]!r}, NumPy {R[ix]!r}" + (f" (tolerance {float(tl):.3g})" if tl else "")
        )
    return cat, f"{int(bad.sum())} of {R.size} elements differ; " + "; ".join(parts)


def compare(ref: Ref, got) -> tuple[str, str] | None:
    leaves, tree = flatten(got)
    if tree != ref.tree:
        return "structure", f"result structure {tree}, NumPy gives {ref.tree}"
    return compare_flat(ref, leaves)


def compare_target(ref: Ref, got, target: str):
    """compare(); the unoptimized interpreter gives a flat list of leaves."""
    return compare_flat(ref, got) if target == "unopt" else compare(ref, got)


def compare_flat(ref: Ref, leaves) -> tuple[str, str] | None:
    if len(leaves) != len(ref.leaves):
        return "structure", f"{len(leaves)} results, NumPy gives {len(ref.leaves)}"
    for i, (r, t, w, z, g) in enumerate(zip(ref.leaves, ref.tol, ref.wild, ref.zfree, leaves)):
        d = compare_leaf(r, t, w, z, g)
        if d is not None:
            return d[0], (f"result {i}: " if len(leaves) > 1 else "") + d[1]
    return None


# --- running tracediff ------------------------------------------------------------------------------


def _dynamic(x) -> bool:
    """Leaves tracediff traces (the others are static): arrays, NumPy scalars, Python floats."""
    return isinstance(x, (np.ndarray, np.generic, float)) and not isinstance(x, (bool, np.str_, np.bytes_))


def call_text(target: str, fn: str, args: str, math_mode="fast") -> str:
    if target == "interpret":
        return f'td.jit({fn}, target="interpret")({args})'
    if target == "jit":
        return f"td.jit({fn})({args})" if math_mode == "fast" else f'td.jit({fn}, math="libm")({args})'
    if target == "unopt":
        return f"Interpreter(optimize(td.make_ir({fn}, {args}), enabled=False))(*DYNAMIC_ARGS)"
    return f"{target}({fn})({args})"


BAD_EXCEPTIONS = (
    AttributeError,
    KeyError,
    AssertionError,
    UnboundLocalError,
    NameError,
    RecursionError,
    SystemError,
)
COMPAT_BASES = (ValueError, TypeError, IndexError, OverflowError, ArithmeticError, NotImplementedError)


def _is_numba(e: BaseException) -> bool:
    return any(c.__module__.split(".")[0] in ("numba", "llvmlite") for c in type(e).__mro__)


def exc_problem(e: BaseException, np_exc: BaseException | None, limit: bool) -> str | None:
    """What is wrong with tracediff raising `e` (NumPy raised `np_exc`, or nothing), or None.

    Documented, clear exceptions: td.TracediffError and its subclasses (TracerError,
    TransformError, ADError: TypeErrors), TypeError, ValueError (AxisError), IndexError,
    OverflowError and NotImplementedError, with a message. Never acceptable: a raw
    Numba/llvmlite error, AttributeError, KeyError, AssertionError (tracediff's
    VerifyError included), UnboundLocalError, NameError, RecursionError, SystemError, an
    "internal error", an empty message.
    """
    name = type(e).__name__
    if _is_numba(e):
        return f"raw {type(e).__module__}.{name}"
    # "tracediff does not support the array attribute .any": clear enough, for an unsupported construct
    documented = limit and isinstance(e, AttributeError) and "support" in str(e)
    if (isinstance(e, BAD_EXCEPTIONS) and not documented) or "internal error" in str(e):
        return name
    if not str(e).strip():
        return f"{name} without a message"
    if not documented and not isinstance(e, COMPAT_BASES + (td.TracediffError,)):
        return f"undocumented {name}"
    if np_exc is None:
        if limit:
            return None  # a documented limitation (the program uses an unsupported construct)
        return f"{name} where NumPy succeeds"
    if isinstance(e, td.TracediffError) or limit:
        return None  # NumPy raises too (an unsupported construct may fail first, and say so)
    te, ne = type(e), type(np_exc)
    if issubclass(te, ne) or issubclass(ne, te):
        return None
    if any(issubclass(te, b) and issubclass(ne, b) for b in COMPAT_BASES[:4]):
        return None
    return f"{name} where NumPy raises {ne.__name__}"


def _short(x, n=300) -> str:
    with np.printoptions(threshold=20, precision=17):
        t = repr(x)
    return t if len(t) <= n else t[:n] + "..."


@dataclass
class Finding:
    """One problem: what (kind, sub), where (target, op), how to see it (repro)."""

    kind: (
        str  # exception, wrong-exception, silent, value, alias-*, mutation, input-mutated, grad*, crash, hang
    )
    target: str  # interpret, unopt, jit, grad, grad-of-grad, jit(grad), ...
    op: str  # the operation blamed (the first statement that fails alone)
    detail: str
    repro: str = ""
    seed: Any = None
    count: int = 1
    sub: str = ""  # exception class / mismatch category: part of the deduplication key

    def __post_init__(self):
        if not self.sub:
            self.sub = _subkey(self.kind, self.detail)

    @property
    def key(self) -> str:
        return f"{self.kind} | {self.op} | {self.sub}"

    def report(self) -> str:
        head = f"### {self.kind} ({self.target}): {self.op}\n\n{self.detail}\n"
        if self.seed is not None:
            head += f"\nbatch seed {self.seed} (`python tests/fuzz.py --replay {self.seed}`)\n"
        return head + (f"\n```python\n{self.repro.rstrip()}\n```\n" if self.repro else "")


def _subkey(kind: str, detail: str) -> str:
    d = detail.splitlines()[0] if detail else ""
    if kind in ("exception", "wrong-exception"):
        return d.split(": ")[0]
    if kind == "value":
        return d.split(":")[0]
    if kind == "silent":
        m = re.search(r"NumPy raises (\w+)", d)
        return f"NumPy raises {m.group(1)}" if m else ""
    if kind in ("grad", "grad-exception"):
        m = re.match(r"check_grads \((\w+ mode, order \d)\)", d)
        if m:
            return m.group(1)
        m = re.match(r"(td.grad raises )?(\w+(Error|Exception))", d)
        if m:
            return m.group(2)
        for pat, name in (("direction", "directional derivative"), ("differ for argument", "jit vs interpreted"),
                          ("is ", "shape/dtype")):  # fmt: skip
            if pat in d:
                return name
    return ""


def repro_text(batch: Batch, prog: Program, args, target: str, note: str, grad: str | None = None) -> str:
    """A standalone script: the program as NumPy source, its inputs, the failing call."""
    used = prog.used_names()
    params = [n for n in batch.params if n in used]
    vals = dict(zip(batch.params, args))
    lines = ["import numpy as np", "import tracediff as td"]
    src = prog.source("f", params)
    if "scipy." in src:
        lines.append("import scipy.special")
    if target == "unopt":
        lines += [
            "from tracediff.interpret import Interpreter",
            "from tracediff.passes.pipeline import optimize",
        ]
    lines.append("")
    for k, v in batch.consts.items():
        if re.search(rf"\b{k}\b", src):
            lines.append(f"{k} = {lit(v)}")
    for n in params:
        lines.append(f"{n} = {lit(vals[n])}")
    lines += ["", src.rstrip(), ""]
    a = ", ".join(params)
    if grad:
        lines.append(grad)
    else:
        lines.append(f"expected = f({a})  # NumPy")
        if target == "unopt":
            dyn = [n for n in params if _dynamic(vals[n])]
            lines.append(f"DYNAMIC_ARGS = [{', '.join(dyn)}]  # the traced leaves, in order")
        lines.append(f"got = {call_text(target, 'f', a, batch.math)}  # tracediff")
    lines += [f"# {x}" for x in note.splitlines()]
    return "\n".join(lines) + "\n"


def sub_batch(batch: Batch, args_named: dict, consts=None) -> Batch:
    """A batch over other inputs (a statement's own inputs, for a one-line repro)."""
    return Batch(
        [Val(k, v, "arg") for k, v in args_named.items()],
        dict(batch.consts if consts is None else consts),
        [],
        batch.seed,
        batch.math,
    )


_FN_COUNTER = [0]


def make_fns(batch: Batch, programs, names=None) -> dict:
    """Exec the programs' source (registered with linecache, so tracebacks show it)."""
    names = names or [f"p{i}" for i in range(len(programs))]
    src = "\n".join(p.source(n, batch.params) for p, n in zip(programs, names))
    _FN_COUNTER[0] += 1
    fname = f"<fuzz-{os.getpid()}-{_FN_COUNTER[0]}>"
    linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
    ns = dict(BASE_NS)
    ns.update(batch.consts)
    exec(compile(src, fname, "exec"), ns)  # noqa: S102  (the fuzzer's own generated source)
    return ns


def call_quiet(fn, *a, **k):
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


def snapshot(x):
    leaves, _ = flatten(x)
    return [np.array(v, copy=True) if isinstance(v, np.ndarray) else v for v in leaves]


def same_bits(a, b) -> bool:
    A, B = np.asarray(a), np.asarray(b)
    return A.shape == B.shape and A.dtype == B.dtype and A.tobytes() == B.tobytes()


def alias_problems(outs: list, inputs: dict) -> list:
    """(kind, text) for every output array sharing memory with an input, a constant or another output."""
    found = []
    arrs = [(i, o) for i, o in enumerate(outs) if isinstance(o, np.ndarray) and o.size]
    for i, o in arrs:
        for name, v in inputs.items():
            if isinstance(v, np.ndarray) and v.size and np.may_share_memory(o, v):
                try:
                    shared = np.shares_memory(o, v, max_work=10_000)
                except np.exceptions.TooHardError:
                    shared = True
                if shared:
                    found.append(("alias-input", f"result {i} shares memory with {name}"))
    for k, (i, o) in enumerate(arrs):
        for j, p in arrs[k + 1 :]:
            if np.may_share_memory(o, p):
                try:
                    shared = np.shares_memory(o, p, max_work=10_000)
                except np.exceptions.TooHardError:
                    shared = True
                if shared:
                    found.append(("alias-output", f"results {i} and {j} share memory"))
    return found


def mutate(outs: list) -> None:
    """Write into every writeable result array."""
    for o in outs:
        if isinstance(o, np.ndarray) and o.size and o.flags.writeable:
            if o.dtype.kind == "b":
                np.logical_not(o, out=o)
            elif o.dtype.kind == "f":
                o[...] = -7.25
            else:
                o[...] = -7


# --- checking a batch -------------------------------------------------------------------------------


@dataclass
class Stats:
    batches: int = 0
    programs: int = 0  # programs checked (the examples)
    compiled: int = 0  # ... of which went through td.jit (the compiled CPU path)
    error_programs: int = 0  # ... where NumPy raises (tracediff must raise too)
    limitations: int = 0  # documented "not supported" errors on unsupported constructs
    grad_programs: int = 0  # gradients checked against finite differences
    grad_jit: int = 0  # ... also through td.jit(td.grad(...))
    grad2_programs: int = 0  # grad-of-grad checked
    grad_skipped: int = 0  # smooth float programs skipped: not smooth at the sampled point
    compile_s: float = 0.0

    def add(self, other: Stats) -> None:
        for k in self.__dataclass_fields__:
            setattr(self, k, getattr(self, k) + getattr(other, k))


class FuzzerBug(Exception):
    """The fuzzer's own mistake (its NumPy replay disagrees with the program's source)."""


def make_runner(target: str, fn, math_mode="fast"):
    """A callable that runs fn on a target, reusable (the same compiled program each call)."""
    if target == "interpret":
        return td.jit(fn, target="interpret")
    if target == "jit":
        return jit_on_target(fn, math_mode)
    cache = {}

    def unopt(*args):
        if "interp" not in cache:
            cache["interp"] = Interpreter(optimize(td.make_ir(fn, *args), enabled=False))
        flat = [x for a in args for x in flatten(a)[0] if _dynamic(x)]
        return cache["interp"](*flat)

    return unopt


class Checker:
    """Runs every check on one batch; `findings` collects what is wrong."""

    def __init__(
        self,
        batch: Batch,
        compiled=True,
        grads=True,
        grad_jit=True,
        order2=0.25,
        seen: dict | None = None,
        runtime_error_compiles=1,
    ):
        self.batch = batch
        self.args = batch.arg_values()
        self.compiled = compiled
        self.grads = grads
        self.grad_jit = grad_jit and compiled
        self.order2 = order2
        self.seen = seen if seen is not None else {}
        self.runtime_error_compiles = runtime_error_compiles
        self.limit_compiles = 1
        self.stats = Stats(batches=1)
        self.findings: list[Finding] = []
        self.rnd = random.Random(f"{batch.seed}-check")

    # bookkeeping
    def inputs(self) -> dict:
        d = dict(zip(self.batch.params, self.args))
        d.update(self.batch.consts)
        return d

    def _pristine(self):
        return {
            k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v for k, v in self.inputs().items()
        }

    def check_inputs(self, target: str, prog: Program | None):
        for k, v in self.inputs().items():
            if isinstance(v, np.ndarray) and not same_bits(v, self.pristine[k]):
                note = f"{k} was modified by the call"
                repro = repro_text(self.batch, prog, self.args, target, note) if prog else ""
                self.add(Finding("input-mutated", target, "call", note, repro))
                if k in self.batch.consts:
                    self.batch.consts[k][...] = self.pristine[k]
                else:
                    self.args[self.batch.params.index(k)][...] = self.pristine[k]

    def add(self, f: Finding):
        f.seed = self.batch.seed
        self.findings.append(f)

    def prekey(self, *parts) -> tuple:
        k = tuple(parts)
        self.seen[k] = self.seen.get(k, 0) + 1
        return k

    def known(self, k) -> Finding | None:
        """A finding already localized for this pre-key (skip the costly minimization): counted again."""
        hit = self.seen.get(("done",) + k)
        if hit is None or self.seen[k] <= 2:
            return None
        self.add(Finding(hit.kind, hit.target, hit.op, hit.detail.split("\n")[0], sub=hit.sub))
        return hit

    # the whole batch
    def run(self) -> list[Finding]:
        b = self.batch
        self.pristine = self._pristine()
        self.fns = make_fns(b, b.programs)
        self.refs = []
        interp_ok = []
        for i, p in enumerate(b.programs):
            ref = reference(p, b, self.args)
            self.refs.append(ref)
            self._sanity(i, p, ref)
            self.stats.programs += 1
            if ref.exc is not None:
                self.stats.error_programs += 1
                self.check_error_program(i, p, ref)
                continue
            ok = self.check_program(i, p, ref, "interpret")
            self.check_program(i, p, ref, "unopt")
            if ok and not p.limit_jit:
                interp_ok.append(i)
            elif ok and not p.limit and self.compiled and self.limit_compiles > 0:
                self.limit_compiles -= 1  # e.g. float16: compiled alone, a documented error is fine
                self.stats.compiled += 1
                self.check_program(i, p, ref, "jit")
        if self.compiled and interp_ok:
            self.check_compiled(interp_ok)
        if self.grads:
            self.check_grads_batch()
        return self.findings

    def _sanity(self, i, p, ref):
        """The generated source computes what the fuzzer's statement-by-statement replay does."""
        try:
            out = call_quiet(self.fns[f"p{i}"], *self.args)
        except Exception as e:  # noqa: BLE001
            if ref.exc is None or type(e) is not type(ref.exc):
                raise FuzzerBug(f"program p{i} raises {e!r} but its replay gives {ref.exc!r}") from e
            return
        if ref.exc is not None:
            raise FuzzerBug(f"program p{i} runs but its replay raises {ref.exc!r}")
        lv = flatten(out)[0]
        if len(lv) != len(ref.leaves) or not all(same_bits(x, y) for x, y in zip(lv, ref.leaves)):
            raise FuzzerBug(f"program p{i}: source and replay disagree:\n{p.source('f', self.batch.params)}")

    # one program, interpreted
    def check_program(self, i: int, p: Program, ref: Ref, target: str) -> bool:
        fn = self.fns[f"p{i}"]
        run = make_runner(target, fn, self.batch.math)
        try:
            got = call_quiet(run, *self.args)
        except Exception as e:  # noqa: BLE001
            prob = exc_problem(e, None, p.limit or (target == "jit" and p.limit_jit))
            if prob is None:
                self.stats.limitations += 1
            else:
                self.report_exception(p, target, e, prob)
            self.check_inputs(target, p)
            return False
        self.check_inputs(target, p)
        d = compare_flat(ref, got) if target == "unopt" else compare(ref, got)
        if d is not None:
            self.report_value(p, target, d)
            return True
        if target == "interpret":
            self.check_aliasing_and_reuse(p, run, got, target)
        return True

    def check_aliasing_and_reuse(self, p: Program, run, got, target: str):
        leaves = flatten(got)[0]
        for kind, text in alias_problems(leaves, self.inputs()):
            op = "return of an input/constant" if kind == "alias-input" else "results"
            if kind == "alias-input" and p.stmts:
                op = p.stmts[-1].op
            self.add(Finding(kind, target, op, text, repro_text(self.batch, p, self.args, target, text)))
        first = snapshot(got)
        mutate(leaves)
        try:
            again = call_quiet(run, *self.args)
        except Exception as e:  # noqa: BLE001
            self.add(Finding("mutation", target, "second call", f"second call raises {e!r}"))
            return
        lv = flatten(again)[0]
        if not all(same_bits(x, y) for x, y in zip(lv, first)):
            text = "writing into a result changed the result of the next call"
            self.add(Finding("mutation", target, p.stmts[-1].op if p.stmts else "?", text,
                             repro_text(self.batch, p, self.args, target, text)))  # fmt: skip
        self.check_inputs(target, p)

    # programs where NumPy raises
    def check_error_program(self, i: int, p: Program, ref: Ref):
        fn = self.fns[f"p{i}"]
        op = p.stmts[-1].op
        np_text = f"NumPy raises {type(ref.exc).__name__}: {ref.exc}"
        runtime = False
        for target in ("interpret", "unopt"):
            try:
                got = call_quiet(make_runner(target, fn, self.batch.math), *self.args)
            except Exception as e:  # noqa: BLE001
                prob = exc_problem(e, ref.exc, p.limit)
                if prob is not None and not self._fails_before_error(p, target):
                    note = f"{np_text}\ntracediff raises {type(e).__name__}: {e}"
                    self.add(Finding("wrong-exception", target, op, f"{prob}: {e}",
                                     repro_text(self.batch, p, self.args, target, note)))  # fmt: skip
                if target == "interpret":
                    try:
                        call_quiet(td.make_ir, fn, *self.args)
                        runtime = True  # traced fine: the error is raised when the program runs
                    except Exception:  # noqa: BLE001
                        pass
                continue
            note = f"{np_text}\ntracediff returns {_short(got)}"
            self.add(Finding("silent", target, op, f"no exception where {np_text}",
                             repro_text(self.batch, p, self.args, target, note)))  # fmt: skip
        self.check_inputs("interpret", p)
        if runtime and self.compiled and self.runtime_error_compiles > 0 and not p.limit_jit:
            self.runtime_error_compiles -= 1
            self.stats.compiled += 1
            try:
                t0 = time.perf_counter()
                got = call_quiet(make_runner("jit", fn, self.batch.math), *self.args)
                self.stats.compile_s += time.perf_counter() - t0
            except Exception as e:  # noqa: BLE001
                prob = exc_problem(e, ref.exc, p.limit)
                if prob is not None:
                    note = f"{np_text}\ntracediff raises {type(e).__name__}: {e}"
                    self.add(Finding("wrong-exception", "jit", op, f"{prob}: {e}",
                                     repro_text(self.batch, p, self.args, "jit", note)))  # fmt: skip
                return
            note = f"{np_text}\ntracediff returns {_short(got)}"
            self.add(Finding("silent", "jit", op, f"no exception where {np_text}",
                             repro_text(self.batch, p, self.args, "jit", note)))  # fmt: skip

    def _fails_before_error(self, p: Program, target: str) -> bool:
        """Does tracediff already fail on the statements before the one where NumPy raises?
        Then that earlier failure is reported (as a program where NumPy succeeds) instead."""
        if len(p.stmts) < 2:
            return False
        q = p.prefix(len(p.stmts) - 2)
        ref = reference(q, self.batch, self.args)
        if ref.exc is not None:
            return False
        got = self._runs(q, target)
        if isinstance(got, BaseException):
            prob = exc_problem(got, None, q.limit)
            if prob is None:
                return False
            self.report_exception(q, target, got, prob)
            return True
        d = compare_target(ref, got, target)
        if d is not None:
            self.report_value(q, target, d)
            return True
        return False

    # the compiled path: many programs, one td.jit
    def batch_fn(self, idx: list):
        params = ", ".join(self.batch.params)
        calls = "".join(f"p{i}({params}), " for i in idx)
        name = f"batch_{'_'.join(map(str, idx))}"[:60]
        src = f"def {name}({params}):\n    return ({calls})\n"
        exec(compile(src, f"<fuzz-batch-{name}>", "exec"), self.fns)  # noqa: S102
        return self.fns[name]

    def check_compiled(self, idx: list):
        b = self.batch
        fn = self.batch_fn(idx)
        run = make_runner("jit", fn, b.math)
        t0 = time.perf_counter()
        try:
            out = call_quiet(run, *self.args)
        except Exception as e:  # noqa: BLE001
            self.stats.compile_s += time.perf_counter() - t0
            self.check_inputs("jit", None)
            if len(idx) == 1:
                p = b.programs[idx[0]]
                self.stats.compiled += 1
                prob = exc_problem(e, None, p.limit)
                if prob is None:
                    self.stats.limitations += 1
                else:
                    self.report_exception(p, "jit", e, prob)
                return
            h = len(idx) // 2
            self.check_compiled(idx[:h])
            self.check_compiled(idx[h:])
            return
        self.stats.compile_s += time.perf_counter() - t0
        self.stats.compiled += len(idx)
        self.check_inputs("jit", None)
        owners = []
        leaves = []
        for i, o in zip(idx, out):
            p, ref = b.programs[i], self.refs[i]
            d = compare(ref, o)
            if d is not None:
                self.report_value(p, "jit", d)
            lv = flatten(o)[0]
            leaves.extend(lv)
            owners.extend([i] * len(lv))
        for kind, text in alias_problems(leaves, self.inputs()):
            nums = [int(x) for x in re.findall(r"results? (\d+)", text) + re.findall(r"and (\d+)", text)]
            progs = sorted({owners[n] for n in nums})
            self.report_alias(kind, progs, text + " (programs " + ", ".join(f"p{i}" for i in progs) + ")")
        first = snapshot(out)
        mutate(leaves)
        try:
            again = call_quiet(run, *self.args)
        except Exception as e:  # noqa: BLE001
            self.add(Finding("mutation", "jit", "second call", f"second call raises {e!r}"))
            return
        lv2 = flatten(again)[0]
        bad = sorted({owners[n] for n, (x, y) in enumerate(zip(lv2, first)) if not same_bits(x, y)})
        for i in bad[:1]:
            p = b.programs[i]
            text = "writing into a result changed the result of the next call"
            self.add(
                Finding("mutation", "jit", p.stmts[-1].op, text, repro_text(b, p, self.args, "jit", text))
            )
        self.check_inputs("jit", None)

    def report_alias(self, kind: str, progs: list, text: str):
        b = self.batch
        if len(progs) == 1:
            p = b.programs[progs[0]]
            op = p.stmts[-1].op if kind == "alias-input" and p.stmts else "results of one program"
            self.add(Finding(kind, "jit", op, text, repro_text(b, p, self.args, "jit", text)))
            return
        # two programs returning memory-sharing results from one compiled function
        stmts, outs = [], []
        for i in progs[:2]:
            q = _prefixed(b.programs[i], f"p{i}_")
            stmts.extend(q.stmts)
            outs.extend(q.outs)
        merged = Program(stmts, outs)
        self.add(Finding(kind, "jit", "results of two programs", text,
                         repro_text(b, merged, self.args, "jit", text)))  # fmt: skip

    # localization
    def _runs(self, prog: Program, target: str, args=None, batch=None):
        """(result or exception) of prog on target."""
        batch = batch or self.batch
        args = self.args if args is None else args
        fns = make_fns(batch, [prog], ["f"])
        try:
            if target == "jit":
                t0 = time.perf_counter()
                try:
                    return call_quiet(make_runner(target, fns["f"], batch.math), *args)
                finally:
                    self.stats.compile_s += time.perf_counter() - t0
            return call_quiet(make_runner(target, fns["f"], batch.math), *args)
        except Exception as e:  # noqa: BLE001
            return e

    def report_exception(self, p: Program, target: str, e: BaseException, prob: str):
        msg = re.sub(r"\d+", "N", str(e).split("\n")[0])[:60]
        pk = self.prekey("exc", target, type(e).__name__, msg, prob)
        if self.known(pk) is not None:
            return
        k = self._first_failing_prefix(p, target, type(e))
        if target != "jit":  # an earlier statement with a wrong shape or value is the real culprit
            for j in range(k if k is not None else len(p.stmts)):
                q = p.prefix(j)
                ref = reference(q, self.batch, self.args)
                got = self._runs(q, target)
                if ref.exc is not None or isinstance(got, BaseException):
                    break
                d = compare_target(ref, got, target)
                if d is not None:
                    self.seen[("done",) + pk] = self.report_value(q, target, d)
                    return
        q = p.prefix(k) if k is not None else p
        op = p.stmts[k].op if k is not None else "?"
        err = self._runs(q, target) if k is not None else e
        if not isinstance(err, BaseException):
            q, err, op = p, e, p.stmts[-1].op if p.stmts else "?"
        note = f"NumPy succeeds; tracediff raises {type(err).__name__}: {err}"
        f = Finding("exception", target, op, f"{prob}: {str(err).splitlines()[0] if str(err) else ''}",
                    repro_text(self.batch, q, self.args, target, note))  # fmt: skip
        tb = "".join(traceback.format_exception(type(err), err, err.__traceback__)[-6:])
        f.detail += "\n\n```\n" + tb.rstrip() + "\n```"
        self.add(f)
        self.seen[("done",) + pk] = f

    def _first_failing_prefix(self, p: Program, target: str, etype) -> int | None:
        n = len(p.stmts)
        if target != "jit":
            for k in range(n):
                r = self._runs(p.prefix(k), target)
                if isinstance(r, etype):
                    return k
            return None
        lo, hi, found = 0, n - 1, None  # binary search: a few compiles
        probes = 0
        while lo <= hi and probes < 4:
            mid = (lo + hi) // 2
            probes += 1
            if isinstance(self._runs(p.prefix(mid), target), etype):
                found, hi = mid, mid - 1
            else:
                lo = mid + 1
        return found if found is not None else (n - 1 if n else None)

    def report_value(self, p: Program, target: str, d: tuple):
        cat, text = d
        pk = self.prekey("value", target, cat, tuple(sorted(set(p.ops()))))
        hit = self.known(pk)
        if hit is not None:
            return hit
        f = self.localize_value(p, target, cat, text)
        self.add(f)
        self.seen[("done",) + pk] = f
        return f

    def localize_value(self, p: Program, target: str, cat: str, text: str) -> Finding:
        """Run the program returning every statement's value and check each statement alone."""
        b = self.batch
        allp = Program(p.stmts, [s.var for s in p.stmts])
        got = self._runs(allp, target)
        if not isinstance(got, BaseException):
            if target == "unopt":  # flat leaves: a list-valued statement breaks the 1:1 mapping
                vals = list(got) if len(got) == len(allp.outs) else None
            else:
                vals = list(got) if len(allp.outs) > 1 else [got]
            if vals is not None:
                env = dict(zip(b.params, self.args))
                for k, s in enumerate(p.stmts):
                    local = self._local_check(s, env, vals[k], target)
                    if local is not None:
                        if not local.repro:
                            q = p.prefix(k)
                            local.repro = repro_text(b, q, self.args, target, local.detail)
                        return local
                    env[s.var] = vals[k]
        note = f"{cat}: {text}"
        return Finding("value", target, "end-to-end: " + ", ".join(dict.fromkeys(p.ops())), f"{cat}: {text}",
                       repro_text(b, p, self.args, target, note))  # fmt: skip

    def _local_check(self, s: Stmt, env: dict, td_val, target: str) -> Finding | None:
        """Does statement s, given tracediff's own values of its inputs, disagree with NumPy?"""
        b = self.batch
        names = [u for u in dict.fromkeys(s.uses) if u in env]
        sb = sub_batch(b, {u: env[u] for u in names})
        single = Program([s], [s.var])
        ref = reference(single, sb, sb.arg_values())
        if ref.exc is not None:
            return None
        d = compare(ref, td_val)
        if d is None:
            return None
        cat, text = d
        # does the statement alone, on these inputs, reproduce it?
        again = self._runs(single, target, sb.arg_values(), sb)
        if not isinstance(again, BaseException) and compare_target(ref, again, target) is not None:
            cat, text = compare_target(ref, again, target)
            note = f"{cat}: {text}"
            return Finding(
                "value", target, s.op, f"{cat}: {text}", repro_text(sb, single, sb.arg_values(), target, note)
            )
        return Finding("value", target, s.op, f"{cat} (only inside the larger program): {text}")


def _prefixed(p: Program, pre: str) -> Program:
    names = {s.var: pre + s.var for s in p.stmts}

    def sub(t):
        return re.sub(r"\bv\d+\b", lambda m: names.get(m.group(0), m.group(0)), t)

    stmts = [
        Stmt(
            **{
                **s.__dict__,
                "var": names[s.var],
                "expr": sub(s.expr),
                "uses": tuple(names.get(u, u) for u in s.uses),
            }
        )
        for s in p.stmts
    ]
    return Program(stmts, [names.get(o, o) for o in p.outs])


# --- gradients --------------------------------------------------------------------------------------
#
# For programs of smooth operations only (no abs/sign/floor/max/min/where on a
# comparison/...), at new inputs drawn away from specials (float arrays and
# scalars upcast to float64, uniform magnitudes in [0.3, 1.3]), with the loss
# sum(out * W) for fixed random weights W: the finite-difference directional
# derivative of the NumPy loss is computed with two step sizes; where they
# disagree (a domain edge, a steep function) the program is skipped as not
# smooth there. Otherwise: td.check_grads (forward and reverse, order 1) and
# td.grad's gradient along random directions must agree with finite
# differences; td.jit(td.grad(loss)) (all programs in one compile) with
# td.grad; grad-of-grad (td.check_grads order 2, reverse) on a subset.

FD_H = 1e-3


def _is_float_arg(v) -> bool:
    return (type(v) is float) or (
        isinstance(v, (np.ndarray, np.floating)) and np.asarray(v).dtype.kind == "f"
    )


def smooth_args(batch: Batch, rng) -> list:
    positive = rng.uniform() < 0.5
    out = []
    for v in batch.args:
        x = v.value
        if not _is_float_arg(x):
            out.append(x)
            continue
        shape = np.shape(x)
        mag = rng.uniform(0.3, 1.3, shape)
        sgn = 1.0 if positive else np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0)
        y = np.asarray(mag * sgn, dtype=np.float64)
        out.append(float(y) if type(x) is float else y[()] if isinstance(x, np.generic) else y)
    return out


def _shift(args, t, h):
    out = []
    for a, d in zip(args, t):
        if d is None:
            out.append(a)
        elif type(a) is float:
            out.append(a + h * float(d))
        elif isinstance(a, np.generic):
            out.append(np.float64(a + h * d))
        else:
            out.append(a + h * d)
    return out


def fd_directional(loss, args, t, h=FD_H) -> float:
    """Richardson-extrapolated central difference of loss along t."""

    def central(hh):
        return (
            float(call_quiet(loss, *_shift(args, t, hh))) - float(call_quiet(loss, *_shift(args, t, -hh)))
        ) / (2 * hh)

    return (4.0 * central(h / 2) - central(h)) / 3.0


def _dot(g, t) -> float:
    return float(np.sum(np.asarray(g, np.float64) * np.asarray(t, np.float64)))


class GradJob:
    """One program's loss, its inputs and the finite-difference reference."""

    def __init__(self, i, prog: Program, loss_prog: Program, fn, fidx, dirs, fd, fd_err):
        self.i, self.prog, self.loss_prog, self.fn = i, prog, loss_prog, fn
        self.fidx, self.dirs, self.fd, self.fd_err = fidx, dirs, fd, fd_err
        self.g_interp = None

    @property
    def ops(self) -> str:
        return ", ".join(dict.fromkeys(self.prog.ops()))


def _grad_setup(self: Checker) -> bool:
    b = self.batch
    self.grad_fidx = [k for k, v in enumerate(b.args) if _is_float_arg(v.value)]
    if not self.grad_fidx:
        return False
    # zlib.crc32, not hash(): str hashes are salted per process, and runs must replay
    self.grad_rng = np.random.default_rng(zlib.crc32(f"grad-{b.seed}".encode()))
    self.grad_args = smooth_args(b, self.grad_rng)
    self.grad_batch = Batch(
        [Val(v.name, x, "arg") for v, x in zip(b.args, self.grad_args)], dict(b.consts), [], b.seed, b.math
    )
    return True


def _grad_job(self: Checker, i: int, p: Program) -> GradJob | None:
    """The loss sum(out * W) of program p at the smooth inputs, if it is smooth there."""
    gb, sargs, rng, fidx = self.grad_batch, self.grad_args, self.grad_rng, self.grad_fidx
    try:
        out, ns = run_numpy(p, gb, sargs)
    except Exception:  # noqa: BLE001
        return None
    vals = [ns[s.var] for s in p.stmts]
    if not all(_moderate(v) for v in vals) or _singular(p, ns) or _any_float32(vals):
        return None
    if any(re.search(r"np\.(inf|nan)\b", s.expr) for s in p.stmts):
        return None  # an infinite operand: derivative formulas give inf/inf (arctan2(inf, x)), as in JAX
    terms, uses = [], []
    for o in p.outs:
        v = ns[o]
        items = [(f"{o}[{j}]", x) for j, x in enumerate(v)] if isinstance(v, list) else [(o, v)]
        for text, x in items:
            if np.asarray(x).dtype.kind != "f":
                continue
            w = f"W{i}_{len(terms)}"
            gb.consts[w] = np.asarray(rng.standard_normal(np.shape(x)))
            terms.append(f"np.sum({text} * {w})")
            uses.append(w)
        uses.append(o)
    if not terms:
        return None
    loss_stmt = Stmt("loss", " + ".join(terms), "loss", tuple(uses))
    lp = Program(list(p.stmts) + [loss_stmt], ["loss"])
    fn = make_fns(gb, [lp], ["f"])["f"]
    dirs, fds, errs = [], [], []
    for _ in range(3):
        t = [rng.standard_normal(np.shape(sargs[k])) if k in fidx else None for k in range(len(sargs))]
        try:
            d1, d2 = fd_directional(fn, sargs, t), fd_directional(fn, sargs, t, FD_H / 2)
        except Exception:  # noqa: BLE001
            return None
        if not (np.isfinite(d1) and np.isfinite(d2)) or abs(d1 - d2) > 1e-7 * (1 + abs(d2)):
            return None  # finite differences are not stable here: not smooth enough to check
        dirs.append(t)
        fds.append(d2)
        errs.append(abs(d1 - d2))
    return GradJob(i, p, lp, fn, fidx, dirs, fds, max(errs))


def _grad_checks(self: Checker) -> None:
    b = self.batch
    floats = {v.name for v in b.args if _is_float_arg(v.value)}
    cands = [
        i
        for i, (p, ref) in enumerate(zip(b.programs, self.refs))
        if ref.exc is None
        and p.smooth
        and not p.limit_jit
        and p.used_names() & floats  # it reads a float input: there is a gradient to check
        and any(np.asarray(x).dtype.kind == "f" for x in ref.leaves)
    ]
    if not cands or not _grad_setup(self):
        return
    jobs = []
    for i in cands:
        job = _grad_job(self, i, b.programs[i])
        if job is None:
            self.stats.grad_skipped += 1
        else:
            jobs.append(job)
    for job in jobs:
        self.stats.grad_programs += 1
        self._grad_interp(job)
    if self.grad_jit:
        ok = [j for j in jobs if j.g_interp is not None]
        if ok:
            self._grad_jit(ok)


def _grad_failure(self: Checker, job: GradJob, order: int = 1, float32: bool = False) -> str | None:
    """What is wrong with td.check_grads / td.grad of job (interpreted), or None."""
    sargs = self.grad_args
    scale = 1 + 4 * max(abs(x) for x in job.fd)
    if order == 2:
        try:
            call_quiet(td.check_grads, job.fn, sargs, order=2, modes=("rev",), atol=1e-5 * scale, rtol=1e-5)
        except GradCheckError as e:
            return str(e) if "order 2" in str(e) else None
        except Exception as e:  # noqa: BLE001
            return f"{type(e).__name__}: {e}"
        return None
    try:
        call_quiet(td.check_grads, job.fn, sargs, order=1, modes=("fwd", "rev"),
                   atol=1e-6 * scale + 100 * job.fd_err, rtol=1e-6)  # fmt: skip
    except GradCheckError as e:
        if re.search(r"analytic -?(nan|inf) vs numerical", str(e)):
            # an intermediate with an infinite partial derivative (x**y, sqrt, log at 0)
            # times a zero one: the chain rule gives nan where the function is flat
            # (JAX and PyTorch too); not smooth at this point
            return SINGULAR
        return str(e)
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"
    try:
        g = call_quiet(td.grad(job.fn, argnums=tuple(job.fidx)), *sargs)
    except Exception as e:  # noqa: BLE001
        return f"td.grad raises {type(e).__name__}: {e}"
    bad = _grad_value_problem(self, job, g)
    if bad:
        return bad
    job.g_interp = g
    return None


def _grad_value_problem(self: Checker, job: GradJob, g) -> str | None:
    sargs = self.grad_args
    for k, x in zip(job.fidx, g):
        a = sargs[k]
        want = (np.shape(a), np.asarray(a).dtype)
        if (np.shape(x), np.asarray(x).dtype) != want or (type(a) is float and not isinstance(x, float)):
            return (
                f"gradient {k} is {type(x).__name__} {np.asarray(x).dtype}{np.shape(x)}; "
                f"the argument is {type(a).__name__} {want[1]}{want[0]}"
            )
    for t, fd in zip(job.dirs, job.fd):
        got = sum(_dot(x, t[k]) for k, x in zip(job.fidx, g))
        tol = _grad_tol(job, g, t)
        if not abs(got - fd) <= tol:
            return (
                f"gradient . direction = {got!r}, finite differences {fd!r} "
                f"(|diff| {abs(got - fd):.3g}, allowed {tol:.3g})"
            )
    return None


def _grad_call(order: int, target: str) -> str:
    if target == "jit(grad)":
        return "g = td.jit(td.grad(f, argnums=ARGNUMS))(ARGS)"
    if order == 2:
        return 'td.check_grads(f, (ARGS,), order=2, modes=("rev",))'
    return 'td.check_grads(f, (ARGS,), order=1, modes=("fwd", "rev"))\ng = td.grad(f, argnums=ARGNUMS)(ARGS)'


def _grad_report(self: Checker, job: GradJob, text: str, order: int, target: str):
    """Blame the first statement whose own loss fails the same way (interpreted), and report."""
    kind = "grad-exception" if re.match(r"(td.grad raises )?\w+(Error|Exception): ", text) else "grad"
    op, rep = job.ops, job
    if target != "jit(grad)" and len(job.prog.stmts) > 1:
        for k in range(len(job.prog.stmts)):
            q = job.prog.prefix(k)
            sub = _grad_job(self, job.i, q)
            if sub is None:
                continue
            t = _grad_failure(self, sub, order)
            if t is not None:
                op, rep, text = job.prog.stmts[k].op, sub, t
                break
    call = _grad_call(order, target)
    self.add(Finding(kind, target, op, text, _grad_repro(self, rep, call, text)))


SINGULAR = "singular"


def _grad_interp(self: Checker, job: GradJob) -> None:
    bad = _grad_failure(self, job)
    if bad is SINGULAR:
        self.stats.grad_skipped += 1
        self.stats.grad_programs -= 1
        return
    if bad is not None:
        _grad_report(self, job, bad, 1, "grad")
        return
    # float32 arguments: the gradient keeps the argument's dtype
    b, sargs = self.batch, self.grad_args
    f32 = [k for k in job.fidx if np.asarray(b.args[k].value).dtype == F32]
    if f32:
        a32 = [
            (np.asarray(x, F32)[()] if isinstance(x, np.generic) else np.asarray(x, F32)) if k in f32 else x
            for k, x in enumerate(sargs)
        ]
        try:
            g32 = call_quiet(td.grad(job.fn, argnums=tuple(job.fidx)), *a32)
            for k, x in zip(job.fidx, g32):
                if np.asarray(x).dtype != np.asarray(a32[k]).dtype or np.shape(x) != np.shape(a32[k]):
                    text = f"float32 argument {k}: its gradient is {np.asarray(x).dtype}{np.shape(x)}"
                    self.add(Finding("grad", "grad(float32)", "gradient dtype", text))
                    break
        except Exception as e:  # noqa: BLE001
            self.add(Finding("grad-exception", "grad(float32)", job.ops, f"{type(e).__name__}: {e}"))
    if job.fd_err <= 1e-9 * (1 + max(abs(x) for x in job.fd)) and self.rnd.random() < self.order2:
        self.stats.grad2_programs += 1
        bad = _grad_failure(self, job, order=2)
        if bad is not None:
            _grad_report(self, job, bad, 2, "grad-of-grad")


def _grad_repro(self: Checker, job: GradJob, call: str, note: str) -> str:
    gb = self.grad_batch
    used = job.loss_prog.used_names()
    params = [n for n in gb.params if n in used]
    argnums = tuple(params.index(gb.params[k]) for k in job.fidx if gb.params[k] in params)
    call = call.replace("ARGNUMS", repr(argnums if len(argnums) != 1 else argnums)).replace(
        "ARGS", ", ".join(params)
    )
    return repro_text(gb, job.loss_prog, self.grad_args, "grad", note, grad=call)


def _grad_tol(job: GradJob, g, t) -> float:
    gnorm = sum(float(np.linalg.norm(np.ravel(np.asarray(x, np.float64)))) * float(np.linalg.norm(np.ravel(d)))
                for x, d in zip(g, [t[k] for k in job.fidx]))  # fmt: skip
    return 1e-6 * (1 + gnorm) + 100 * job.fd_err


def _grad_jit(self: Checker, jobs: list) -> None:
    gb = self.grad_batch
    params = ", ".join(gb.params)
    ns = make_fns(gb, [j.loss_prog for j in jobs], [f"loss{j.i}" for j in jobs])
    ns["td"] = td
    calls = "".join(f"td.grad(loss{j.i}, argnums={tuple(j.fidx)!r})({params}), " for j in jobs)
    exec(compile(f"def gbatch({params}):\n    return ({calls})\n", "<fuzz-gbatch>", "exec"), ns)  # noqa: S102
    t0 = time.perf_counter()
    try:
        out = call_quiet(jit_on_target(ns["gbatch"], gb.math), *self.grad_args)
    except Exception as e:  # noqa: BLE001
        self.stats.compile_s += time.perf_counter() - t0
        if len(jobs) == 1:
            text = f"{type(e).__name__}: {e}"
            if exc_problem(e, None, False) is not None:
                _grad_report(self, jobs[0], text, 1, "jit(grad)")
            return
        h = len(jobs) // 2
        _grad_jit(self, jobs[:h])
        _grad_jit(self, jobs[h:])
        return
    self.stats.compile_s += time.perf_counter() - t0
    for job, g in zip(jobs, out):
        self.stats.grad_jit += 1
        bad = _grad_value_problem(self, job, g)
        if bad is None:
            for k, x, y in zip(job.fidx, g, job.g_interp):
                x64, y64 = np.asarray(x, np.float64), np.asarray(y, np.float64)
                tol = 1e-7 * (1 + float(np.max(np.abs(y64), initial=0.0)))
                if x64.shape != y64.shape or not np.all(np.abs(x64 - y64) <= tol):
                    bad = f"td.jit(td.grad) and td.grad differ for argument {k}: {_short(x)} vs {_short(y)}"
                    break
        if bad is not None:
            _grad_report(self, job, bad, 1, "jit(grad)")


# operations whose derivative is infinite or undefined where an operand or the result is 0
# or +-1 (sqrt(0), std of constant data, 0/0, arcsin(1)...): AD gives inf/NaN there, as JAX does
SINGULAR = {"np.sqrt", "np.cbrt", "np.std", "np.norm", "np.power", "np.float_power", "np.reciprocal", "np.divide",
            "np.true_divide", "np.log", "np.log2", "np.log10", "np.log1p", "np.arcsin", "np.arccos", "np.arctanh",
            "np.arccosh", "np.hypot", "np.arctan2", "np.var"}  # fmt: skip


def _singular(p: Program, ns: dict) -> bool:
    for s in p.stmts:
        if s.op not in SINGULAR and not s.op.startswith(("identity:", "double:")):
            continue
        for name in (s.var,) + tuple(s.uses):
            v = ns.get(name)
            if v is None or isinstance(v, list):
                continue
            a = np.asarray(v)
            if a.dtype.kind == "f" and (np.any(a == 0) or np.any(np.abs(a) == 1)):
                return True
    return False


def _any_float32(vals) -> bool:
    """A float32 value (astype, a float32 constant): finite differences would see its rounding."""
    for v in vals:
        if _any_float32(v) if isinstance(v, list) else np.asarray(v).dtype == F32:
            return True
    return False


def _moderate(v) -> bool:
    if isinstance(v, list):
        return all(_moderate(x) for x in v)
    a = np.asarray(v)
    if a.dtype.kind != "f":
        return True
    with np.errstate(all="ignore"):
        return bool(np.all(np.isfinite(a)) and np.all(np.abs(a) < 1e6))


Checker.check_grads_batch = _grad_checks
Checker._grad_interp = _grad_interp
Checker._grad_jit = _grad_jit


# --- regression cases: a finding's repro as a checkable batch -------------------------------------

_ULP_FUNCS = (
    {k for k, (_, err, _, _) in UNARY.items() if err is not None}
    | {k for k, (_, err, _, _, _) in BINARY.items() if err is not None}
    | {"expit"}
)
_SUM_FUNCS = {"sum", "mean", "cumsum", "trace", "norm", "matmul", "dot", "vdot", "inner", "tensordot", "einsum",
              "accumulate", "reduce"}  # fmt: skip


def _infer_err(expr: str, uses) -> tuple | None:
    """An error model for a hand-written statement, from the functions it calls."""
    names = set(re.findall(r"\.?(\w+)\(", expr)) | ({"matmul"} if "@" in expr else set())
    if names & {"var", "std"}:  # a loose bound: mean(x^2) (var), its square root (std)
        t = _abs_template(re.sub(r"\b(np\.)?(var|std)\(", r"\1mean(", expr), uses).replace("_A(", "_SQ(")
        t = re.sub(r",\s*ddof=\d+", "", t)
        return ("sum", f"np.sqrt({t})" if "std" in names else t)
    if names & _SUM_FUNCS:
        return ("contract" if names & {"matmul", "dot", "vdot", "inner", "tensordot", "einsum"} else "sum",
                _abs_template(expr, uses))  # fmt: skip
    if names & {"prod"}:
        return ("prod", _abs_template(expr.replace("prod", "sum"), uses).replace("_A(", "_LMAX("),
                _abs_template(expr.replace("prod", "sum"), uses).replace("_A(", "_LMIN("))  # fmt: skip
    if names & _ULP_FUNCS or "**" in expr:
        return ULP()
    return None


def batch_from_source(
    body: str, args: dict, consts: dict | None = None, math_mode: str = "fast", limit: bool = False
) -> Batch:
    """A one-program batch from the body of a repro's `f` (lines `name = expr`, then `return ...`).

    Error models are inferred from the functions each line calls (transcendental ufuncs: ulp
    bounds; sums and contractions: summation bounds; everything else exact), so a regression
    case is checked exactly as the fuzzer checked the program that found it.
    """
    consts = dict(consts or {})
    known = set(args) | set(consts)
    stmts, outs = [], []
    for line in [x.strip() for x in body.strip().splitlines() if x.strip()]:
        if line.startswith("return "):
            outs = [o.strip() for o in line[len("return ") :].strip("()").split(",") if o.strip()]
            break
        var, expr = (t.strip() for t in line.split("=", 1))
        uses = tuple(n for n in dict.fromkeys(re.findall(r"\b[A-Za-z_]\w*\b", expr)) if n in known)
        wild = f"np.isnan({uses[0]})" if "signbit(" in expr and uses else None
        zsign = bool(re.search(r"\b(max|min|maximum|minimum|fmax|fmin|clip|amax|amin)\b", expr))
        m = re.search(r"(?:np|scipy)\.[\w.]+|\.\w+\(", expr)
        op = m.group(0).rstrip("(") if m else expr
        stmts.append(Stmt(var, expr, op, uses, _infer_err(expr, uses), wild, zsign, limit=limit))
        known.add(var)
    if not outs:
        outs = [stmts[-1].var]
    batch = Batch(
        [Val(k, v, "arg") for k, v in args.items()], consts, [Program(stmts, outs)], None, math_mode
    )
    ns = program_ns(batch, batch.arg_values())
    for st_ in stmts:  # statements of non-float results are exact
        try:
            val = np_eval(st_.expr, ns)
        except Exception:  # noqa: BLE001  (a program that ends where NumPy raises)
            break
        ns[st_.var] = val
        if not isinstance(val, list) and np.asarray(val).dtype.kind != "f":
            st_.err = None
    return batch


def check_case(
    body: str,
    args: dict,
    consts: dict | None = None,
    compiled=True,
    grads=False,
    math_mode="fast",
    limit=False,
):
    """All the fuzzer's checks on one hand-written program; returns the findings.

    `limit=True`: the program uses a construct tracediff documents as unsupported, so a
    documented error (TracerError, NotImplementedError, ...) is an acceptable outcome."""
    batch = batch_from_source(body, args, consts, math_mode, limit)
    c = Checker(batch, compiled=compiled, grads=grads, grad_jit=compiled, order2=1.0)
    return c.run()


def grad_case_problems(fn, args, argnums=0, order=1, compiled=True) -> list:
    """td.check_grads, td.grad and td.jit(td.grad) of a scalar fn at args, against finite differences."""
    problems = []
    argnums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    try:
        call_quiet(td.check_grads, fn, args, order=order, modes=("fwd", "rev"))
    except Exception as e:  # noqa: BLE001  (GradCheckError or any other)
        problems.append(f"check_grads: {type(e).__name__}: {e}")
    rng = np.random.default_rng(0)
    runs = [("grad", td.grad(fn, argnums=argnums))] + (
        [("jit(grad)", td.jit(td.grad(fn, argnums=argnums)))] if compiled else []
    )
    for name, gfn in runs:
        try:
            g = call_quiet(gfn, *args)
        except Exception as e:  # noqa: BLE001
            problems.append(f"{name}: {type(e).__name__}: {e}")
            continue
        t = [rng.standard_normal(np.shape(a)) if k in argnums else None for k, a in enumerate(args)]
        fd = fd_directional(fn, list(args), t)
        got = sum(_dot(x, t[k]) for k, x in zip(argnums, g))
        if not abs(got - fd) <= 1e-6 * (1 + abs(fd)):
            problems.append(f"{name}: gradient . direction {got!r} vs finite differences {fd!r}")
    return problems


# --- the long run ---------------------------------------------------------------------------------


@dataclass
class Options:
    batch_size: int = 16
    max_stmts: int = 6
    compile_every: int = 1  # batches whose seed is a multiple of this go through td.jit
    grads: bool = True
    p_error: float = 0.08
    p_limit: float = 0.02


def make_batch(seed: int, opts: Options) -> Batch:
    return gen_batch(
        Rand(seed), n_programs=opts.batch_size, max_stmts=opts.max_stmts, p_error=opts.p_error, p_limit=opts.p_limit,
        seed=seed,
    )  # fmt: skip


def check_seed(seed: int, opts: Options, seen: dict | None = None) -> tuple[Stats, list]:
    """Generate and check the batch of one seed; a fuzzer error becomes a finding too."""
    batch = make_batch(seed, opts)
    compiled = seed % max(opts.compile_every, 1) == 0
    c = Checker(batch, compiled=compiled, grads=opts.grads, grad_jit=compiled, seen=seen)
    try:
        c.run()
    except FuzzerBug as e:
        c.add(Finding("fuzzer-bug", "numpy", "replay", str(e)))
    except Exception as e:  # noqa: BLE001  (a checker crash must not stop the run)
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__)[-8:])
        c.add(Finding("checker-error", "fuzzer", type(e).__name__, f"{e!r}\n\n```\n{tb}```"))
    return c.stats, c.findings


def _worker(conn, opts: Options):
    os.environ.setdefault("TRACEDIFF_VERIFY", "1")
    seen: dict = {}
    while True:
        seed = conn.recv()
        if seed is None:
            return
        stats, findings = check_seed(seed, opts, seen)
        conn.send((seed, stats, findings))


class Log:
    """Distinct findings (by key) with counts; each new one is appended to the log file at once."""

    def __init__(self, path: str | None, header: str):
        self.path = path
        self.findings: dict[str, Finding] = {}
        self.targets: dict[str, set] = {}
        if path:
            with open(path, "a") as f:
                f.write(header)

    def add(self, f: Finding) -> bool:
        old = self.findings.get(f.key)
        if old is not None:
            old.count += f.count
            self.targets[f.key].add(f.target)
            return False
        self.findings[f.key] = f
        self.targets[f.key] = {f.target}
        if self.path:
            with open(self.path, "a") as out:
                out.write(f"\n## {f.key}\n\n{f.report()}\n")
        return True

    def summary(self) -> str:
        rows = sorted(self.findings.items(), key=lambda kv: (-kv[1].count, kv[0]))
        lines = [f"{len(rows)} distinct findings (count, key, targets):"]
        lines += [f"  {f.count:6d}  {k}  [{', '.join(sorted(self.targets[k]))}]" for k, f in rows]
        return "\n".join(lines)


def _fmt_stats(st: Stats, wall: float) -> str:
    return (
        f"{st.programs} programs checked ({st.compiled} through td.jit, {st.error_programs} where NumPy raises, "
        f"{st.limitations} documented limitations hit), {st.grad_programs} gradients checked "
        f"({st.grad_jit} through td.jit(td.grad), {st.grad2_programs} grad-of-grad, {st.grad_skipped} skipped as "
        f"not smooth), {st.batches} batches, {wall:.0f} s wall ({st.programs / max(wall, 1e-9):.1f} programs/s), "
        f"{st.compile_s:.0f} s in td.jit calls"
    )


def main(argv=None) -> int:
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ap = argparse.ArgumentParser(
        description="Differential fuzzer for tracediff: random NumPy programs checked against NumPy "
        "(see docs/fuzzing.md).",
    )
    ap.add_argument("--examples", type=int, default=1000, help="stop after this many programs (default 1000)")
    ap.add_argument("--minutes", type=float, default=None, help="also stop after this many minutes")
    ap.add_argument("--seed", type=int, default=0, help="run seed: batch k has seed SEED*1000000 + k")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument(
        "--log", default=None, help="append each distinct finding (markdown, with a repro) to FILE"
    )
    ap.add_argument("--batch-size", type=int, default=16, help="programs per batch (one td.jit compile)")
    ap.add_argument("--max-stmts", type=int, default=6, help="statements per program, at most")
    ap.add_argument(
        "--compile-every", type=int, default=1, help="compile only batches whose seed is a multiple"
    )
    ap.add_argument("--no-grad", action="store_true", help="skip the gradient checks")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds before a batch counts as a hang")
    ap.add_argument(
        "--recycle",
        type=int,
        default=40,
        help="replace a worker after this many batches (compiled code piles up)",
    )
    ap.add_argument("--replay", type=int, default=None, help="check the batch of this seed here, verbosely")
    a = ap.parse_args(argv)
    opts = Options(a.batch_size, a.max_stmts, a.compile_every, not a.no_grad)

    if a.replay is not None:
        batch = make_batch(a.replay, opts)
        print("# inputs")
        for v in batch.args:
            print(f"{v.name} = {lit(v.value)}")
        for k, v in batch.consts.items():
            print(f"{k} = {lit(v)}")
        print("\n# programs\n" + batch.module_source())
        t0 = time.time()
        st, found = check_seed(a.replay, opts)
        for f in found:
            print(f.report())
        print(_fmt_stats(st, time.time() - t0))
        return 1 if found else 0

    t_start = time.time()
    deadline = t_start + a.minutes * 60 if a.minutes else None
    cmd = "python tests/fuzz.py " + " ".join(sys.argv[1:] if argv is None else argv)
    log = Log(a.log, f"\n# tracediff fuzz run {time.strftime('%Y-%m-%d %H:%M:%S')}: `{cmd}`\n")
    total = Stats(batches=0)
    ctx = mp.get_context("spawn")
    workers: dict = {}  # conn -> [process, seed or None, t0, batches done]

    def start():
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_worker, args=(child, opts), daemon=True)
        p.start()
        child.close()
        workers[parent] = [p, None, 0.0, 0]

    def lost(conn, kind: str, detail: str):
        p, seed, _, _ = workers.pop(conn)
        if p.is_alive():
            p.kill()
        p.join(5)
        try:
            src = make_batch(seed, opts).module_source()
        except Exception:  # noqa: BLE001
            src = ""
        f = Finding(kind, "process", "batch", f"{detail} (exit code {p.exitcode})", src, seed)
        f.detail += f"\n\nreplay: `python tests/fuzz.py --replay {seed} --batch-size {a.batch_size}`"
        log.add(f)
        start()

    for _ in range(max(a.jobs, 1)):
        start()
    k = 0
    last_print = time.time()
    stopping = False
    while workers:
        now = time.time()
        if not stopping and (total.programs >= a.examples or (deadline and now >= deadline)):
            stopping = True
        for conn, w in list(workers.items()):
            if w[1] is None:
                if stopping:
                    conn.send(None)
                    w[0].join(10)
                    del workers[conn]
                    continue
                w[1], w[2] = a.seed * 1_000_000 + k, now
                k += 1
                conn.send(w[1])
        if not workers:
            break
        ready = wait(list(workers) + [w[0].sentinel for w in workers.values()], timeout=1.0)
        for r in ready:
            if r in workers:
                try:
                    seed, st, found = r.recv()
                except (EOFError, OSError):
                    lost(r, "crash", "the worker process died (segfault or abort) while checking this batch")
                    continue
                workers[r][1] = None
                workers[r][3] += 1
                total.add(st)
                if workers[r][3] >= a.recycle and not stopping:  # Numba's compiled code is never freed
                    r.send(None)
                    workers[r][0].join(30)
                    if workers[r][0].is_alive():
                        workers[r][0].kill()
                    del workers[r]
                    start()
                for f in found:
                    if log.add(f):
                        print(f"new finding: {f.key} [{f.target}] (batch seed {seed})", flush=True)
        for conn, w in list(workers.items()):
            if w[1] is not None and not w[0].is_alive():
                lost(conn, "crash", "the worker process died (segfault or abort) while checking this batch")
            elif w[1] is not None and time.time() - w[2] > a.timeout:
                lost(conn, "hang", f"checking this batch took more than {a.timeout:.0f} s")
        if time.time() - last_print > 60:
            last_print = time.time()
            print(
                _fmt_stats(total, time.time() - t_start),
                f"; {len(log.findings)} distinct findings",
                flush=True,
            )
    wall = time.time() - t_start
    text = f"\n{cmd}\n{_fmt_stats(total, wall)}\n{log.summary()}\n"
    print(text)
    if a.log:
        with open(a.log, "a") as f:
            f.write(f"\n## Summary\n\n```\n{text.strip()}\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
