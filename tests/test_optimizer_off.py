"""The suite passes with the optimizer off too (DCE only), so every pass is
checked against the unoptimized program on the same tests."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
# the optimizer's own subjects: every primitive and every program (the API tests add
# little here and the rerun is serial, on CI's critical path)
SUITES = ["test_prims.py", "test_programs.py"]


def test_suite_passes_with_optimizer_off():
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
            "-p",
            "no:cacheprovider",
            "--optimize=off",
            "-k",
            "not (test_programs and cpu)",
            *files,
        ],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
