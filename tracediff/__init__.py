"""tracediff: a differentiation compiler for plain NumPy code."""

from . import optim
from ._version import __version__ as __version__
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
    report,
    stop_gradient,
    value_and_grad,
    vjp,
    vmap,
)
from .core import IR, TracediffError
from .testing import check_grads
from .tracing import TracerError

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
    "report",
    "stop_gradient",
    "value_and_grad",
    "vjp",
    "vmap",
]
