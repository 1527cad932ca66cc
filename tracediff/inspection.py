"""Inspection: the IR of a function at some arguments, and dumps of every stage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import printer  # noqa: F401  (makes str(ir), which the dumps use, the IR's text)
from .core import IR
from .graph import check_format, render, to_dot
from .staging import Transformed, _name


class DumpText(str):
    """A dump's text; shows as text (not a quoted string) at the prompt."""

    def __repr__(self) -> str:
        return str(self)


def _as_transformed(fn: Callable) -> Transformed:
    return fn if isinstance(fn, Transformed) else Transformed(fn, ())


def make_ir(fn: Callable, *args: Any, stage: str = "traced", **kwargs: Any) -> IR:
    """The IR of `fn` at these arguments: `stage` is "traced" or "optimized"."""
    entry = _as_transformed(fn).entry(*args, **kwargs)
    if stage == "traced":
        return entry.traced_ir
    if stage == "optimized":
        return entry.ir
    raise ValueError(f"make_ir: stage must be 'traced' or 'optimized', got {stage!r}")


def dump(
    fn: Callable,
    *args: Any,
    stage: str = "traced",
    target: str | None = None,
    format: str = "text",
    **kwargs: Any,
) -> DumpText | str | bytes:
    """One stage of `fn` at these arguments: "python" (the function's Python after
    control-flow conversion), "traced", "optimized", "source" or "all".

    `format="text"` (the default) gives the text of the stage. `format="dot"`
    gives a Graphviz digraph of the "traced" or "optimized" program; for "all",
    the traced then the optimized digraph, one after the other (the generated
    source has no picture). "svg" (text) and "png" (bytes) render the digraph
    of one stage with Graphviz's `dot` program, which must be installed.
    """
    check_format(stage, format)
    t = _as_transformed(fn)
    entry = t.entry(*args, **kwargs)
    if format != "text":
        name = _name(t.base)
        for kind, _, _ in t.chain:
            if kind != "identity":
                name = f"{kind}({name})"
        irs = [("traced", entry.traced_ir), ("optimized", entry.ir)]
        dot = "\n".join(to_dot(ir, title=f"{name}: {s}") for s, ir in irs if stage in (s, "all"))
        if format == "dot":
            return DumpText(dot)
        out = render(dot, format)
        return out.decode("utf-8") if format == "svg" else out
    parts = []
    if stage in ("python", "all"):
        from .pyconv import converted_source

        src = converted_source(t.base)
        if src is not None or stage == "python":
            parts.append(
                ("python", src or f"# {_name(t.base)} was traced as written (its source is not readable)")
            )
    if stage in ("traced", "all"):
        parts.append(("traced", str(entry.traced_ir)))
    if stage in ("optimized", "all"):
        parts.append(("optimized", str(entry.ir)))
    if stage in ("source", "all"):
        tgt = target or (t.target if t.target != "interpret" else "cpu")
        try:
            from .backend import source_of

            opts = entry.options if tgt == t.target else {}
            parts.append(("source", source_of(entry.ir, tgt, **opts)))
        except ImportError:
            if stage == "source":
                raise NotImplementedError(
                    "dump(stage='source'): the compiled backends are not built yet"
                ) from None
    if not parts:
        raise ValueError(
            f"dump: stage must be 'python', 'traced', 'optimized', 'source' or 'all', got {stage!r}"
        )
    if len(parts) == 1:
        return DumpText(parts[0][1])
    return DumpText("\n\n".join(f"== {name} ==\n{txt}" for name, txt in parts))
