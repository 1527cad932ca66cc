"""Elementwise primitives: operands of equal shape (the front end broadcasts
and converts), one output of that shape.

Each block: the NumPy implementation, the output dtype, and the VJP written
with NumPy calls on tracers, so derivative rules differentiate again.
"""

from __future__ import annotations

import math

import numpy as np

from ..batching import elementwise_rule
from ..core import ELEMENTWISE, Aval, Primitive, atoms_equal_shape

LN2 = math.log(2.0)
LN10 = math.log(10.0)
BOOL = np.dtype(bool)


def _elementwise(name, impl, vjp=None, *, out_dtype=None, differentiable=True, nin=1):
    """Make an elementwise primitive; `out_dtype` fixes the result dtype (bool)."""
    p = Primitive(name, ELEMENTWISE, differentiable=differentiable)
    p.nin = nin

    def abstract(*avals):
        if len(avals) != nin:
            raise TypeError(f"{name} takes {nin} operands, got {len(avals)}")
        shape = atoms_equal_shape(avals, name)
        if out_dtype is None:
            dtypes = {a.dtype for a in avals}
            if len(dtypes) != 1:
                raise TypeError(
                    f"{name}: operands must have equal dtypes, got " + ", ".join(str(a) for a in avals)
                )
            return Aval(shape, avals[0].dtype, all(a.weak for a in avals))
        return Aval(shape, np.dtype(out_dtype))

    p.def_abstract(abstract)
    p.def_impl(impl)
    p.def_batch(elementwise_rule(p))
    if vjp is not None:
        p.def_vjp(vjp)
    elif differentiable:
        # piecewise constant: derivative zero wherever it exists
        p.def_vjp(lambda ct, ans, *xs: [None] * len(xs))
    return p


def _unary(name, impl, vjp=None, **kw):
    return _elementwise(name, impl, vjp, nin=1, **kw)


def _binary(name, impl, vjp=None, **kw):
    return _elementwise(name, impl, vjp, nin=2, **kw)


# --- unary --------------------------------------------------------------------

neg_p = _unary("neg", np.negative, lambda ct, ans, x: [-ct])
abs_p = _unary("abs", np.absolute, lambda ct, ans, x: [ct * np.sign(x)])
sign_p = _unary("sign", np.sign)
floor_p = _unary("floor", np.floor)
ceil_p = _unary("ceil", np.ceil)
round_p = _unary("round", np.rint)
exp_p = _unary("exp", np.exp, lambda ct, ans, x: [ct * ans])
exp2_p = _unary("exp2", np.exp2, lambda ct, ans, x: [ct * (ans * LN2)])
expm1_p = _unary("expm1", np.expm1, lambda ct, ans, x: [ct * (ans + 1.0)])
log_p = _unary("log", np.log, lambda ct, ans, x: [ct / x])
log2_p = _unary("log2", np.log2, lambda ct, ans, x: [ct / (x * LN2)])
log10_p = _unary("log10", np.log10, lambda ct, ans, x: [ct / (x * LN10)])
log1p_p = _unary("log1p", np.log1p, lambda ct, ans, x: [ct / (x + 1.0)])
sqrt_p = _unary("sqrt", np.sqrt, lambda ct, ans, x: [ct / (ans * 2.0)])
cbrt_p = _unary("cbrt", np.cbrt, lambda ct, ans, x: [ct / ((ans * ans) * 3.0)])
square_p = _unary("square", np.square, lambda ct, ans, x: [ct * (x * 2.0)])
reciprocal_p = _unary("reciprocal", np.reciprocal, lambda ct, ans, x: [-(ct * (ans * ans))])
sin_p = _unary("sin", np.sin, lambda ct, ans, x: [ct * np.cos(x)])
cos_p = _unary("cos", np.cos, lambda ct, ans, x: [-(ct * np.sin(x))])
tan_p = _unary("tan", np.tan, lambda ct, ans, x: [ct * (ans * ans + 1.0)])
arcsin_p = _unary("arcsin", np.arcsin, lambda ct, ans, x: [ct / np.sqrt(1.0 - x * x)])
arccos_p = _unary("arccos", np.arccos, lambda ct, ans, x: [-(ct / np.sqrt(1.0 - x * x))])
arctan_p = _unary("arctan", np.arctan, lambda ct, ans, x: [ct / (x * x + 1.0)])
sinh_p = _unary("sinh", np.sinh, lambda ct, ans, x: [ct * np.cosh(x)])
cosh_p = _unary("cosh", np.cosh, lambda ct, ans, x: [ct * np.sinh(x)])
tanh_p = _unary("tanh", np.tanh, lambda ct, ans, x: [ct * (1.0 - ans * ans)])
arcsinh_p = _unary("arcsinh", np.arcsinh, lambda ct, ans, x: [ct / np.sqrt(x * x + 1.0)])
arccosh_p = _unary("arccosh", np.arccosh, lambda ct, ans, x: [ct / (np.sqrt(x - 1.0) * np.sqrt(x + 1.0))])
arctanh_p = _unary("arctanh", np.arctanh, lambda ct, ans, x: [ct / (1.0 - x * x)])


