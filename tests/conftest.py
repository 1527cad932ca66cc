import gc
import os

import numpy as np
import pytest

# Numba compiles dominate the suite (cold caches in CI); each compile makes
# hundreds of thousands of short-lived objects, and with Python's default
# generation-0 threshold (700) the cyclic collector ran every few hundred of them:
# at 50000, 38 compiled-program tests (cold caches, one process) take 18% less CPU
# (user 40.5-40.9 -> 32.8-33.6 s over two runs each) for 6% more peak RSS.
# Only when the collector runs changes; tests that need a collection call
# gc.collect(). tests/cuda_sim.py (not run through pytest) sets the same.
GC_THRESHOLD = (50000, 20, 20)

# Known-long items, started first (longest first) so no long one is left for the
# end of a run: with `--maxschedchunk=1` (pyproject.toml) xdist hands out items one
# at a time in this order. Seconds: one item on 2 busy cores, cold caches.
LONG_ITEMS = {
    "tests/test_optimizer_off.py::": 110,  # each shard's subprocess
    "tests/test_cuda.py::test_tables_on_simulator_and_ptx": 75,
    "tests/test_math_libm.py::": 70,
    "tests/test_docs.py::test_doc_examples_run[docs/guide.md]": 40,
    "tests/test_custom.py::test_checkpoint_recomputes_instead_of_keeping": 35,
    "tests/test_linalg.py::test_compiled_matches_interpreter": 30,
    "tests/test_control.py::test_loops_differentiate_to_second_order": 25,
    "tests/test_programs.py::test_cpu_matches_interpreter[static_int_steps_arg": 25,
    "tests/test_memory.py::test_tracing_many_distinct_functions_is_bounded": 20,
    "tests/test_concurrency.py::test_eight_processes": 20,
    "tests/test_fuzz.py::test_compiled_batch[0]": 18,
    "tests/test_fuzz.py::test_interpreted_programs": 18,
    "tests/test_fft.py::test_compiled_matches_interpreted": 18,
    "tests/test_cuda.py::test_programs_are_cached_on_disk_per_device": 17,
    "tests/test_cuda.py::test_device_arrays_stay_on_the_device": 15,
    "tests/test_docs.py::test_doc_examples_run[docs/quickstart.md]": 15,
}


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
    parser.addoption(
        "--shard",
        default=None,
        metavar="I/N",
        help="run only every N-th selected item, from the I-th (0-based): the subprocess reruns "
        "(tests/test_optimizer_off.py) split the suite this way",
    )


def pytest_configure(config):
    gc.set_threshold(*GC_THRESHOLD)
    os.environ["TRACEDIFF_MATH"] = config.getoption("--math")
    os.environ["TRACEDIFF_EAGER_FIRST"] = "1" if config.getoption("--eager-first") == "on" else "0"
    # read by tracediff when it is imported, which happens at collection
    os.environ["TRACEDIFF_OPT"] = "0" if config.getoption("--optimize") == "off" else "1"
    os.environ.setdefault("TRACEDIFF_VERIFY", "1")  # verify the IR after every pass


def _expected_seconds(item) -> float:
    return max((t for k, t in LONG_ITEMS.items() if item.nodeid.startswith(k)), default=0.0)


@pytest.hookimpl(trylast=True)  # after -k and -m deselected
def pytest_collection_modifyitems(config, items):
    shard = config.getoption("--shard")
    if shard:
        i, n = map(int, shard.split("/"))
        keep = items[i::n]  # round robin: each shard gets its part of every parametrized test
        config.hook.pytest_deselected(items=[it for k, it in enumerate(items) if k % n != i])
        items[:] = keep
    # known-long items first (a stable sort: the rest keep their order)
    items.sort(key=lambda it: -_expected_seconds(it))


@pytest.fixture
def rng():
    return np.random.default_rng(0)
