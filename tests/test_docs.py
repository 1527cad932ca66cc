"""Every ```python block of docs/*.md and README.md runs.

Each Markdown file runs in a fresh interpreter (so a block that sets an
environment variable or registers a primitive cannot leak into other tests),
its blocks in order, sharing one namespace. A block is compiled with the
Markdown file as its file name and its own line numbers, so a traceback, and
the "(at guide.md:120)" suffix of tracediff's errors, point at the Markdown
line. Blocks fenced as ```python no-run are only compiled (meant for code
that needs large data or takes long).

A ```text output block shows what the python block before it prints: its
lines must appear, consecutively, in that block's output (a line "..." skips
any number of lines). Plain ```text blocks are not checked.

The docs also hold generated sections (between ``<!-- BEGIN GENERATED: x -->``
and ``<!-- END GENERATED: x -->``), rebuilt from the package's own tables;
a test checks they are current. Regenerate them with

    python tests/test_docs.py --update
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
NO_RUN = "no-run"
# a file's blocks together; a cold Numba cache compiles each jitted program once
FILE_TIMEOUT_S = 300

_FENCE = re.compile(r"^```(?P<lang>[\w-]*)(?P<info>[^\n`]*)$")


class Block(NamedTuple):
    line: int  # first code line, 1-based
    src: str
    run: bool
    # ```text output blocks after it (before the next python block): (first line, lines)
    outputs: tuple[tuple[int, tuple[str, ...]], ...] = ()


def python_blocks(text: str) -> list[Block]:
    """The top-level ```python blocks of a Markdown text, with their expected outputs."""
    blocks: list[Block] = []
    lines, i = text.splitlines(), 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m or not m.group("lang"):
            i += 1
            continue
        lang, info = m.group("lang"), m.group("info").split()
        start = j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        if j == len(lines):
            raise ValueError(f"unclosed ```{lang} block at line {i + 1}")
        body = lines[start:j]
        if lang == "python":
            blocks.append(Block(start + 1, "\n".join(body) + "\n", NO_RUN not in info))
        elif lang == "text" and "output" in info:
            if not blocks:
                raise ValueError(f"```text output at line {i + 1} follows no python block")
            b = blocks[-1]
            blocks[-1] = b._replace(outputs=b.outputs + ((start + 1, tuple(s.rstrip() for s in body)),))
        i = j + 1
    return blocks


def output_matches(expected: tuple[str, ...], printed: str) -> bool:
    """`expected` appears in `printed` as consecutive lines; a line "..." skips any number."""
    got = [s.rstrip() for s in printed.splitlines()]
    parts, cur = [], []
    for s in expected:
        if s == "...":
            parts.append(cur)
            cur = []
        else:
            cur.append(s)
    parts.append(cur)
    pos = 0
    for part in parts:
        if not part:
            continue
        n = len(part)
        for at in range(pos, len(got) - n + 1):
            if got[at : at + n] == part:
                pos = at + n
                break
        else:
            return False
    return True


# What runs in the child interpreter: argv[1] = the Markdown file.
_RUNNER = r"""
import contextlib, io, json, sys, time, traceback
sys.path.insert(0, sys.argv[2])
from test_docs import python_blocks


class Tee(io.StringIO):
    def write(self, s):
        sys.__stdout__.write(s)
        return super().write(s)


path = sys.argv[1]
text = open(path, encoding="utf-8").read()
ns = {"__name__": "__docs__"}
report = []
for b in python_blocks(text):
    code = compile("\n" * (b.line - 1) + b.src, path, "exec")  # Markdown line numbers
    if not b.run:
        report.append({"line": b.line, "skipped": True})
        continue
    out = Tee()
    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out):
            exec(code, ns)
    except BaseException:
        report.append({"line": b.line, "error": traceback.format_exc(limit=-8), "out": out.getvalue()})
        break
    report.append({"line": b.line, "s": round(time.perf_counter() - t0, 3), "out": out.getvalue()})
sys.__stdout__.flush()
print("@@REPORT@@" + json.dumps(report))
"""


def run_doc(path: Path) -> tuple[list[dict], str, float]:
    env = dict(os.environ)
    # the docs describe the default configuration (pytest --optimize=off sets this)
    env.pop("TRACEDIFF_OPT", None)
    env.setdefault("TRACEDIFF_VERIFY", "1")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, str(path), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=FILE_TIMEOUT_S,
    )
    wall = time.perf_counter() - t0
    out = proc.stdout
    if "@@REPORT@@" not in out:
        raise AssertionError(
            f"{path.name}: the runner died (rc {proc.returncode})\n{out[-3000:]}{proc.stderr[-3000:]}"
        )
    printed, rep = out.rsplit("@@REPORT@@", 1)
    return json.loads(rep), printed, wall


