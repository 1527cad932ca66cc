"""NumPy functions beyond the core families: sorting, cumulative ops, padding, polynomials,
NaN-aware reductions... (one module per concern: more_sort, more_cumulative, more_build,
more_reduce)."""

from __future__ import annotations

from ..control.arrays import register_form
from . import more_build, more_cumulative, more_reduce, more_sort

FUNCTIONS: dict = {
    **more_sort.FUNCTIONS,
    **more_cumulative.FUNCTIONS,
    **more_build.FUNCTIONS,
    **more_reduce.FUNCTIONS,
}
VIEW_FUNCS: set = set()
# (ufunc, method) -> implementation: ufunc methods beyond the core's (np.maximum.accumulate...)
UFUNC_METHODS: dict = {**more_cumulative.UFUNC_METHODS}

# creation functions NumPy dispatches only through like=: routed while tracing
register_form("numpy.full", more_build.full)
register_form("numpy.arange", more_build.arange)  # (a clear error for traced endpoints)
# np.r_[...] and np.c_[...]: converted code routes these objects (subscripted) through the same table
register_form("numpy.r_", more_build.r_)
register_form("numpy.c_", more_build.c_)