def _logistic_impl(x):
    from scipy.special import expit  # imported on first use: scipy.special is slow to import

    return expit(x)


# the logistic sigmoid 1 / (1 + e^-x): scipy.special.expit, and what the
# simplifier makes of 1 / (1 + np.exp(-x)); its own primitive, so it gets a
# vectorized implementation accurate over the whole range
logistic_p = _unary("logistic", _logistic_impl, lambda ct, ans, x: [ct * (ans * (1.0 - ans))])

logical_not_p = _unary("logical_not", np.logical_not, out_dtype=BOOL, differentiable=False)
invert_p = _unary("invert", np.invert, differentiable=False)
isnan_p = _unary("isnan", np.isnan, out_dtype=BOOL, differentiable=False)
isinf_p = _unary("isinf", np.isinf, out_dtype=BOOL, differentiable=False)
isfinite_p = _unary("isfinite", np.isfinite, out_dtype=BOOL, differentiable=False)

# --- binary -------------------------------------------------------------------

add_p = _binary("add", np.add, lambda ct, ans, x, y: [ct, ct])
sub_p = _binary("sub", np.subtract, lambda ct, ans, x, y: [ct, -ct])
mul_p = _binary("mul", np.multiply, lambda ct, ans, x, y: [ct * y, ct * x])
div_p = _binary("div", np.true_divide, lambda ct, ans, x, y: [ct / y, -(ct * ans) / y])


def _pow_vjp(ct, ans, x, y):
    # d/dx x**y = y * x**(y-1), exactly 0 where y == 0 (no 0 * inf at x == 0, as JAX),
    # also in its own derivatives: the untaken side sees x = 1 there ("double where");
    # d/dy x**y = log(x) * x**y, taken as 0 at x == 0
    y0 = y == 0.0
    gx = ct * np.where(y0, 0.0, y * np.where(y0, 1.0, x) ** (y - 1.0))
    safe_x = np.where(x == 0.0, 1.0, x)
    gy = ct * (np.log(safe_x) * ans)
    return [gx, gy]


pow_p = _binary("pow", np.power, _pow_vjp)


def _select_max_vjp(ct, ans, x, y):
    # ties split the cotangent evenly, as JAX does
    half = ct * 0.5
    gx = np.where(x > y, ct, np.where(x == y, half, 0.0))
    gy = np.where(y > x, ct, np.where(x == y, half, 0.0))
    return [gx, gy]


def _select_min_vjp(ct, ans, x, y):
    half = ct * 0.5
    gx = np.where(x < y, ct, np.where(x == y, half, 0.0))
    gy = np.where(y < x, ct, np.where(x == y, half, 0.0))
    return [gx, gy]


max_p = _binary("max", np.maximum, _select_max_vjp)
min_p = _binary("min", np.minimum, _select_min_vjp)


def _arctan2_vjp(ct, ans, y, x):
    r2 = x * x + y * y
    return [ct * (x / r2), -(ct * (y / r2))]


arctan2_p = _binary("arctan2", np.arctan2, _arctan2_vjp)
hypot_p = _binary("hypot", np.hypot, lambda ct, ans, x, y: [ct * (x / ans), ct * (y / ans)])


