"""NumPy functions beyond the core families: sorting, cumulative ops, padding, polynomials, NaN-aware reductions..."""

from __future__ import annotations

from . import more_cumulative, more_sort

FUNCTIONS: dict = {**more_sort.FUNCTIONS, **more_cumulative.FUNCTIONS}
VIEW_FUNCS: set = set()
UFUNC_METHODS: dict = {**more_cumulative.UFUNC_METHODS}
