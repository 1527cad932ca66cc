"""np.linalg and scipy.linalg on traced arrays."""

from __future__ import annotations

FUNCTIONS: dict = {}
VIEW_FUNCS: set = set()
