"""Pictures of the IR: `to_dot(ir)` writes a Graphviz digraph, `render` runs `dot`.

The picture uses the names of the text dump (`str(ir)`): program inputs are
green house-shaped nodes, outputs yellow double-bordered boxes, and each
equation a rounded box that reads

    <primitive> <operands>        (literal operands inline, as in the text)
    <params>                      (if any)
    <outputs with their types>
    <file:line>                   (small, grey; when the equation has one)

filled by the sweep that made it (`eqn.phase`): blue for the forward sweep,
orange for the backward one. Edges go from the equation (or input) that
computes a variable to each one that reads it; an edge from an equation with
several outputs is labelled with the variable. A `fused` region is a grey
cluster holding its body, its border coloured by phase (violet when it holds
both sweeps); its dashed ellipses are the body's inputs (edges come in from
the outer values they are bound to) and the region's outputs (named as in the
outer program). Regions nest.

All labels are Graphviz HTML-like labels with every special character
(`& < > " { } \\`) written as an entity (a backslash as two, which Graphviz
shows as one), so any source text or parameter is safe, and the output depends
only on the program: the same IR gives the same text.
"""

from __future__ import annotations

import shutil
import subprocess

from .core import IR, Eqn, Var
from .printer import _lit, _Namer, _param, ir_to_text

__all__ = ["to_dot", "render", "check_format", "FORMATS", "PHASE_COLORS"]

FONT = "Helvetica"
PHASE_COLORS = {"fwd": "#dbe9f7", "bwd": "#fde4cc", "fwd+bwd": "#e8def5"}
PHASE_BORDERS = {"fwd": "#5b8fd0", "bwd": "#e0904a", "fwd+bwd": "#9b7cc8"}  # of regions
INPUT_COLOR = "#d6f0d6"
OUTPUT_COLOR = "#fff2b0"
REGION_FILL = "#f6f6f6"
SRC_FONT = '<FONT POINT-SIZE="9" COLOR="#707070">'
NOTE_FONT = '<FONT POINT-SIZE="9" COLOR="#b03020">'  # the report's costs
PARAM_CHARS = 80  # longer parameter text is cut with "..."

_ENTITIES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "{": "&#123;",
    "}": "&#125;",
    # Graphviz expands `\N`, `\G`, ... even in HTML labels; `\\` stands for one backslash
    "\\": "&#92;&#92;",
    "\n": " ",
    "\r": " ",
    "\t": " ",
}


def esc(text: object) -> str:
    """`text` as the content of a Graphviz HTML-like label."""
    return "".join(_ENTITIES.get(c, c) for c in str(text))


class _Writer:
    def __init__(self, namer: _Namer, phases: bool, notes: dict[int, str] | None = None):
        self.name = namer
        self.phases = phases
        self.notes = notes or {}
        self.lines: list[str] = []
        self.edges: list[str] = []
        self.clusters = 0

    def atom(self, a) -> str:
        return self.name(a) if type(a) is Var else _lit(a)

    def decl(self, v: Var) -> str:
        return f"{self.name(v)}: {v.aval}"

    def node(self, ind: str, nid: str, label: str, **attrs: str) -> None:
        extra = "".join(f", {k}={v}" for k, v in attrs.items())
        self.lines.append(f"{ind}{nid} [label=<{label}>{extra}];")

    def edge(self, src: str, dst: str, label: str = "") -> None:
        self.edges.append(f"  {src} -> {dst}" + (f" [label=<{esc(label)}>]" if label else "") + ";")

    def wire(self, e_inputs, dst: str, where: dict[Var, tuple[str, bool]]) -> None:
        """Edges from the producers of the variables among `e_inputs` to node `dst`, once each."""
        seen = set()
        for a in e_inputs:
            if type(a) is Var and a not in seen and a in where:
                seen.add(a)
                src, many = where[a]
                self.edge(src, dst, self.name(a) if many else "")

    def fill(self, phase: str) -> str:
        return f'"{PHASE_COLORS.get(phase, "white") if self.phases else "white"}"'

    def program(self, ir: IR, prefix: str, ind: str, where: dict[Var, tuple[str, bool]]) -> None:
        for i, e in enumerate(ir.eqns):
            nid = f"{prefix}{i}"
            if isinstance(e.params.get("body"), IR):
                self.region(e, nid, ind, where)
            else:
                self.eqn(e, nid, ind, where)

    def eqn(self, e: Eqn, nid: str, ind: str, where: dict[Var, tuple[str, bool]]) -> None:
        rows = [f"<B>{esc(e.prim.name)}</B>" + "".join(" " + esc(self.atom(a)) for a in e.inputs)]
        params = {k: v for k, v in e.params.items() if k != "body"}
        if params:
            ptxt = ", ".join(f"{k}={_param(v)}" for k, v in sorted(params.items()))
            if len(ptxt) > PARAM_CHARS:
                ptxt = ptxt[: PARAM_CHARS - 3] + "..."
            rows.append(esc(ptxt))
        rows.append(esc(", ".join(self.decl(v) for v in e.outvars)))
        if e.src:
            rows.append(f"{SRC_FONT}{esc(e.src)}</FONT>")
        if id(e) in self.notes:
            rows.append(f"{NOTE_FONT}{esc(self.notes[id(e)])}</FONT>")
        self.node(ind, nid, "<BR/>".join(rows), fillcolor=self.fill(e.phase))
        self.wire(e.inputs, nid, where)
        many = len(e.outvars) > 1
        for v in e.outvars:
            where[v] = (nid, many)

    def boundary(self, ind: str, node_id: str, var: Var, source, where) -> str:
        """A dashed node where a value crosses a region's edge (`var` named as on
        this side, `source` the atom it comes from), wired from its source."""
        label = self.decl(var) if type(source) is Var else f"{self.decl(var)} = {_lit(source)}"
        self.node(ind, node_id, esc(label), shape="ellipse", style="dashed", fontsize="10")
        self.wire([source], node_id, where)
        return node_id

    def region(self, e: Eqn, nid: str, ind: str, where: dict[Var, tuple[str, bool]]) -> None:
        body: IR = e.params["body"]
        k = self.clusters
        self.clusters += 1
        title = f"<B>{esc(e.prim.name)}</B> {esc(e.params.get('name', ''))}".rstrip()
        if e.src:
            title += f"<BR/>{SRC_FONT}{esc(e.src)}</FONT>"
        if id(e) in self.notes:
            title += f"<BR/>{NOTE_FONT}{esc(self.notes[id(e)])}</FONT>"
        border = PHASE_BORDERS.get(e.phase, "#999999") if self.phases else "#999999"
        self.lines.append(f"{ind}subgraph cluster_{k} {{")
        inner = ind + "  "
        self.lines.append(
            f'{inner}graph [label=<{title}>, labeljust=l, style="rounded,filled", '
            f'fillcolor="{REGION_FILL}", color="{border}", penwidth=2];'
        )
        # the body's inputs, bound to the region's operands
        body_where: dict[Var, tuple[str, bool]] = {}
        for j, (bv, a) in enumerate(zip(body.invars, e.inputs)):
            body_where[bv] = (self.boundary(inner, f"{nid}_in{j}", bv, a, where), False)
        self.program(body, f"{nid}_", inner, body_where)
        # the region's outputs, named as the outer program names them
        for j, (ov, ba) in enumerate(zip(e.outvars, body.outvars)):
            where[ov] = (self.boundary(inner, f"{nid}_out{j}", ov, ba, body_where), False)
        self.lines.append(f"{ind}}}")


