"""tracediff: a differentiation compiler for plain NumPy code."""

from . import optim
from .api import (
    checkpoint,
    custom_jvp,
    custom_vjp,
    dump,
    grad,
    hessian,
    jacfwd,
    jacobian,
    jacrev,
    jit,
    jvp,
    linearize,
    make_ir,
    stop_gradient,
    value_and_grad,
    vjp,
    vmap,
)
from .core import IR, TracediffError
from .testing import check_grads
from .tracing import TracerError

__version__ = "0.1.0"

__all__ = [
    "IR",
    "TracediffError",
    "TracerError",
    "check_grads",
    "checkpoint",
    "custom_jvp",
    "custom_vjp",
    "dump",
    "grad",
    "hessian",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jit",
    "jvp",
    "linearize",
    "make_ir",
    "optim",
    "stop_gradient",
    "value_and_grad",
    "vjp",
    "vmap",
]
