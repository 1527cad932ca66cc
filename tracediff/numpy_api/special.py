"""scipy.special functions that are not ufuncs (logsumexp, softmax...), scipy.special ufuncs (SCIPY_UFUNCS in ufuncs.py) and scipy.stats distributions on traced arrays (registered as library forms)."""

from __future__ import annotations

FUNCTIONS: dict = {}
VIEW_FUNCS: set = set()
