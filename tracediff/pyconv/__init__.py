"""Source transformation: Python control flow and in-place stores made traceable.

`convert(fn)` reads a user function's source, rewrites its syntax tree (as
AutoGraph and Tangent do) and compiles it back with the user's file name and
line numbers, so tracebacks and error messages point at the user's lines:

- `if`/`elif`/`else` -> `_td_.if_stmt(test, true_fn, false_fn, get, set, names)`,
  the branches nested functions that change the enclosing locals through
  `nonlocal`; `get`/`set` read and write those locals (the branch state);
- `while` -> `_td_.while_stmt(test_fn, body_fn, ...)`, `for` ->
  `_td_.for_stmt(iterable, body_fn, ...)`; `break`/`continue` become flags that
  guard the rest of the body;
- `return` inside `if`s is lifted so that both branches return (the code
  after the `if` moves into the branch that falls through);
- `a and b`, `a or b`, `not a`, `x if c else y` -> `_td_.and_`/`or_`/`not_`/`if_exp`;
- `x[i] = v`, `x op= v`, `x[i] op= v`, `np.add.at(x, ...)` and `f(..., out=x)` with
  `x` a local name -> calls that return the updated array, rebound to `x` (a
  NumPy array that receives traced values becomes traced from there on);
- every callee `f(...)` -> `_td_.fn(f)(...)`, which converts user functions lazily.

The `_td_` helpers (module `control`) run plain Python when conditions are
concrete, so a converted function does what the original did; only traced
conditions build regions. A function that cannot be converted (no source, a
lambda, a construct not handled) is traced as it is.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import linecache
import os
import textwrap
import threading
import types
import weakref
from collections.abc import Callable

import numpy as np

from ..control.arrays import traced_form
from .analysis import (
    ConversionError,
    _const,
    _fn,
    _has_return,
    _helper,
    _lift_returns,
    _loop_returns,
    _name,
    _walk_shallow,
    assigned,
)
from .rewrite import _Converter, _fix_locations

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tracediff/
_SKIP_DIRS = tuple(
    os.path.dirname(os.path.abspath(m.__file__))
    for m in (np, os, ast)  # NumPy, the standard library
) + (_PKG_DIR,)

_converted: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
SHOW_SOURCE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # user function -> converted source


# --- converting a function --------------------------------------------------------------


ENABLED = os.environ.get("TRACEDIFF_CONVERT", "1") != "0"


def convertible(fn) -> bool:
    if not ENABLED or not isinstance(fn, types.FunctionType) or getattr(fn, "__td_converted__", False):
        return False
    file = os.path.abspath(fn.__code__.co_filename)
    if file.startswith(_SKIP_DIRS) or "site-packages" in file or fn.__code__.co_filename.startswith("<"):
        return False
    return True


def convert(fn: Callable) -> Callable:
    """The converted function (cached), or `fn` itself when it cannot be converted.
    A library function NumPy cannot dispatch (`np.array`, `scipy.stats.norm.logpdf`)
    becomes its tracer-aware form."""
    form = traced_form(fn)
    if form is not None:
        return form
    if isinstance(fn, types.MethodType):
        f = convert(fn.__func__)
        return fn if f is fn.__func__ else types.MethodType(f, fn.__self__)
    if isinstance(fn, functools.partial):
        f = convert(fn.func)
        return fn if f is fn.func else functools.partial(f, *fn.args, **fn.keywords)
    call = type(fn).__call__ if callable(fn) else None
    if isinstance(call, types.FunctionType) and not isinstance(fn, type):  # a callable object (a layer)
        f = convert(call)
        return fn if f is call else types.MethodType(f, fn)
    if not convertible(fn):
        return fn
    hit = _converted.get(fn)
    if hit is not None:
        return hit
    try:
        new = _convert(fn)
    except (ConversionError, OSError, TypeError, SyntaxError, IndentationError):
        new = fn
    _converted[fn] = new
    return new


# CPython (3.11 here) counts the recursion depth of its AST <-> object
# conversion in interpreter-wide state: ast.parse or compile(tree) in two
# threads at once can fail with "SystemError: AST constructor recursion depth
# mismatch" (seen in tests/test_concurrency.py; cf. python/cpython#106905).
# Ours take turns.
_AST_LOCK = threading.Lock()


def _parse(src: str) -> ast.Module:
    with _AST_LOCK:
        return ast.parse(src)


def _lambda_def(fn: types.FunctionType) -> ast.FunctionDef:
    """The `def` equivalent of a lambda, found in its source line(s) by position."""
    lines, first = inspect.getsourcelines(fn)
    raw = "".join(lines)
    src = textwrap.dedent(raw)
    shift = len(lines[0]) - len(lines[0].lstrip()) if src != raw else 0
    if src.rstrip().endswith(":"):  # a lambda in the header of a for/if/with: complete it
        src = src.rstrip() + " pass\n"
    wrap = 0
    try:
        tree = _parse(src)
    except SyntaxError:
        try:
            tree, wrap = _parse("def _td_wrap_():\n" + textwrap.indent(src, "    ")), 1
        except SyntaxError:  # not the first line of its statement: `{"f": 1,\n "g": lambda v: ...}`
            tree = None
    code = fn.__code__
    found = _lambdas_at(fn, tree, first, shift, wrap) if tree is not None else []
    if len(found) != 1:  # look in the whole file
        first, shift, wrap = 1, 0, 0
        found = _lambdas_at(fn, _parse("".join(linecache.getlines(code.co_filename))), first, shift, wrap)
    if len(found) != 1:
        raise ConversionError("lambda not found by position")
    lam = found[0]
    ast.increment_lineno(lam, first - 1 - wrap)
    for n in ast.walk(lam):  # the columns of the file (a lambda inside is found by them)
        if getattr(n, "col_offset", None) is not None:
            n.col_offset += shift - 4 * wrap
            n.end_col_offset += shift - 4 * wrap
    node = _fn("_td_lambda_", [], [ast.copy_location(ast.Return(value=lam.body), lam.body)])
    node.args = lam.args
    node.args.defaults, node.args.kw_defaults = [], [None] * len(lam.args.kwonlyargs)
    return ast.copy_location(node, lam)


def _lambdas_at(fn: types.FunctionType, tree: ast.AST, first: int, shift: int, wrap: int) -> list:
    """The lambdas in `tree` (source lines from line `first`, dedented by `shift`,
    `wrap`ped in a def or not) with fn's parameters whose body starts where fn's does."""
    code = fn.__code__
    names = list(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
    # where the body's instructions start (RESUME and friends sit at column 0)
    cols = {(p[0], p[2]) for p in code.co_positions() if p[0] is not None and p[2]}
    found = []
    for n in ast.walk(tree):
        if not isinstance(n, ast.Lambda):
            continue
        a = n.args
        if [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs] != names:
            continue
        lo = (n.body.lineno - wrap + first - 1, n.body.col_offset - 4 * wrap + shift)
        if not cols or min(cols) == lo:
            found.append(n)
    return found


def _convert(fn: types.FunctionType) -> Callable:
    if fn.__name__ == "<lambda>":
        node = _lambda_def(fn)
        tree = ast.Module(body=[node], type_ignores=[])
    else:
        src = textwrap.dedent(inspect.getsource(fn))
        tree = _parse(src)
        node = tree.body[0]
        if not isinstance(node, ast.FunctionDef) or node.name != fn.__name__:
            raise ConversionError("not a plain def")
        ast.increment_lineno(tree, fn.__code__.co_firstlineno - 1)
    node.decorator_list = []
    glob, nonloc = set(), set()
    for n in _walk_shallow(node):
        if isinstance(n, ast.Global):
            glob.update(n.names)
        elif isinstance(n, ast.Nonlocal):
            nonloc.update(n.names)
    params = {a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs}
    params |= {a.arg for a in (node.args.vararg, node.args.kwarg) if a is not None}
    if _has_return(node.body):
        node.body = _lift_returns(_loop_returns(node.body, itertools.count().__next__))
    # the function's variables: what it binds, its parameters, its declared and free names
    known = set(assigned(node.body, set())) | params | glob | nonloc | set(fn.__code__.co_freevars)
    conv = _Converter(glob, nonloc, known)
    body = conv.block(node.body)
    declare = sorted(conv.state_names - params - glob - nonloc)
    if declare:  # bind every changed name in the function, so `nonlocal` finds it
        targets = [_name(n, ast.Store()) for n in declare]
        body = [
            ast.If(test=_helper("NEVER"), body=[ast.Assign(targets=targets, value=_const(None))], orelse=[])
        ] + body
    node.body = body
    free = list(fn.__code__.co_freevars)
    # defined in the factory under another name: under its own, a recursive call of a
    # module-level function would read the factory's local, not the global name
    name = node.name
    node.name = "_td_converted_"
    factory = _fn("_td_factory_", ["_td_"] + free, [node, ast.Return(value=_name(node.name))])
    mod = ast.Module(body=[factory], type_ignores=[])
    _fix_locations(mod, 1, 0)
    with _AST_LOCK:
        code = compile(mod, fn.__code__.co_filename, "exec")
    fcode = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    inner = next(c for c in fcode.co_consts if isinstance(c, types.CodeType) and c.co_name == node.name)
    inner = inner.replace(co_name=name, co_qualname=fn.__qualname__)
    node.name = name
    from .. import control

    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or ()))
    closure = tuple(types.CellType(control) if n == "_td_" else cells[n] for n in inner.co_freevars)
    new = types.FunctionType(inner, fn.__globals__, fn.__name__, fn.__defaults__, closure)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__qualname__ = fn.__qualname__
    new.__module__ = fn.__module__
    new.__doc__ = fn.__doc__
    new.__td_converted__ = True
    SHOW_SOURCE[fn] = ast.unparse(node)
    return new


def converted_source(fn: Callable) -> str | None:
    """The Python that runs in place of `fn` while tracing, and that of the user
    functions it calls by name (converted on their first call), or None."""
    fn = getattr(fn, "__func__", fn)
    todo, seen, parts = [fn], set(), []
    while todo:
        f = todo.pop(0)
        if id(f) in seen or f not in SHOW_SOURCE:
            continue
        seen.add(id(f))
        src = SHOW_SOURCE[f]
        parts.append(
            f"# {f.__qualname__} ({os.path.basename(f.__code__.co_filename)}:{f.__code__.co_firstlineno})\n{src}"
        )
        cells = {}
        for n, c in zip(f.__code__.co_freevars, f.__closure__ or ()):
            try:
                cells[n] = c.cell_contents
            except ValueError:  # a cell not filled yet
                pass
        for name in dict.fromkeys(n.id for n in ast.walk(_parse(src)) if isinstance(n, ast.Name)):
            g = cells.get(name, f.__globals__.get(name))
            if isinstance(g, types.FunctionType) and g in SHOW_SOURCE:
                todo.append(g)
    return "\n\n".join(parts) if parts else None


def _install() -> None:
    """Converted code calls `control.fn(f)` on each callee: it converts through us."""
    from ..control import stores

    stores.CONVERT[0] = convert


_install()
