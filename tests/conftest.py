import os

# Verify the IR after every pass in tests (read when tracediff is imported).
os.environ.setdefault("TRACEDIFF_VERIFY", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)
