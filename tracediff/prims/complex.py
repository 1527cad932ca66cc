"""Complex numbers: the parts of a complex value, its conjugate, and a complex
value made of two real ones; and which elementwise primitives take complex
operands.

Derivatives follow JAX's convention: a VJP is the transpose of the JVP under
the real pairing <a, b> = Re(sum(a * b)), so the rules of holomorphic
functions are their real rules unchanged (ct * f'(z), no conjugate), and for a
real-valued f of z = x + iy, grad gives df/dx - i df/dy.
"""

from __future__ import annotations

import numpy as np

from ..batching import elementwise_rule
from ..core import ELEMENTWISE, REGISTRY, Aval, Primitive, atoms_equal_shape
from . import elementwise, reduce  # noqa: F401  (the primitives marked below)

_REAL_OF = {np.dtype(np.complex64): np.dtype(np.float32), np.dtype(np.complex128): np.dtype(np.float64)}
_COMPLEX_OF = {v: k for k, v in _REAL_OF.items()}


def _part(name: str, impl, vjp) -> Primitive:
    """real or imag: complex -> its real dtype."""
    p = Primitive(name, ELEMENTWISE)
    p.nin, p.complex = 1, True

    @p.def_abstract
    def _abstract(x):
        if x.dtype.kind != "c":
            raise TypeError(f"{name}: takes a complex operand, got {x}")
        return Aval(x.shape, _REAL_OF[x.dtype])

    p.def_impl(impl)
    p.def_vjp(vjp)
    p.def_batch(elementwise_rule(p))
    return p


# Re(u * t_re) = Re(u * Re(t)): the cotangent of z is u (+0j); Re(-iu * t) = u Im(t)
real_p = _part("real", np.real, lambda ct, ans, x: [make_complex(ct, np.zeros_like(ct))])
imag_p = _part("imag", np.imag, lambda ct, ans, x: [make_complex(np.zeros_like(ct), -ct)])

conj_p = Primitive("conj", ELEMENTWISE)
conj_p.nin, conj_p.complex = 1, True
conj_p.def_abstract(lambda x: x)
conj_p.def_impl(np.conjugate)
conj_p.def_vjp(lambda ct, ans, x: [np.conjugate(ct)])  # Re(u conj(t)) = Re(conj(u) t)
conj_p.def_batch(elementwise_rule(conj_p))

complex_p = Primitive("complex", ELEMENTWISE)
complex_p.nin, complex_p.complex = 2, True


@complex_p.def_abstract
def _complex_abstract(x, y):
    shape = atoms_equal_shape([x, y], "complex")
    if x.dtype != y.dtype or x.dtype.kind != "f":
        raise TypeError(f"complex: the real and imaginary parts must be floats of one dtype, got {x} and {y}")
    return Aval(shape, _COMPLEX_OF[x.dtype], x.weak and y.weak)


complex_p.def_impl(lambda x, y: x + 1j * y if x.dtype == np.float64 else (x + np.complex64(1j) * y))
# Re(u (tx + i ty)) = Re(u) tx - Im(u) ty
complex_p.def_vjp(lambda ct, ans, x, y: [np.real(ct), -np.imag(ct)])
complex_p.def_batch(elementwise_rule(complex_p))


def make_complex(x, y):
    from ..builder import bind

    return bind(complex_p, x, y)


# Code inside fused CPU loops (Numba types complex scalars natively)
real_p.scalar["any"] = "{0}.real"
imag_p.scalar["any"] = "{0}.imag"
conj_p.scalar["any"] = "{0}.conjugate()"
complex_p.scalar["any"] = "{dt}(complex({0}, {1}))"

# elementwise primitives whose NumPy function, VJP and loop code hold for complex
# operands (holomorphic: the real rule is the complex one), with the cmath
# function a loop calls for each
_HOLOMORPHIC = {
    "neg": None,
    "add": None,
    "sub": None,
    "mul": None,
    "div": None,
    "square": None,
    "reciprocal": None,
    "pow": None,
    "exp": "cmath.exp({0})",
    "log": "cmath.log({0})",
    "sqrt": "cmath.sqrt({0})",
    "sin": "cmath.sin({0})",
    "cos": "cmath.cos({0})",
    "tan": "cmath.tan({0})",
    "sinh": "cmath.sinh({0})",
    "cosh": "cmath.cosh({0})",
    "tanh": "cmath.tanh({0})",
    "log10": "cmath.log10({0})",
    "log2": "(cmath.log({0}) * {dt}(1.4426950408889634))",
    "exp2": "cmath.exp({0} * {dt}(0.6931471805599453))",
    # cmath has no expm1/log1p: exp(x)cos(y) - 1 = expm1(x)cos(y) - 2 sin(y/2)^2 and
    # |1 + z|^2 = 1 + x(2 + x) + y^2 keep the accuracy of the real ones near 0
    "expm1": "{dt}(complex(math.expm1({0}.real) * math.cos({0}.imag) - 2.0 * math.sin(0.5 * {0}.imag) ** 2, "
    "math.exp({0}.real) * math.sin({0}.imag)))",
    "log1p": "{dt}(complex(0.5 * math.log1p({0}.real * (2.0 + {0}.real) + {0}.imag * {0}.imag), "
    "math.atan2({0}.imag, 1.0 + {0}.real)))",
    "arcsinh": "cmath.asinh({0})",
    "arccosh": "cmath.acosh({0})",
    "arctanh": "cmath.atanh({0})",
    "arcsin": "cmath.asin({0})",
    "arccos": "cmath.acos({0})",
    "arctan": "cmath.atan({0})",
}
for _name, _code in _HOLOMORPHIC.items():
    REGISTRY[_name].complex = True
    if _code is not None:
        REGISTRY[_name].scalar["cpu:kind:c"] = _code
# no derivative through these; NumPy's answers on complex operands
for _name in (
    "eq",
    "ne",
    "isnan",
    "isinf",
    "isfinite",
    "select",
    "convert",
    "copy",
    "stop_gradient",
    "reduce_sum",
    "reduce_prod",
    "cumsum",
):
    REGISTRY[_name].complex = True
REGISTRY["isnan"].scalar["cpu:kind:c"] = "cmath.isnan({0})"