def _logaddexp_vjp(ct, ans, x, y):
    # exp(x - ans), never inf - inf: where x is the result (an infinity, or y too
    # small to count) it weighs 1, and 1/2 where both are (equal infinities)
    both = (x == ans) & (y == ans)
    wx = np.where(both, 0.5, np.exp(np.where(x == ans, 0.0, x - ans)))
    wy = np.where(both, 0.5, np.exp(np.where(y == ans, 0.0, y - ans)))
    return [ct * wx, ct * wy]


logaddexp_p = _binary("logaddexp", np.logaddexp, _logaddexp_vjp)
rem_p = _binary("rem", np.remainder, lambda ct, ans, x, y: [ct, -(ct * np.floor(x / y))])
floor_divide_p = _binary("floor_divide", np.floor_divide)

lt_p = _binary("lt", np.less, out_dtype=BOOL, differentiable=False)
le_p = _binary("le", np.less_equal, out_dtype=BOOL, differentiable=False)
gt_p = _binary("gt", np.greater, out_dtype=BOOL, differentiable=False)
ge_p = _binary("ge", np.greater_equal, out_dtype=BOOL, differentiable=False)
eq_p = _binary("eq", np.equal, out_dtype=BOOL, differentiable=False)
ne_p = _binary("ne", np.not_equal, out_dtype=BOOL, differentiable=False)
logical_and_p = _binary("logical_and", np.logical_and, out_dtype=BOOL, differentiable=False)
logical_or_p = _binary("logical_or", np.logical_or, out_dtype=BOOL, differentiable=False)
logical_xor_p = _binary("logical_xor", np.logical_xor, out_dtype=BOOL, differentiable=False)
bitwise_and_p = _binary("bitwise_and", np.bitwise_and, differentiable=False)
bitwise_or_p = _binary("bitwise_or", np.bitwise_or, differentiable=False)
bitwise_xor_p = _binary("bitwise_xor", np.bitwise_xor, differentiable=False)

# --- select, convert, stop_gradient -------------------------------------------

select_p = Primitive("select", ELEMENTWISE)
select_p.nin = 3


@select_p.def_abstract
def _select_abstract(c, x, y):
    shape = atoms_equal_shape([c, x, y], "select")
    if c.dtype != BOOL:
        raise TypeError(f"select: condition must be bool, got {c}")
    if x.dtype != y.dtype:
        raise TypeError(f"select: branches must have equal dtypes, got {x} and {y}")
    return Aval(shape, x.dtype, x.weak and y.weak)


select_p.def_impl(np.where)
select_p.def_batch(elementwise_rule(select_p))


@select_p.def_vjp
def _select_vjp(ct, ans, c, x, y):
    return [None, np.where(c, ct, 0.0), np.where(c, 0.0, ct)]


convert_p = Primitive("convert", ELEMENTWISE)
convert_p.nin = 1


# convert[dtype, weak]: `weak=True` gives a Python-number value (NEP 50), as
# the gradient with respect to a Python float is one
@convert_p.def_abstract
def _convert_abstract(x, *, dtype, weak=False):
    return Aval(x.shape, np.dtype(dtype), weak)


convert_p.def_batch(elementwise_rule(convert_p))


@convert_p.def_impl
def _convert_impl(x, *, dtype, weak=False):
    return np.asarray(x).astype(dtype)


@convert_p.def_vjp
def _convert_vjp(ct, ans, x, *, dtype, weak=False):
    if np.dtype(x.dtype).kind not in "fc":
        return [None]
    return [ct.astype(x.dtype)]  # (complex to real: the real part, JAX's transpose)


stop_gradient_p = Primitive("stop_gradient", ELEMENTWISE)
stop_gradient_p.nin = 1
stop_gradient_p.def_abstract(lambda x: x)
stop_gradient_p.def_impl(lambda x: x)
stop_gradient_p.def_vjp(lambda ct, ans, x: [None])
stop_gradient_p.may_alias = True
stop_gradient_p.def_batch(elementwise_rule(stop_gradient_p))

