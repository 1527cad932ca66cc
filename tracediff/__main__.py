"""`python -m tracediff dump FILE.py:FUNC --arg x=f32[128,10] ...` and `... report ...` (also the
`tracediff` command)."""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np

EXAMPLE = """examples:
  python -m tracediff dump model.py:loss --arg w=f32[10] --arg x=f32[128,10] --grad 0 --stage optimized
  python -m tracediff dump model.py:loss --arg w=f32[10] --arg x=f32[128,10] --grad 0 \\
      --stage optimized --format svg -o grad.svg

An argument is NAME=DTYPE[SHAPE] (f32, f64, i32, i64, bool; shape like [128,10] or []),
filled with standard-normal values (zeros for integers), or NAME=NUMBER for a Python
int/float. --grad differentiates with respect to the listed positional arguments.

--format dot prints a Graphviz digraph of the traced or optimized IR (for --stage all,
both digraphs); svg and png render one stage with Graphviz's `dot` program (install
Graphviz: apt install graphviz, brew install graphviz or conda install graphviz).
The output goes to stdout, or to FILE with -o FILE; png, being binary, is written to
stdout only when stdout is not a terminal (e.g. `... --format png > grad.png`)."""

REPORT_EXAMPLE = """examples:
  python -m tracediff report model.py:loss --arg w=f32[10] --arg x=f32[128,10] --grad 0
  python -m tracediff report model.py:loss --arg w=f32[10] --arg x=f32[128,10] --format dot -o cost.dot

Arguments as for `dump`. The report compiles td.jit(f) and td.jit(td.grad(f)), models and
measures their cost and checks the gradient at these arguments (see td.report)."""

_DTYPES = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64, "bool": np.bool_}


def parse_arg(text: str, seed: int = 0):
    name, _, spec = text.partition("=")
    if not spec:
        raise SystemExit(f"tracediff dump: --arg {text!r} must be NAME=DTYPE[SHAPE] or NAME=NUMBER")
    m = re.fullmatch(r"(\w+)\[([\d,\s]*)\]", spec.strip())
    if m is None:
        try:
            return name, (int(spec) if re.fullmatch(r"-?\d+", spec) else float(spec))
        except ValueError:
            raise SystemExit(
                f"tracediff dump: cannot read --arg {text!r}; expected e.g. x=f32[128,10]"
            ) from None
    dt = _DTYPES.get(m.group(1))
    if dt is None:
        raise SystemExit(f"tracediff dump: unknown dtype {m.group(1)!r} (use one of {', '.join(_DTYPES)})")
    shape = tuple(int(d) for d in m.group(2).replace(" ", "").split(",") if d)
    rng = np.random.default_rng(seed)  # (one seed per argument: equal shapes, other values)
    arr = rng.standard_normal(shape).astype(dt) if np.dtype(dt).kind == "f" else np.zeros(shape, dt)
    return name, arr


