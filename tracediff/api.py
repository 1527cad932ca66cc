"""The public transformations, re-exported from the modules that define them:
staging.py (tracing once per signature, the caches, the fast path),
transforms.py (grad, value_and_grad, jit), linearize.py (vjp, jvp, linearize),
vmap.py, jacobians.py, custom.py and inspection.py (make_ir, dump)."""

from __future__ import annotations

from .custom import checkpoint, custom_jvp, custom_vjp
from .inspection import DumpText, dump, make_ir
from .jacobians import hessian, jacfwd, jacobian, jacrev
from .linearize import jvp, linearize, vjp
from .numpy_api import stop_gradient
from .report import Report, report
from .staging import Transformed, TransformError
from .transforms import grad, jit, value_and_grad
from .vmap import vmap

__all__ = [
    "DumpText",
    "TransformError",
    "Transformed",
    "grad",
    "value_and_grad",
    "vjp",
    "jvp",
    "linearize",
    "jacobian",
    "jacrev",
    "jacfwd",
    "hessian",
    "jit",
    "vmap",
    "stop_gradient",
    "custom_vjp",
    "custom_jvp",
    "checkpoint",
    "make_ir",
    "dump",
    "report",
    "Report",
]
