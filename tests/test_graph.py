"""Graphviz pictures of the IR: `tracediff.graph.to_dot`, `td.dump(format=...)`, the CLI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections import defaultdict

import numpy as np
import pytest

import tracediff as td
from tracediff import __main__ as cli
from tracediff import graph
from tracediff.core import IR, REGISTRY, Aval, Eqn, Lit, Var
from tracediff.graph import to_dot
from tracediff.passes.pipeline import optimize
from tracediff.prims.region import fused_p
from tracediff.printer import _Namer, ir_to_text

HAS_DOT = shutil.which("dot") is not None


def loss(w, x):
    return np.sum(np.tanh(x @ w))


LOSS_LINE = loss.__code__.co_firstlineno + 1
W = np.full((10, 3), 0.1, np.float32)
X = np.ones((4, 10), np.float32)


def traced():
    return td.make_ir(td.grad(loss), W, X)


def fused():
    """The optimized value and gradient: the pipeline on, whatever TRACEDIFF_OPT says."""
    ir = optimize(td.make_ir(td.value_and_grad(loss), W, X), enabled=True)
    assert any(e.prim is fused_p for e in ir.eqns)
    return ir


def all_vars(ir: IR):
    yield from ir.invars
    for e in ir.eqns:
        yield from e.outvars
        if isinstance(e.params.get("body"), IR):
            yield from all_vars(e.params["body"])


def names(ir: IR) -> dict[Var, str]:
    namer = _Namer()
    ir_to_text(ir, namer)
    return namer.names


def parse(dot: str):
    """Node ids (with the cluster depth they sit at) and edges of a digraph written by to_dot."""
    nodes, edges, depth, clusters = {}, [], 0, []
    for line in dot.splitlines():
        s = line.strip()
        if s.startswith("subgraph cluster_"):
            clusters.append((s.split()[1], depth))
            depth += 1
        elif s == "}":
            depth -= 1
        elif m := re.fullmatch(r"(\w+) -> (\w+)( \[.*\])?;", s):
            edges.append((m.group(1), m.group(2)))
        elif (m := re.fullmatch(r"(\w+) \[label=<.*", s)) and m.group(1) != "graph":
            nodes[m.group(1)] = depth
    return nodes, edges, clusters


def label_texts(dot: str) -> list[str]:
    """The text of every HTML label, with the markup to_dot writes removed."""
    out = []
    for lab in re.findall(r"label=<(.*?)>(?:, |\]|;)", dot):
        out.append(re.sub(r"</?B>|<BR/>|<FONT [^>]*>|</FONT>", "", lab))
    return out


def check_well_formed(dot: str):
    assert dot.startswith("digraph ir {\n") and dot.endswith("}\n")
    assert dot.count("{") == dot.count("}")
    assert dot.count("<") == dot.replace(" -> ", "").count(">")
    for text in label_texts(dot):  # every special character is an entity
        assert not set(text) & set('<>"{}\\'), text
    nodes, edges, _ = parse(dot)
    for a, b in edges:
        assert a in nodes and b in nodes, (a, b)
    return nodes, edges


def connected(nodes, edges) -> bool:
    adj = defaultdict(set)
    for a, b in edges:
        adj[a].add(b)
        adj[b].add(a)
    start = next(iter(nodes))
    seen, todo = {start}, [start]
    while todo:
        for n in adj[todo.pop()] - seen:
            seen.add(n)
            todo.append(n)
    return seen == set(nodes)


# --- to_dot ---------------------------------------------------------------------------------


def test_traced_gradient():
    ir = traced()
    dot = to_dot(ir, title="traced")
    nodes, edges = check_well_formed(dot)
    assert connected(nodes, edges)
    assert "subgraph cluster" not in dot
    # names and types exactly as in the text dump
    text = str(ir)
    for v, n in names(ir).items():
        assert f"{n}:{v.aval}" in text and f"{n}: {v.aval}" in dot
    assert {v for v in all_vars(ir)} <= set(names(ir))
    # one node per equation, input and output; forward and backward colours
    assert len(nodes) == len(ir.eqns) + len(ir.invars) + len(ir.outvars)
    assert "<B>matmul</B>" in dot and "<B>tanh</B>" in dot and "perm=(1, 0)" in dot
    assert f"test_graph.py:{LOSS_LINE}</FONT>" in dot
    assert graph.PHASE_COLORS["fwd"] in dot and graph.PHASE_COLORS["bwd"] in dot
    assert "label=<<B>traced</B>>" in dot
    assert " 1.0:f32" in dot  # a literal operand, inline
    assert to_dot(ir, title="traced") == dot  # deterministic
    assert graph.PHASE_COLORS["bwd"] not in to_dot(ir, phases=False)


def test_optimized_gradient_has_regions():
    ir = fused()
    dot = to_dot(ir)
    nodes, edges = check_well_formed(dot)
    regions = [e for e in ir.eqns if e.prim is fused_p]
    _, _, clusters = parse(dot)
    assert [c for c, _ in clusters] == [f"cluster_{k}" for k in range(len(regions))]
    assert "<B>fused</B> loop_4x3" in dot
    nm = names(ir)
    for v in all_vars(ir):
        assert f"{nm[v]}: {v.aval}" in dot
    # region inputs bound to outer values, region outputs feeding the outer consumers
    assert connected(nodes, edges)
    k = ir.eqns.index(regions[0])
    body = regions[0].params["body"]
    assert len([n for n in nodes if re.fullmatch(rf"e{k}_in\d+", n)]) == len(body.invars)
    assert len([n for n in nodes if re.fullmatch(rf"e{k}_out\d+", n)]) == len(body.outvars)
    for n, depth in nodes.items():
        assert depth == (1 if n.startswith(f"e{k}_") else 0), n
    assert to_dot(fused()) == dot  # a retrace draws the same picture


def nested_ir() -> IR:
    """Regions three deep (outer > inner > the optimizer's), an unused input, outputs that are an input and a literal."""
    inner = fused()
    xs = [Var(v.aval) for v in inner.invars]
    outs = [Var(v.aval) for v in inner.outvars]
    body = IR(
        xs, [Eqn(fused_p, tuple(xs), tuple(outs), {"body": inner, "name": "inner"}, "m.py:1", "bwd")], outs
    )
    a, b, unused = Var(xs[0].aval), Var(xs[1].aval), Var(Aval((2,), np.dtype(np.float64)))
    r = [Var(v.aval) for v in outs]
    lit = Lit(np.float32(2.5))
    outer = Eqn(fused_p, (a, b), tuple(r), {"body": body, "name": "outer"}, "", "")
    return IR([a, b, unused], [outer], [*r, a, lit])


def test_nested_regions_and_corner_cases():
    ir = nested_ir()
    dot = to_dot(ir)
    nodes, edges = check_well_formed(dot)
    _, _, clusters = parse(dot)
    assert clusters == [("cluster_0", 0), ("cluster_1", 1), ("cluster_2", 2)]  # nested as in the IR
    assert nodes["e0_0_0"] == 2 and nodes["e0_0_in0"] == 2 and nodes["e0_in0"] == 1
    assert ("e0_in0", "e0_0_in0") in edges and ("in0", "e0_in0") in edges
    assert ("in0", "out2") in edges  # an input returned as it is
    assert "2.5:f32" in dot  # a literal output
    nm = names(ir)
    for v in all_vars(ir):
        assert f"{nm[v]}: {v.aval}" in dot
    assert "label=<c: f64[2]>" in dot  # the unused input still shows
    assert "<B>fused</B> inner" in dot and "<B>fused</B> outer" in dot
    assert 'color="' + graph.PHASE_BORDERS["bwd"] in dot


NASTY = 'a"b {c} <d> \\N & f'  # \N would be the node's name to Graphviz


def nasty_ir() -> IR:
    x, y = Var(Aval((2,), np.dtype(np.float32))), Var(Aval((2,), np.dtype(np.float32)))
    eqn = Eqn(REGISTRY["broadcast"], (x,), (y,), {"shape": (2,), "note": NASTY}, f"{NASTY}.py:3", "fwd")
    return IR([x], [eqn], [y])


def test_labels_are_escaped():
    dot = to_dot(nasty_ir(), title=NASTY)
    check_well_formed(dot)
    assert NASTY not in dot and "\\" not in dot
    # a backslash is written twice: Graphviz shows two as one
    escaped = "a&quot;b &#123;c&#125; &lt;d&gt; &#92;&#92;N &amp; f"
    assert f"<B>{escaped}</B>" in dot  # the title
    assert f"{escaped}.py:3" in dot  # the source line
    assert "note='a&quot;b &#123;c&#125; &lt;d&gt; &#92;&#92;&#92;&#92;N &amp; f', shape=(2,)" in dot
    assert graph.esc("x\ny") == "x y"


# --- td.dump --------------------------------------------------------------------------------


def test_dump_formats():
    g = td.grad(loss)
    dot = td.dump(g, W, X, format="dot")
    assert isinstance(dot, td.api.DumpText) and dot == to_dot(td.make_ir(g, W, X), title="grad(loss): traced")
    opt = td.dump(g, W, X, stage="optimized", format="dot")
    assert opt == to_dot(td.make_ir(g, W, X, stage="optimized"), title="grad(loss): optimized")
    both = td.dump(g, W, X, stage="all", format="dot")
    assert both == dot + "\n" + opt and both.count("digraph ir {") == 2
    assert "jit(grad(loss)): traced" in td.dump(td.jit(g), W, X, format="dot")
    assert td.dump(g, W, X) == str(td.make_ir(g, W, X))  # text is unchanged
    with pytest.raises(ValueError, match="'text', 'dot', 'svg', 'png'"):
        td.dump(g, W, X, format="pdf")
    with pytest.raises(ValueError, match="no picture"):
        td.dump(g, W, X, stage="source", format="dot")
    with pytest.raises(ValueError, match="one image per stage"):
        td.dump(g, W, X, stage="all", format="svg")


def test_missing_dot_is_a_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    for fmt in ("svg", "png"):
        with pytest.raises(RuntimeError) as err:
            td.dump(td.grad(loss), W, X, format=fmt)
        msg = str(err.value)
        for hint in (
            "apt install graphviz",
            "brew install graphviz",
            "conda install graphviz",
            "format='dot'",
        ):
            assert hint in msg
    assert td.dump(td.grad(loss), W, X, format="dot").startswith("digraph")  # needs no Graphviz
    src = tmp_path / "model.py"
    src.write_text(MODEL)
    with pytest.raises(SystemExit, match="apt install graphviz"):
        cli.main(["dump", f"{src}:loss", "--arg", "w=f32[10,3]", "--arg", "x=f32[4,10]", "--format", "svg"])


def test_render_runs_the_dot_program(monkeypatch, tmp_path):
    """The plumbing to `dot`, with a stand-in program (the real one is tested below when installed)."""
    fake = tmp_path / "dot"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "src = sys.stdin.buffer.read()\n"
        "open(sys.argv[0] + '.in', 'wb').write(src)\n"
        "if sys.argv[1] == '-Tfail':\n"
        "    sys.stderr.write('syntax error in line 1')\n"
        "    sys.exit(3)\n"
        "sys.stdout.buffer.write(b'<svg>' + sys.argv[1].encode() + b'</svg>')\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: str(fake) if name == "dot" else None)
    svg = td.dump(td.grad(loss), W, X, format="svg")
    assert svg == "<svg>-Tsvg</svg>"
    assert (tmp_path / "dot.in").read_text() == td.dump(td.grad(loss), W, X, format="dot")
    assert td.dump(td.grad(loss), W, X, format="png") == b"<svg>-Tpng</svg>"
    with pytest.raises(RuntimeError, match="exit 3.*syntax error in line 1"):
        graph.render("digraph {}", "fail")


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz `dot` is not installed")
def test_svg_and_png_with_graphviz(tmp_path):
    svg = td.dump(td.grad(loss), W, X, stage="optimized", format="svg")
    assert isinstance(svg, str) and "<svg" in svg and "</svg>" in svg and "matmul" in svg
    png = td.dump(td.grad(loss), W, X, format="png")
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG\r\n\x1a\n")
    # every picture here is valid DOT for the real program, nested regions and escapes included
    for dot in (to_dot(fused()), to_dot(traced()), to_dot(nested_ir())):
        assert graph.render(dot, "svg").lstrip().startswith(b"<?xml")
    shown = graph.render(to_dot(nasty_ir(), title=NASTY), "svg").decode()
    assert shown.count("a&quot;b {c} &lt;d&gt; \\N &amp; f") == 2  # the title and the source line
    assert "&lt;d&gt; \\\\N &amp; f&#39;, shape=(2,)" in shown  # the note's repr
    src = tmp_path / "model.py"
    src.write_text(MODEL)
    run_cli(tmp_path, "--stage", "optimized", "--format", "svg", "-o", "grad.svg")
    assert "<svg" in (tmp_path / "grad.svg").read_text()
    proc = run_cli(tmp_path, "--format", "png", text=False)  # binary to a pipe
    assert proc.stdout.startswith(b"\x89PNG")


# --- the CLI --------------------------------------------------------------------------------

MODEL = textwrap.dedent(
    """\
    import numpy as np


    def loss(w, x):
        return np.sum(np.tanh(x @ w))
    """
)


def run_cli(cwd, *extra, text=True, check=True):
    env = dict(os.environ, TRACEDIFF_OPT="1")
    args = ["dump", "model.py:loss", "--arg", "w=f32[10,3]", "--arg", "x=f32[4,10]", "--grad", "0"]
    proc = subprocess.run(
        [sys.executable, "-m", "tracediff", *args, *extra],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=text,
        timeout=120,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_cli_dot(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    out = run_cli(tmp_path, "--stage", "optimized", "--format", "dot").stdout
    nodes, edges = check_well_formed(out)
    assert "subgraph cluster_0" in out and "grad(loss): optimized" in out and "model.py:5" in out
    assert connected(nodes, edges)
    proc = run_cli(tmp_path, "--format", "dot", "-o", "grad.dot")
    assert proc.stdout == "" and "wrote grad.dot" in proc.stderr
    assert (tmp_path / "grad.dot").read_text().startswith("digraph ir {")
    assert run_cli(tmp_path, "--stage", "all", "--format", "dot").stdout.count("digraph ir {") == 2
    bad = run_cli(tmp_path, "--stage", "source", "--format", "dot", check=False)
    assert bad.returncode != 0 and "no picture" in bad.stderr and "Traceback" not in bad.stderr
    assert "--format {text,dot,svg,png}" in run_cli(tmp_path, "--help").stdout


def test_cli_loads_a_module_that_needs_sys_modules(tmp_path):
    """A model file with a dataclass and string annotations (the dataclass looks its
    module up in sys.modules while it is defined)."""
    from tracediff.__main__ import load_function

    (tmp_path / "td_cli_dataclass_model.py").write_text(
        "from __future__ import annotations\n\n"
        + MODEL
        + "\n\nimport dataclasses\n\n\n@dataclasses.dataclass\nclass Config:\n    lr: float = 0.1\n"
    )
    try:
        loss = load_function(f"{tmp_path / 'td_cli_dataclass_model.py'}:loss")
        assert loss.__module__ == "td_cli_dataclass_model"
        w, x = np.ones((10, 3), np.float32), np.ones((4, 10), np.float32)
        assert "tanh" in td.dump(td.grad(loss), w, x, stage="optimized")
    finally:
        sys.modules.pop("td_cli_dataclass_model", None)
        sys.path.remove(str(tmp_path.resolve()))
