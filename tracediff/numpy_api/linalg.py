"""np.linalg (linalg_numpy.py, linalg_norms.py) and scipy.linalg (linalg_scipy.py) on
traced arrays: np.linalg's functions dispatch through FUNCTIONS; scipy.linalg's, which
call np.asarray, are registered by path as traced forms."""

from __future__ import annotations

import numpy as np

from . import linalg_norms, linalg_numpy, linalg_scipy  # noqa: F401  (linalg_scipy registers its forms)

FUNCTIONS: dict = {**linalg_numpy.FUNCTIONS, **linalg_norms.FUNCTIONS}
VIEW_FUNCS: set = {np.linalg.matrix_transpose, np.linalg.diagonal}
