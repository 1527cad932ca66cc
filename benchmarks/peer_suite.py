"""Run a peer's test suite of NumPy/SciPy differentiation tests on tracediff.

HIPS autograd's tests are written against `autograd.numpy` (a wrapped NumPy)
and autograd's `grad`/`check_grads`. With `peer_shim/` first on the path,
`autograd.numpy` is plain NumPy, `autograd.scipy` plain SciPy, and every
derivative is tracediff's: a test passes when tracediff differentiates the
plain NumPy/SciPy code the test wrote. Each test file runs twice: eagerly and
with every derivative compiled (`TD_PEER_MODE=jit`).

    python benchmarks/peer_suite.py --autograd PATH [--mode eager|jit|both] [-k EXPR]

PATH is a checkout of https://github.com/HIPS/autograd or its bare git folder
(its `tests/` are read from HEAD); nothing is downloaded.

In scope: the files that test differentiating NumPy and SciPy functions
(IN_SCOPE). Out of scope: autograd's own machinery (boxes, vspaces, its
wrappers, graph utilities, its containers API, custom primitives (test_logic), odeint) — tests of a library's
internals, not of what a user writes.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = pathlib.Path(__file__).resolve().parent
IN_SCOPE = [
    "test_binary_ops.py",
    "test_complex.py",
    "test_fft.py",
    "test_jacobian.py",
    "test_linalg.py",
    "test_numpy.py",
    "test_scalar_ops.py",
    "test_scipy.py",
    "test_systematic.py",
    "test_truediv.py",
]
HELPERS = ["conftest.py", "numpy_utils.py"]


def extract(src: pathlib.Path, dest: pathlib.Path) -> None:
    """The peer's tests/ into dest, from a checkout or a (bare) git folder."""
    if (src / "tests").is_dir():
        for name in IN_SCOPE + HELPERS:
            shutil.copy(src / "tests" / name, dest / name)
        return
    names = [f"tests/{n}" for n in IN_SCOPE + HELPERS]
    archive = subprocess.run(
        ["git", "--git-dir", str(src), "archive", "HEAD", *names], check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "--strip-components=1", "-C", str(dest)], input=archive.stdout, check=True)


def run(dest: pathlib.Path, mode: str, select: str | None, workers: int) -> dict[str, str]:
    """{test id: 'passed' | 'failed' | 'skipped'} for one mode."""
    xml = dest / f"result-{mode}.xml"
    env = dict(os.environ, TD_PEER_MODE=mode, PYTHONPATH=f"{HERE / 'peer_shim'}{os.pathsep}{dest}")
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={xml}",
        "-o",
        "addopts=",
    ]
    if workers > 1:
        cmd += ["-n", str(workers)]
    if select:
        cmd += ["-k", select]
    cmd += [str(dest / n) for n in IN_SCOPE]
    subprocess.run(cmd, cwd=dest, env=env, capture_output=True)
    out = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        name = f"{case.get('classname', '').split('.')[-1]}::{case.get('name')}"
        kinds = {c.tag for c in case}
        out[name] = (
            "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
        )
        if out[name] == "failed":
            msg = next(c for c in case if c.tag in ("failure", "error")).get("message", "")
            out[name] += ": " + re.sub(r"\s+", " ", msg)[:160]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--autograd", required=True, type=pathlib.Path)
    ap.add_argument("--mode", default="both", choices=["eager", "jit", "both"])
    ap.add_argument("-k", dest="select")
    ap.add_argument("-n", dest="workers", type=int, default=2)
    ap.add_argument("--failures", action="store_true", help="list each failing test and its error")
    args = ap.parse_args()
    modes = ["eager", "jit"] if args.mode == "both" else [args.mode]
    with tempfile.TemporaryDirectory() as tmp:
        dest = pathlib.Path(tmp)
        extract(args.autograd, dest)
        for mode in modes:
            res = run(dest, mode, args.select, args.workers)
            by_file: dict[str, list[int]] = {}
            for name, r in res.items():
                if r == "skipped":
                    continue
                f = by_file.setdefault(name.split("::")[0], [0, 0])
                f[0] += r == "passed"
                f[1] += 1
            ran = sum(t for _, t in by_file.values())
            ok = sum(p for p, _ in by_file.values())
            print(f"\n## {mode}: {ok}/{ran} in-scope tests pass ({100 * ok / max(ran, 1):.1f}%)")
            for f, (p, t) in sorted(by_file.items()):
                print(f"  {f:<22} {p:>4}/{t:<4}")
            if args.failures:
                for name, r in sorted(res.items()):
                    if r.startswith("failed"):
                        print(f"  FAIL {name}: {r[8:]}")


if __name__ == "__main__":
    main()
