"""The report as text, as HTML (Jupyter) and as an annotated Graphviz digraph."""

from __future__ import annotations

import html as _html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import ProgramReport, Report

REGIONS_LISTED = 12


def _si(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    for k, p in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(float(f"{x:.3g}")) >= k:  # (rounded first: 999,999.7 is 1 M, not 1e+03 k)
            return f"{x / k:.3g} {p}{unit}"
    return f"{x:.3g} {unit}".rstrip()


def _bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for k, p in ((1 << 50, "PiB"), (1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if float(f"{n / k:.3g}") >= 1:
            return f"{n / k:.3g} {p}"
    return f"{n} B"


def _time(s: float | None) -> str:
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def _compile(p: ProgramReport) -> str:
    if p.compile_s is None:
        return "-"
    how = {True: " (disk cache)", False: " (compiled)", None: ""}[p.from_cache]
    return _time(p.compile_s) + how


def _rows(r: Report) -> list[tuple[str, str, str]]:
    f, g = r.forward, r.gradient

    def both(fn):
        return fn(f), (fn(g) if g is not None else "-")

    loops = lambda p: "-" if p.loops is None else f"{p.loops} ({p.parallel_loops} parallel)"  # noqa: E731
    rows = [
        ("equations traced", *both(lambda p: str(p.traced_eqns))),
        ("equations optimized", *both(lambda p: str(p.cost.eqns))),
        ("fused regions", *both(lambda p: str(p.fused_regions))),
        ("loops generated", *both(loops)),
        ("FLOPs", *both(lambda p: _si(p.cost.total.flops))),
        ("bytes read + written", *both(lambda p: _bytes(p.cost.total.bytes))),
        ("kept for the backward", "-", _bytes(g.cost.kept_bytes) if g else "-"),
        ("peak memory (model)", *both(lambda p: _bytes(p.cost.peak_bytes))),
        ("peak memory (measured)", *both(lambda p: _bytes(p.peak_measured))),
        ("compile", *both(_compile)),
        ("time (model)", *both(lambda p: _time(p.cost.seconds))),
        ("time (measured)", *both(lambda p: _time(p.seconds))),
    ]
    return rows


def _ratio_line(r: Report) -> str:
    ratio = r.ratio
    if ratio is None:
        return ""
    from . import CHEAP_GRADIENT_BOUND

    verdict = "within" if ratio <= CHEAP_GRADIENT_BOUND else "ABOVE"
    return f"t(grad)/t(f) = {ratio:.2f}: {verdict} the cheap-gradient bound (~{CHEAP_GRADIENT_BOUND:.0f})"


def _region_rows(p: ProgramReport) -> list[tuple[str, ...]]:
    regs = sorted(p.cost.regions, key=lambda x: -x.seconds)[:REGIONS_LISTED]
    out = []
    for x in regs:
        e = x.eqn
        name = e.params.get("name") or e.prim.name
        ai = "-" if x.intensity == float("inf") else f"{x.intensity:.2f}"
        out.append(
            (
                str(name),
                e.phase or "-",
                _si(x.cost.flops),
                _bytes(x.cost.bytes),
                ai,
                _bytes(x.kept) if x.kept else "-",
                _time(x.seconds),
                e.src or "",
            )
        )
    return out


REGION_HEAD = ("region", "sweep", "FLOPs", "bytes", "FLOP/B", "kept", "time", "line")


def _table(head, rows) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*head).rstrip(), fmt.format(*("-" * w for w in widths))] + [
        fmt.format(*row).rstrip() for row in rows
    ]


def _fd_line(r: Report) -> str:
    if r.fd is None:
        return ""
    fd, ad, err = r.fd
    return f"finite differences along a random direction: {ad:.9g} vs {fd:.9g} (relative error {err:.2g})"


def text(r: Report) -> str:
    lines = [f"tracediff report: {r.name}({r.signature}) on {r.target}, argnums={r.argnums}", ""]
    if r.target == "interpret":
        lines[1:1] = ["(interpreted: the model's figures are those of the compiled CPU code)"]
    lines += _table(("", "forward", "gradient"), _rows(r))
    if s := _ratio_line(r):
        lines += ["", s]
    p = r.gradient or r.forward
    lines += ["", f"costliest source lines ({p.title}, model):"]
    for k, (line, s, share) in enumerate(p.cost.top_lines(5), 1):
        lines.append(f"  {k}. {line:<40} {share:6.1%}  {_time(s)}")
    lines += ["", f"top-level operations of the {p.title} (model, costliest first):"]
    lines += ["  " + s for s in _table(REGION_HEAD, _region_rows(p))]
    lines += ["", "checks:"]
    if s := _fd_line(r):
        lines.append("  " + s)
    if not r.findings:
        lines.append("  no findings")
    for f in r.findings:
        lines += ["  " + s for s in str(f).splitlines()]
    return "\n".join(lines)


def _h(s: object) -> str:
    return _html.escape(str(s))


def _html_table(head, rows) -> str:
    th = "".join(f"<th style='text-align:left'>{_h(c)}</th>" for c in head)
    trs = "".join("<tr>" + "".join(f"<td>{_h(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def html(r: Report) -> str:
    p = r.gradient or r.forward
    parts = [
        f"<h4>tracediff report: <code>{_h(r.name)}({_h(r.signature)})</code> on {_h(r.target)}, "
        f"argnums={_h(r.argnums)}</h4>",
        _html_table(("", "forward", "gradient"), _rows(r)),
    ]
    if s := _ratio_line(r):
        parts.append(f"<p>{_h(s)}</p>")
    parts.append(f"<p><b>Costliest source lines</b> ({_h(p.title)}, model)</p>")
    parts.append(
        _html_table(
            ("line", "share", "time"),
            [(line, f"{share:.1%}", _time(s)) for line, s, share in p.cost.top_lines(5)],
        )
    )
    parts.append(f"<p><b>Top-level operations of the {_h(p.title)}</b> (model)</p>")
    parts.append(_html_table(REGION_HEAD, _region_rows(p)))
    parts.append("<p><b>Checks</b></p><ul>")
    if s := _fd_line(r):
        parts.append(f"<li>{_h(s)}</li>")
    if not r.findings:
        parts.append("<li>no findings</li>")
    for f in r.findings:
        fix = f"<br/><i>fix:</i> {_h(f.fix)}" if f.fix else ""
        where = f"<code>{_h(f.line)}</code>: " if f.line else ""
        parts.append(f"<li><b>[{_h(f.kind)}]</b> {where}{_h(f.message)}{fix}</li>")
    parts.append("</ul>")
    return "\n".join(parts)


def dot(r: Report, program: str = "gradient") -> str:
    from ..graph import to_dot

    p = r.gradient if program == "gradient" and r.gradient is not None else r.forward
    notes = {}
    for x in p.cost.regions:
        bits = [
            f"{_si(x.cost.flops)}FLOP" if x.cost.flops else "",
            _bytes(x.cost.bytes) if x.cost.bytes else "",
        ]
        if x.kept:
            bits.append(f"keeps {_bytes(x.kept)}")
        bits.append(_time(x.seconds))
        notes[id(x.eqn)] = " · ".join(b for b in bits if b)
    title = f"{p.title} of {r.name}: {_time(p.cost.seconds)} (model), kept {_bytes(p.cost.kept_bytes)}"
    return to_dot(p.ir, title=title, notes=notes)
