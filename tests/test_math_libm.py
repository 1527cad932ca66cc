"""The compiled suite passes with `math="libm"` too (scalar library calls in
place of tracediff.backend.vmath), so both code paths of every primitive are
checked against the interpreter."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def test_compiled_suite_passes_with_libm_math():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-x",
            "-n",
            "0",  # one process: an inner `-n auto` would put two more workers on CI's two cores
            "-p",
            "no:cacheprovider",
            "--math=libm",
            "-k",
            "cpu or default_math",
            # the primitives' scalar code paths; the programs' (fusion around the
            # same scalar calls) run with fast math in the main run
            str(HERE / "test_vmath.py"),
            str(HERE / "test_prims.py"),
        ],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and " 0 passed" not in proc.stdout, proc.stdout[-2000:]
