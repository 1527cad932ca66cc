import os

import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption(
        "--optimize",
        choices=("on", "off"),
        default="on",
        help="run the suite with the optimizer pipeline on (default) or off (DCE only)",
    )
    parser.addoption(
        "--math",
        choices=("fast", "libm"),
        default="fast",
        help="default math of td.jit: vectorized tracediff functions (default) or scalar libm calls",
    )


def pytest_configure(config):
    os.environ["TRACEDIFF_MATH"] = config.getoption("--math")
    # read by tracediff when it is imported, which happens at collection
    os.environ["TRACEDIFF_OPT"] = "0" if config.getoption("--optimize") == "off" else "1"
    os.environ.setdefault("TRACEDIFF_VERIFY", "1")  # verify the IR after every pass


@pytest.fixture
def rng():
    return np.random.default_rng(0)