def to_dot(
    ir: IR, title: str | None = None, *, phases: bool = True, notes: dict[int, str] | None = None
) -> str:
    """The Graphviz `digraph` of a program, with the names of `str(ir)`.

    `title` is printed above the picture; `phases=False` leaves equations
    white instead of colouring them by sweep (forward blue, backward orange);
    `notes` adds a line to the node of each equation named by `id(eqn)` (the
    report's costs).
    """
    namer = _Namer()
    ir_to_text(ir, namer)  # name every variable in the order of the text dump
    w = _Writer(namer, phases, notes)
    w.lines += [
        "digraph ir {",
        f'  graph [rankdir=TB, fontname="{FONT}", fontsize=12, nodesep=0.3, ranksep=0.35'
        + (f", labelloc=t, label=<<B>{esc(title)}</B>>" if title else "")
        + "];",
        f'  node [shape=box, style="rounded,filled", fillcolor=white, fontname="{FONT}", fontsize=11];',
        f'  edge [fontname="{FONT}", fontsize=9, color="#555555", arrowsize=0.7];',
    ]
    where: dict[Var, tuple[str, bool]] = {}
    for j, v in enumerate(ir.invars):
        w.node("  ", f"in{j}", esc(w.decl(v)), shape="invhouse", style="filled", fillcolor=f'"{INPUT_COLOR}"')
        where[v] = (f"in{j}", False)
    if ir.invars:
        w.lines.append("  {rank=min; " + " ".join(f"in{j};" for j in range(len(ir.invars))) + "}")
    w.program(ir, "e", "  ", where)
    for j, a in enumerate(ir.outvars):
        label = esc(w.decl(a)) if type(a) is Var else esc(_lit(a))
        w.node(
            "  ",
            f"out{j}",
            label,
            shape="box",
            style="filled",
            peripheries="2",
            fillcolor=f'"{OUTPUT_COLOR}"',
        )
        w.wire([a], f"out{j}", where)
    return "\n".join(w.lines + w.edges + ["}"]) + "\n"


FORMATS = ("text", "dot", "svg", "png")


def check_format(stage: str, fmt: str) -> None:
    """Raise ValueError unless `td.dump` can give stage `stage` in format `fmt`."""
    if fmt not in FORMATS:
        raise ValueError(f"dump: format must be one of {', '.join(map(repr, FORMATS))}, got {fmt!r}")
    if fmt == "text":
        return
    allowed = ("traced", "optimized", "all") if fmt == "dot" else ("traced", "optimized")
    if stage not in allowed:
        msg = f"dump: format={fmt!r} draws the IR, so stage must be {', '.join(map(repr, allowed))}; got {stage!r}"
        if stage in ("source", "python"):
            msg += " (source code has no picture: use format='text')"
        elif stage == "all":
            msg += " (one image per stage; format='dot' gives both digraphs, one after the other)"
        raise ValueError(msg)


INSTALL_HINT = (
    "Graphviz's `dot` program is not installed (or not on PATH); it is needed to render "
    "format={fmt!r}. Install Graphviz with `apt install graphviz` (Debian/Ubuntu), "
    "`brew install graphviz` (macOS) or `conda install graphviz`, or use format='dot', which "
    "needs no Graphviz, and render the text elsewhere."
)


def render(dot_text: str, fmt: str = "svg", timeout: float = 120.0) -> bytes:
    """Run Graphviz `dot -T<fmt>` on `dot_text`; returns what it writes (bytes)."""
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError(INSTALL_HINT.format(fmt=fmt))
    proc = subprocess.run(
        [exe, f"-T{fmt}"], input=dot_text.encode("utf-8"), capture_output=True, timeout=timeout
    )
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError(f"Graphviz `{exe} -T{fmt}` failed (exit {proc.returncode}): {err}")
    return proc.stdout
