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
    parser.addoption(
        "--eager-first",
        choices=("on", "off"),
        default="off",
        help="tiered execution: td.jit's first calls run interpreted while Numba compiles (off by "
        "default here, so a test's first call checks the compiled program; tests/test_tiered.py "
        "checks tiering itself)",
    )


def pytest_configure(config):
    os.environ["TRACEDIFF_MATH"] = config.getoption("--math")
    os.environ["TRACEDIFF_EAGER_FIRST"] = "1" if config.getoption("--eager-first") == "on" else "0"
    # read by tracediff when it is imported, which happens at collection
    os.environ["TRACEDIFF_OPT"] = "0" if config.getoption("--optimize") == "off" else "1"
    os.environ.setdefault("TRACEDIFF_VERIFY", "1")  # verify the IR after every pass


@pytest.fixture
def rng():
    return np.random.default_rng(0)
