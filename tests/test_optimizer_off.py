"""The suite passes with the optimizer off too (DCE only), so every pass is
checked against the unoptimized program on the same tests."""

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
# the optimizer's own subjects: every primitive and every program (the API tests add
# little here)
SUITES = ["test_prims.py", "test_programs.py"]
# The rerun is split into shards (every SHARDS-th selected test, see --shard in
# conftest.py), each one item that xdist balances like any other, each in one
# process (-n 0: an inner `-n auto` would put two more workers on CI's two cores).
SHARDS = 3


@pytest.mark.parametrize("shard", range(SHARDS))
def test_suite_passes_with_optimizer_off(shard):
    files = [str(HERE / f) for f in SUITES if (HERE / f).exists()]
    proc = subprocess.run(
        # the compiled program table is left to the main run (it compiles ~500
        # programs); the registry-driven compiled tests run here too
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            "--optimize=off",
            f"--shard={shard}/{SHARDS}",
            "-k",
            "not (test_programs and cpu)",
            *files,
        ],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