def load_function(target: str):
    path, _, func = target.rpartition(":")
    if not path or not func:
        raise SystemExit(f"tracediff dump: expected FILE.py:FUNC, got {target!r}")
    p = Path(path)
    if not p.exists():
        raise SystemExit(f"tracediff dump: no such file {path!r}")
    spec = importlib.util.spec_from_file_location(p.stem, p)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(p.resolve().parent))
    # Registered before it runs, as an import would: dataclasses, pickling and
    # typing look the module up in sys.modules while it executes.
    sys.modules[spec.name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(spec.name, None)
        raise
    fn = getattr(mod, func, None)
    if fn is None:
        raise SystemExit(f"tracediff dump: {path} has no function {func!r}")
    return fn


def main(argv=None) -> int:
    import tracediff as td
    from tracediff.graph import check_format, render

    parser = argparse.ArgumentParser(
        prog="tracediff",
        description="Inspect what tracediff makes of a NumPy function.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, epilog: str, grad_default, targets, formats):
        """A subcommand reading FILE.py:FUNC and its arguments."""
        p = sub.add_parser(
            name, help=help, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        p.add_argument("target", metavar="FILE.py:FUNC")
        p.add_argument("--arg", action="append", default=[], metavar="NAME=DTYPE[SHAPE]")
        p.add_argument(
            "--grad",
            default=grad_default,
            metavar="0,1",
            help="differentiate w.r.t. these arguments"
            + (f" (default {grad_default})" if grad_default else ""),
        )
        p.add_argument("--target", dest="backend", default="cpu", choices=targets)
        p.add_argument("--format", default="text", choices=formats[0], help=formats[1])
        p.add_argument("-o", "--output", default=None, metavar="FILE", help="write to FILE instead of stdout")
        return p

    d = command(
        "dump",
        "print the IR or generated source of a function",
        EXAMPLE,
        None,
        ("cpu", "cuda"),
        (
            ("text", "dot", "svg", "png"),
            "text (default), dot (Graphviz digraph of the IR), svg or png (rendered by Graphviz)",
        ),
    )
    d.add_argument("--stage", default="traced", choices=("python", "traced", "optimized", "source", "all"))
    r = command(
        "report",
        "cost and trust report of a loss function's forward and gradient programs",
        REPORT_EXAMPLE,
        "0",
        ("cpu", "cuda", "interpret"),
        (("text", "html", "dot"), "text (default), html, or dot (the gradient with its costs)"),
    )
    r.add_argument("--no-measure", action="store_true", help="skip the timing and memory measurements")
    ns = parser.parse_args(argv)
    if ns.command == "report":
        return _report(td, ns)
    try:
        check_format(ns.stage, ns.format)
    except ValueError as e:
        raise SystemExit(f"tracediff {e}") from None
    if ns.format == "png" and ns.output is None and sys.stdout.isatty():
        raise SystemExit("tracediff dump: --format png is binary: pass -o FILE or redirect stdout to a file")
    fn = load_function(ns.target)
    args = [parse_arg(a, k)[1] for k, a in enumerate(ns.arg)]
    if ns.grad is not None:
        nums = tuple(int(k) for k in ns.grad.split(",") if k.strip())
        fn = td.grad(fn, argnums=nums[0] if len(nums) == 1 else nums)
    fmt = "dot" if ns.format in ("svg", "png") else ns.format
    out = td.dump(fn, *args, stage=ns.stage, target=ns.backend, format=fmt)
    if fmt != ns.format:
        try:
            out = render(out, ns.format)
        except RuntimeError as e:
            raise SystemExit(f"tracediff dump: {e}") from None
        out = out.decode("utf-8") if ns.format == "svg" else out
    if isinstance(out, str):
        out = out if out.endswith("\n") else out + "\n"
    if ns.output is not None:
        data = out.encode("utf-8") if isinstance(out, str) else out
        Path(ns.output).write_bytes(data)
        print(f"tracediff dump: wrote {ns.output} ({len(data)} bytes)", file=sys.stderr)
    elif isinstance(out, bytes):
        sys.stdout.flush()
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(out)
    return 0


def _report(td, ns) -> int:
    fn = load_function(ns.target)
    args = [parse_arg(a, k)[1] for k, a in enumerate(ns.arg)]
    nums = tuple(int(k) for k in ns.grad.split(",") if k.strip())
    argnums = nums[0] if len(nums) == 1 else nums
    fmt = "dot" if ns.format == "dot" else "text"
    rep = td.report(fn, *args, argnums=argnums, target=ns.backend, format=fmt, measure=not ns.no_measure)
    out = rep._repr_html_() if ns.format == "html" else str(rep)
    out = out if out.endswith("\n") else out + "\n"
    if ns.output is not None:
        Path(ns.output).write_text(out)
        print(f"tracediff report: wrote {ns.output}", file=sys.stderr)
    else:
        sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