def _rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


CODE_FILES = [p for p in DOC_FILES if python_blocks(p.read_text(encoding="utf-8"))]


def test_docs_have_code():
    assert len(CODE_FILES) >= 5, [_rel(p) for p in CODE_FILES]


@pytest.mark.parametrize("path", CODE_FILES, ids=_rel)
def test_doc_examples_run(path):
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    report, _, wall = run_doc(path)
    for r in report:
        if "error" in r:
            pytest.fail(f"{_rel(path)}: the block at line {r['line']} failed:\n{r['error']}", pytrace=False)
    assert len(report) == len(blocks), (report, blocks)
    for b, r in zip(blocks, report):
        for line, expected in b.outputs:
            if not output_matches(expected, r["out"]):
                pytest.fail(
                    f"{_rel(path)}:{line}: the output shown does not match what the block at line "
                    f"{b.line} prints:\n{r['out'][-3000:]}",
                    pytrace=False,
                )
    print(f"{_rel(path)}: {len(blocks)} blocks in {wall:.1f} s")


@pytest.mark.parametrize("path", DOC_FILES, ids=_rel)
def test_no_run_blocks_compile_and_are_rare(path):
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    skipped = [b for b in blocks if not b.run]
    for b in skipped:
        compile("\n" * (b.line - 1) + b.src, str(path), "exec")
        assert not b.outputs, f"{_rel(path)}:{b.line}: a no-run block cannot show checked output"
    assert len(skipped) <= max(1, len(blocks) // 5), f"{_rel(path)}: too many no-run blocks"


def test_block_extraction():
    text = (
        "x\n```python\na = 1\n```\n```text output\n1\n```\n\n"
        "```python no-run\nb = 2\n```\n```bash\nls\n```\n```text\nnot checked\n```\n"
    )
    assert python_blocks(text) == [
        Block(3, "a = 1\n", True, ((6, ("1",)),)),
        Block(10, "b = 2\n", False),
    ]


def test_output_matching():
    printed = "a\nb  \nc\nd\n"
    assert output_matches(("b", "c"), printed)
    assert output_matches(("a", "...", "d"), printed)
    assert not output_matches(("a", "c"), printed)
    assert not output_matches(("c", "...", "a"), printed)


# --- generated sections ---------------------------------------------------------------------

_GEN = re.compile(
    r"(<!-- BEGIN GENERATED: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- END GENERATED: (?P=name) -->)", re.S
)


def _np_name(obj) -> str:
    import numpy as np

    name = obj.__name__
    for prefix, mod in (("np.", np), ("np.linalg.", np.linalg), ("np.fft.", np.fft)):
        if getattr(mod, name, None) is obj:
            return prefix + name
    if isinstance(obj, np.ufunc):  # a ufunc NumPy does not export, e.g. the one behind ndarray.clip
        return f"ndarray.{name} (ufunc)"
    return f"{obj.__module__}.{name}"


def _codes(names) -> str:
    return ", ".join(f"`{n}`" for n in names)


def gen_numpy_support() -> str:
    """The NumPy front end's tables (tracediff/numpy_api/), by category."""
    from tracediff import numpy_api as api
    from tracediff.core import REGISTRY

    nondiff = {p for p in REGISTRY.values() if not p.differentiable}
    piecewise = {"sign", "floor", "ceil", "round", "floor_divide"}  # derivative 0 where it exists
    math_u, logic, flat = [], [], []
    for uf, prim in api.UFUNCS.items():
        n = _np_name(uf)
        if prim in nondiff:
            logic.append(n)
        elif prim.name in piecewise:
            flat.append(n)
        else:
            math_u.append(n)
    comp = [_np_name(u) for u in api.UFUNC_COMPOSITES]
    cats = {
        "reductions and statistics": "sum prod max amax min amin mean var std argmax argmin cumsum norm diff trace",
        "linear algebra and contractions": "matmul dot vdot inner outer tensordot einsum diagonal",
        "shapes": "reshape ravel transpose swapaxes moveaxis expand_dims squeeze broadcast_to atleast_1d "
        "atleast_2d flip fliplr flipud tile repeat",
        "joining and splitting": "concatenate stack hstack vstack split",
        "selection and indexing": "where clip take take_along_axis",
        "array creation from a traced array": "zeros_like ones_like full_like empty_like copy",
        "rounding": "round around",
        "queries (static: shapes and dtypes are known while tracing)": "shape ndim size result_type real",
    }
    cats = {k: v.split() for k, v in cats.items()}
    from tracediff.control.arrays import _BY_PATH
    from tracediff.numpy_api import fft, linalg, misc, more, ufuncs

    families = {
        "linear algebra (np.linalg; scipy.linalg below)": linalg.FUNCTIONS,
        "Fourier transforms (np.fft; scipy.fft too)": fft.FUNCTIONS,
        "sorting, searching, cumulative operations, building arrays, statistics": more.FUNCTIONS,
        "more shapes and calculus": misc.FUNCTIONS,
    }
    in_family = {f for fs in families.values() for f in fs}
    by_name = {f.__name__: _np_name(f) for f in api.FUNCTIONS if f not in in_family}
    rows = [
        f"- **Elementwise math** (ufuncs, differentiable; broadcasting and NEP 50 promotion as NumPy): "
        f"{_codes(math_u)}.",
        f"- **Elementwise, derivative zero** (piecewise constant): {_codes(flat)}.",
        f"- **Comparisons, logic and bit operations** (not differentiable: no gradient flows through "
        f"them): {_codes(logic)}.",
        f"- **Elementwise, written as compositions of the above**: {_codes(comp)}.",
    ]
    for cat, names in cats.items():
        rows.append(f"- **{cat[0].upper() + cat[1:]}**: {_codes(by_name[n] for n in names if n in by_name)}.")
    for cat, fs in families.items():
        names = sorted({_np_name(f) for f in fs if f in api.FUNCTIONS})
        rows.append(f"- **{cat[0].upper() + cat[1:]}**: {_codes(names)}.")
    special = sorted({*ufuncs.SCIPY_UFUNCS, *ufuncs.SCIPY_COMPOSITES})
    rows.append(f"- **scipy.special ufuncs**: {_codes('scipy.special.' + n for n in special)}.")
    for lib in ("scipy.special", "scipy.stats", "scipy.linalg", "scipy.signal", "numpy"):
        paths = sorted(p for p in _BY_PATH if p.startswith(lib + ".") and not p.startswith("scipy.fft"))
        if paths:
            what = "NumPy functions NumPy cannot dispatch" if lib == "numpy" else lib
            rows.append(f"- **{what}** (in the user's converted code): {_codes(paths)}.")
    return "\n".join(rows) + "\n"


def gen_primitive_table() -> str:
    """One row per primitive of tracediff.core.REGISTRY."""
    import tracediff  # noqa: F401  (registers every primitive)
    from tracediff.core import REGISTRY
    from tracediff.passes.fuse import INDEX_OPS, REDUCTIONS
    from tracediff.passes.inline import CUSTOM as INLINED

    rows = ["| primitive | kind | differentiable | in fused loops |", "| --- | --- | --- | --- |"]
    for name, p in REGISTRY.items():
        if p.scalar:
            fused = "yes: scalar code"
        elif p in REDUCTIONS:
            fused = "yes: accumulator"
        elif p in INDEX_OPS:
            fused = "yes: index map"
        elif p in INLINED:
            fused = "inlined before optimizing"
        elif p.kind == "region":
            fused = "is the loop"
        else:
            fused = "no: top level"
        rows.append(f"| `{name}` | {p.kind} | {'yes' if p.differentiable else 'no'} | {fused} |")
    return "\n".join(rows) + "\n"


GENERATORS = {"numpy-support": gen_numpy_support, "primitives": gen_primitive_table}


def regenerate(text: str) -> str:
    return _GEN.sub(lambda m: m.group(1) + GENERATORS[m.group("name")]() + m.group(4), text)


def test_generated_sections_are_current():
    seen = set()
    for path in DOC_FILES:
        text = path.read_text(encoding="utf-8")
        seen |= {m.group("name") for m in _GEN.finditer(text)}
        assert regenerate(text) == text, f"{_rel(path)} is stale: run python tests/test_docs.py --update"
    assert seen == set(GENERATORS), seen


if __name__ == "__main__":
    if sys.argv[1:] == ["--update"]:
        for p in DOC_FILES:
            old = p.read_text(encoding="utf-8")
            new = regenerate(old)
            if new != old:
                p.write_text(new, encoding="utf-8")
                print("updated", _rel(p))
    else:  # run one file's blocks and print what they print: python tests/test_docs.py docs/guide.md
        for arg in sys.argv[1:]:
            report, printed, wall = run_doc(Path(arg).resolve())
            print(printed)
            for r in report:
                status = "skipped" if r.get("skipped") else r.get("error") or f"{r['s']:.3f} s"
                print(f"{arg}:{r['line']}: {status}")
            print(f"{wall:.1f} s in all")
