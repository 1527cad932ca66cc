"""np.linalg (linalg_numpy.py) and scipy.linalg (linalg_scipy.py) on traced arrays:
np.linalg's functions dispatch through FUNCTIONS; scipy.linalg's, which call
np.asarray, are registered by path as traced forms."""

from __future__ import annotations

from . import linalg_scipy  # noqa: F401  (registers scipy.linalg's forms)
from .linalg_numpy import FUNCTIONS  # noqa: F401

VIEW_FUNCS: set = set()
