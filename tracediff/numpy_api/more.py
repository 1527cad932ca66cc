"""NumPy functions beyond the core families: sorting, cumulative ops, padding, polynomials, NaN-aware reductions..."""

from __future__ import annotations

FUNCTIONS: dict = {}
VIEW_FUNCS: set = set()