# copy: a fresh array with x's values. The optimizer puts it on results that
# would otherwise be a program input, a constant, a view of either, or another
# result, so no result ever shares memory with the caller's data.
copy_p = _unary("copy", lambda x: np.array(x, copy=True), lambda ct, ans, x: [ct])

# --- code generation: the scalar expression of each op inside a fused loop ----------
# {0}, {1}, {2}: operand expressions; {dt}: the output dtype's constructor.
SCALAR_CODE = {
    "neg": "(-{0})",
    "abs": "abs({0})",
    "sign": "np.sign({0})",
    "floor": "np.floor({0})",
    "ceil": "np.ceil({0})",
    "round": "np.rint({0})",
    "exp": "math.exp({0})",
    "exp2": "np.exp2({0})",
    "expm1": "math.expm1({0})",
    "log": "math.log({0})",
    "log2": "math.log2({0})",
    "log10": "math.log10({0})",
    "log1p": "math.log1p({0})",
    "sqrt": "math.sqrt({0})",
    "cbrt": "np.cbrt({0})",
    "square": "({0} * {0})",
    "reciprocal": "({dt}(1) / {0})",
    "sin": "math.sin({0})",
    "cos": "math.cos({0})",
    "tan": "math.tan({0})",
    "arcsin": "math.asin({0})",
    "arccos": "math.acos({0})",
    "arctan": "math.atan({0})",
    "sinh": "math.sinh({0})",
    "cosh": "math.cosh({0})",
    "tanh": "math.tanh({0})",
    "arcsinh": "math.asinh({0})",
    "arccosh": "math.acosh({0})",
    "arctanh": "math.atanh({0})",
    "logistic": "({dt}(1) / ({dt}(1) + math.exp(-{0})))",
    "logical_not": "(not {0})",
    "invert": "(~{0})",
    "isnan": "math.isnan({0})",
    "isinf": "math.isinf({0})",
    "isfinite": "math.isfinite({0})",
    "add": "({0} + {1})",
    "sub": "({0} - {1})",
    "mul": "({0} * {1})",
    "div": "({0} / {1})",
    "pow": "({0} ** {1})",
    # Numba's np.maximum gives the first operand on a tie (-0.0 and 0.0), NumPy's loops
    # the second: swapped (a select written out here compiles 2-3x slower)
    "max": "np.maximum({1}, {0})",
    "min": "np.minimum({1}, {0})",
    "arctan2": "math.atan2({0}, {1})",
    "hypot": "math.hypot({0}, {1})",
    "logaddexp": "np.logaddexp({0}, {1})",
    "rem": "np.remainder({0}, {1})",
    "floor_divide": "np.floor_divide({0}, {1})",
    "lt": "({0} < {1})",
    "le": "({0} <= {1})",
    "gt": "({0} > {1})",
    "ge": "({0} >= {1})",
    "eq": "({0} == {1})",
    "ne": "({0} != {1})",
    "logical_and": "(bool({0}) & bool({1}))",
    "logical_or": "(bool({0}) | bool({1}))",
    "logical_xor": "(bool({0}) != bool({1}))",
    "bitwise_and": "({0} & {1})",
    "bitwise_or": "({0} | {1})",
    "bitwise_xor": "({0} ^ {1})",
    "select": "({1} if {0} else {2})",
    "convert": "{dt}({0})",
    "stop_gradient": "{0}",
    "copy": "{0}",
}
# transcendental functions cost about ten additions per element, even vectorized
for _name in (
    "exp",
    "exp2",
    "expm1",
    "log",
    "log2",
    "log10",
    "log1p",
    "sin",
    "cos",
    "tan",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "tanh",
    "arcsinh",
    "arccosh",
    "arctanh",
    "pow",
    "arctan2",
    "hypot",
    "logaddexp",
    "cbrt",
    "logistic",
):
    from ..core import REGISTRY as _REGISTRY

    _REGISTRY[_name].cost = 10
# fast vectorizable versions (tracediff.backend.vmath, imported as `vm` by the
# CPU target), used unless jit(math="libm"): the functions of that package
# named <vmath name>_f32 / _f64
_VMATH_NAMES = {n: n for n in ("exp", "exp2", "expm1", "log", "log2", "log1p", "sin", "cos", "tanh")}
_VMATH_NAMES["logistic"] = "sigmoid"
FAST_CODE = {
    (prim, dt): f"vm.{fn}_{dt[0]}{dt[-2:]}({{0}})"
    for prim, fn in _VMATH_NAMES.items()
    for dt in ("float32", "float64")
}
# integer powers: a negative exponent raises, as in NumPy
pow_p.scalar["cpu:kind:i"] = pow_p.scalar["cpu:kind:u"] = "vm.ipow({0}, {1})"
pow_p.raises_for = "iu"
# integer // and %: NumPy's answers where the machine's division would trap
floor_divide_p.scalar["cpu:kind:i"] = floor_divide_p.scalar["cpu:kind:u"] = "vm.ifloordiv({0}, {1})"
rem_p.scalar["cpu:kind:i"] = rem_p.scalar["cpu:kind:u"] = "vm.irem({0}, {1})"
# float // and %: NumPy's divmod (signs of zero results, quotients by inf and of tiny values)
floor_divide_p.scalar["cpu:kind:f"] = "{dt}(vm.ffloordiv({0}, {1}))"
rem_p.scalar["cpu:kind:f"] = "{dt}(vm.frem({0}, {1}))"
# booleans: + is `or`, * is `and` (Numba would add them as integers)
add_p.scalar["kind:b"] = "({0} | {1})"
mul_p.scalar["kind:b"] = "({0} & {1})"
# sign(+-0.0) is +0.0, sign(nan) is nan
sign_p.scalar["kind:f"] = "({dt}(1) if {0} > 0 else ({dt}(-1) if {0} < 0 else {0} - {0}))"
FAST_CODE["pow", "float32"] = "vm.pow_f32({0}, {1})"
FAST_CODE["pow", "float64"] = "vm.pow_f64({0}, {1})"
for (_name, _dt), _code in FAST_CODE.items():
    from ..core import REGISTRY as _REGISTRY

    _REGISTRY[_name].scalar[f"cpu:fast:{_dt}"] = _code
for _name, _code in SCALAR_CODE.items():
    from ..core import REGISTRY as _REGISTRY

    _REGISTRY[_name].scalar["any"] = _code

# CUDA kernels (numba.cuda; `dl` is tracediff.backend.cuda.devicelib): where the
# portable code above is not what numba.cuda compiles, or not NumPy's answer
for _name, _fn in (
    ("floor", "floor"),
    ("ceil", "ceil"),
    ("round", "rint"),
    ("exp2", "exp2"),
    ("cbrt", "cbrt"),
):
    for _dt in ("float32", "float64"):
        _REGISTRY[_name].scalar[f"cuda:{_dt}"] = f"dl.{_fn}_{_dt[0]}{_dt[-2:]}({{0}})"
    _REGISTRY[_name].scalar["cuda:kind:i"] = _REGISTRY[_name].scalar["cuda:kind:u"] = "{0}"
sign_p.scalar["cuda:kind:i"] = "({dt}(1) if {0} > 0 else ({dt}(-1) if {0} < 0 else {dt}(0)))"
sign_p.scalar["cuda:kind:u"] = "({dt}(1) if {0} > 0 else {dt}(0))"
pow_p.scalar["cuda:kind:i"] = pow_p.scalar["cuda:kind:u"] = "dl.ipow({0}, {1}, err_)"
floor_divide_p.scalar["cuda:kind:i"] = floor_divide_p.scalar["cuda:kind:u"] = "dl.ifloordiv({0}, {1})"
rem_p.scalar["cuda:kind:i"] = rem_p.scalar["cuda:kind:u"] = "dl.irem({0}, {1})"
floor_divide_p.scalar["cuda:kind:f"] = "{dt}(dl.ffloordiv({0}, {1}))"
rem_p.scalar["cuda:kind:f"] = "{dt}(dl.frem({0}, {1}))"
logaddexp_p.scalar["cuda"] = "{dt}(dl.logaddexp({0}, {1}))"
