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
import inspect
import os
import sys
import textwrap
import types
import weakref
from collections.abc import Callable

import numpy as np

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_SKIP_DIRS = tuple(
    os.path.dirname(os.path.abspath(m.__file__))
    for m in (np, os, ast)  # NumPy, the standard library
) + (_PKG_DIR,)
_MUTATORS = {"append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault", "popitem", "sort",
             "reverse", "add", "discard"}  # fmt: skip
_NO_CONVERT_CALLS = {"super", "locals", "globals", "vars", "eval", "exec", "print", "isinstance", "len",
                     "range", "enumerate", "zip", "type", "getattr", "hasattr", "setattr"}  # fmt: skip
_PREFIX = "_td_"

_converted: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
SHOW_SOURCE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # user function -> converted source


class ConversionError(Exception):
    """A construct the converter does not handle: the function is traced unconverted."""


# --- analysis ---------------------------------------------------------------------------


class _Assigned(ast.NodeVisitor):
    """Local names a block assigns (not inside nested functions, classes or comprehensions),
    the names of arrays it stores into, and of lists/dicts it changes by method."""

    def __init__(self):
        self.names: list[str] = []

    def add(self, n: str):
        if n not in self.names:
            self.names.append(n)

    def visit_Name(self, node):
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.add(node.id)

    def visit_Subscript(self, node):
        if isinstance(node.ctx, ast.Store):
            base = node.value
            while isinstance(base, ast.Subscript):
                base = base.value
            if isinstance(base, ast.Name):
                self.add(base.id)
        self.generic_visit(node)

    def visit_Call(self, node):
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr in _MUTATORS and isinstance(f.value, ast.Name):
            self.add(f.value.id)
        if (
            isinstance(f, ast.Attribute)
            and f.attr == "at"
            and node.args
            and isinstance(node.args[0], ast.Name)
        ):
            self.add(node.args[0].id)
        for kw in node.keywords:
            if kw.arg == "out" and isinstance(kw.value, ast.Name):
                self.add(kw.value.id)
        self.generic_visit(node)

    def visit_FunctionDef(self, node):
        self.add(node.name)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Lambda(self, node):
        pass

    def visit_ListComp(self, node):
        pass

    visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_ListComp

    def visit_Import(self, node):
        for a in node.names:
            self.add((a.asname or a.name).split(".")[0])

    visit_ImportFrom = visit_Import


def assigned(stmts) -> list[str]:
    v = _Assigned()
    for s in stmts:
        v.visit(s)
    return [n for n in v.names if not n.startswith(_PREFIX) or n.startswith(("_td_brk", "_td_cnt"))]


def _walk_shallow(node):
    """Nodes under `node`, not entering nested functions, classes or lambdas."""
    todo = list(ast.iter_child_nodes(node))
    while todo:
        n = todo.pop()
        yield n
        if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(n))


def _contains(stmts, kinds, through_loops=True) -> bool:
    for s in stmts:
        if isinstance(s, kinds):
            return True
        for n in _walk_shallow(s):
            if isinstance(n, kinds):
                if through_loops or not _inside_loop(s, n):
                    return True
    return False


def _inside_loop(top, target) -> bool:
    """Is `target` inside a loop nested in `top` (a break there is that loop's)?"""

    def find(node, in_loop):
        if node is target:
            return in_loop
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            return None
        for c in ast.iter_child_nodes(node):
            r = find(c, in_loop or (isinstance(node, (ast.For, ast.While)) and node is not top))
            if r is not None:
                return r
        return None

    return bool(find(top, isinstance(top, (ast.For, ast.While)) and top is not top))


def _jumps(stmts) -> bool:
    """A break/continue of the current loop somewhere in `stmts`."""
    for s in stmts:
        if isinstance(s, (ast.Break, ast.Continue)):
            return True
        if isinstance(s, (ast.For, ast.While, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for child in ast.iter_child_nodes(s):
            if isinstance(child, ast.stmt) and _jumps([child]):
                return True
    return False


def _always_returns(stmts) -> bool:
    if not stmts:
        return False
    last = stmts[-1]
    if isinstance(last, (ast.Return, ast.Raise)):
        return True
    if isinstance(last, ast.If):
        return _always_returns(last.body) and _always_returns(last.orelse)
    return False


def _has_return(stmts) -> bool:
    return _contains(stmts, (ast.Return,))


# --- building nodes ---------------------------------------------------------------------


def _name(n: str, ctx=None):
    return ast.Name(id=n, ctx=ctx or ast.Load())


def _helper(attr: str):
    return ast.Attribute(value=_name("_td_"), attr=attr, ctx=ast.Load())


def _call(func, args, keywords=()):
    return ast.Call(func=func, args=list(args), keywords=list(keywords))


def _const(v):
    return ast.Constant(value=v)


def _thunk(expr):
    return ast.Lambda(
        args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]), body=expr
    )


def _fn(name: str, params: list[str], body: list) -> ast.FunctionDef:
    args = ast.arguments(
        posonlyargs=[], args=[ast.arg(arg=p) for p in params], kwonlyargs=[], kw_defaults=[], defaults=[]
    )
    kw = {"type_params": []} if sys.version_info >= (3, 12) else {}
    return ast.FunctionDef(
        name=name, args=args, body=body or [ast.Pass()], decorator_list=[], returns=None, **kw
    )


def _assign(target: str, value):
    return ast.Assign(targets=[_name(target, ast.Store())], value=value)


# --- the transformer --------------------------------------------------------------------


class _Converter(ast.NodeTransformer):
    def __init__(self, declared_global: set[str], declared_nonlocal: set[str]):
        self.n = 0
        self.globals = declared_global
        self.nonlocals = declared_nonlocal
        self.state_names: set[str] = set()  # every name some region changes (declared in the function)

    def fresh(self) -> int:
        self.n += 1
        return self.n

    # --- scopes --------------------------------------------------------------------
    def _decls(self, names: list[str]) -> list:
        out = []
        g = [n for n in names if n in self.globals]
        nl = [n for n in names if n not in self.globals]
        if g:
            out.append(ast.Global(names=g))
        if nl:
            out.append(ast.Nonlocal(names=nl))
        self.state_names.update(n for n in nl if n not in self.nonlocals)
        return out

    def _state_fns(self, k: int, names: list[str]) -> list:
        get = _fn(
            f"_td_get_{k}",
            [],
            [
                ast.Return(
                    value=ast.Tuple(
                        elts=[_call(_helper("load"), [_thunk(_name(n)), _const(n)]) for n in names],
                        ctx=ast.Load(),
                    )
                )
            ],
        )
        setb = self._decls(names)
        if names:
            setb.append(
                ast.Assign(
                    targets=[ast.Tuple(elts=[_name(n, ast.Store()) for n in names], ctx=ast.Store())],
                    value=_name("_td_v"),
                )
            )
        return [get, _fn(f"_td_set_{k}", ["_td_v"], setb)]

    # --- statements ----------------------------------------------------------------
    def block(self, stmts: list) -> list:
        out = []
        for s in stmts:
            r = self.visit(s)
            if r is None:
                continue
            out.extend(r if isinstance(r, list) else [r])
        return out

    def visit_FunctionDef(self, node):
        return node  # converted lazily when called

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Lambda(self, node):
        return node

    def visit_If(self, node: ast.If):
        if _jumps([node]) or (_has_return([node]) and not _always_returns([node])):
            raise ConversionError("a break/continue or return the converter did not lower")
        returns = _always_returns([node])
        names = assigned(node.body + node.orelse)
        k = self.fresh()
        test = self.visit(node.test)
        body = self._decls(names) + self.block(node.body)
        orelse = self._decls(names) + self.block(node.orelse)
        call = _call(
            _helper("if_stmt"),
            [test, _name(f"_td_true_{k}"), _name(f"_td_false_{k}"), _name(f"_td_get_{k}"),
             _name(f"_td_set_{k}"), ast.Tuple(elts=[_const(n) for n in names], ctx=ast.Load())],
        )  # fmt: skip
        fns = [_fn(f"_td_true_{k}", [], body), _fn(f"_td_false_{k}", [], orelse)] + self._state_fns(k, names)
        last = ast.Return(value=call) if returns else ast.Expr(value=call)
        return [_at(s, node) for s in fns + [last]]

    def _loop_flags(self, node, k):
        """Lower break/continue of this loop into flags; returns (body, brk, cnt)."""
        has_brk = _contains_jump(node.body, ast.Break)
        has_cnt = _contains_jump(node.body, ast.Continue)
        brk = f"_td_brk_{k}" if has_brk else None
        cnt = f"_td_cnt_{k}" if has_cnt else None
        body = _lower_jumps(node.body, brk, cnt) if (brk or cnt) else node.body
        if brk and isinstance(node, ast.For):  # iterations after a traced break do nothing
            guard = ast.UnaryOp(op=ast.Not(), operand=_name(brk))
            body = [ast.copy_location(ast.If(test=guard, body=body, orelse=[]), node)]
        if cnt:
            body = [_assign(cnt, _const(False))] + body
        return body, brk, cnt

    def visit_While(self, node: ast.While):
        if node.orelse or _has_return(node.body):
            return self._plain_loop(node)
        k = self.fresh()
        body, brk, cnt = self._loop_flags(node, k)
        names = assigned(body)
        for f in (brk, cnt):
            if f and f not in names:
                names.append(f)
        test = self.visit(node.test)
        if brk:
            test = _call(_helper("and_"), [_thunk(_call(_helper("not_"), [_name(brk)])), _thunk(test)])
        pre = [_assign(f, _const(False)) for f in (brk, cnt) if f]
        fns = [
            _fn(f"_td_test_{k}", [], [ast.Return(value=test)]),
            _fn(f"_td_body_{k}", [], self._decls(names) + self.block(body)),
        ] + self._state_fns(k, names)
        call = _call(
            _helper("while_stmt"),
            [_name(f"_td_test_{k}"), _name(f"_td_body_{k}"), _name(f"_td_get_{k}"), _name(f"_td_set_{k}"),
             ast.Tuple(elts=[_const(n) for n in names], ctx=ast.Load())],
        )  # fmt: skip
        return [_at(s, node) for s in pre + fns + [ast.Expr(value=call)]]

    def visit_For(self, node: ast.For):
        if node.orelse or _has_return(node.body):
            return self._plain_loop(node)
        k = self.fresh()
        body, brk, cnt = self._loop_flags(node, k)
        target_names = assigned([ast.Assign(targets=[node.target], value=_const(None))])
        body = [ast.copy_location(ast.Assign(targets=[node.target], value=_name(f"_td_it_{k}")), node)] + body
        names = assigned(body)
        for f in (brk, cnt):
            if f and f not in names:
                names.append(f)
        uses = any(
            isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in target_names
            for s in node.body
            for n in ast.walk(s)
        )
        it = self.visit(node.iter)
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id in ("enumerate", "zip"):
            it = _call(_helper("Enumerate" if it.func.id == "enumerate" else "Zip"), it.args, it.keywords)
        pre = [_assign(f, _const(False)) for f in (brk, cnt) if f]
        fns = [_fn(f"_td_body_{k}", [f"_td_it_{k}"], self._decls(names) + self.block(body))]
        fns += self._state_fns(k, names)
        kws = [ast.keyword(arg="uses_target", value=_const(uses))]
        if brk:
            kws.append(ast.keyword(arg="broke", value=_thunk(_name(brk))))
        call = _call(
            _helper("for_stmt"),
            [it, _name(f"_td_body_{k}"), _name(f"_td_get_{k}"), _name(f"_td_set_{k}"),
             ast.Tuple(elts=[_const(n) for n in names], ctx=ast.Load())],
            kws,
        )  # fmt: skip
        return [_at(s, node) for s in pre + fns + [ast.Expr(value=call)]]

    def _plain_loop(self, node):
        """A loop left as Python (an `else:` clause, or a `return` inside): its body is
        converted, but not `if`s holding its break/continue/return."""
        node.body = self._plain_block(node.body)
        node.orelse = self._plain_block(node.orelse)
        if isinstance(node, ast.While):
            node.test = self.visit(node.test)
        else:
            node.iter = self.visit(node.iter)
        return node

    def _plain_block(self, stmts):
        out = []
        for s in stmts:
            if isinstance(s, ast.If) and (_jumps([s]) or _has_return([s])):
                s.test = self.visit(s.test)
                s.body = self._plain_block(s.body)
                s.orelse = self._plain_block(s.orelse)
                out.append(s)
            elif isinstance(s, (ast.For, ast.While)) and (s.orelse or _has_return(s.body)):
                out.append(self._plain_loop(s))
            else:
                r = self.visit(s)
                out.extend(r if isinstance(r, list) else [r])
        return out

    def visit_Assign(self, node: ast.Assign):
        node.value = self.visit(node.value)
        if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Subscript):
            node.targets = [self.visit(t) for t in node.targets]
            return node
        t = node.targets[0]
        obj, idx = self.visit(t.value), self.visit(t.slice)
        if isinstance(t.value, ast.Name):
            new = _assign(t.value.id, _call(_helper("setitem"), [obj, idx, node.value]))
        else:
            new = ast.Expr(value=_call(_helper("setitem"), [obj, idx, node.value]))
        return ast.copy_location(new, node)

    def visit_AugAssign(self, node: ast.AugAssign):
        op = type(node.op).__name__
        value = self.visit(node.value)
        t = node.target
        if isinstance(t, ast.Name):
            new = _assign(t.id, _call(_helper("aug"), [_name(t.id), _const(op), value]))
            return ast.copy_location(new, node)
        if isinstance(t, ast.Subscript):
            obj, idx = self.visit(t.value), self.visit(t.slice)
            store = _call(_helper("aug_item"), [obj, idx, _const(op), value])
            new = _assign(t.value.id, store) if isinstance(t.value, ast.Name) else ast.Expr(value=store)
            return ast.copy_location(new, node)
        node.value = value
        return node

    def visit_Expr(self, node: ast.Expr):
        v = node.value
        if isinstance(v, ast.Call):
            f = v.func
            # np.add.at(x, ...) and f(..., out=x): x (a local name) is rebound to the result
            if isinstance(f, ast.Attribute) and f.attr == "at" and v.args and isinstance(v.args[0], ast.Name):
                target = v.args[0].id
                call = _call(_helper("ufunc_at"), [self.visit(f.value)] + [self.visit(a) for a in v.args], [])
                return ast.copy_location(_assign(target, call), node)
            outs = [kw for kw in v.keywords if kw.arg == "out" and isinstance(kw.value, ast.Name)]
            if outs:
                target = outs[0].value.id
                inner = self.visit(v)
                call = _call(_helper("call_out"), [_thunk_out(inner, target), _name(target)])
                return ast.copy_location(_assign(target, call), node)
        node.value = self.visit(v)
        return node

    # --- expressions ---------------------------------------------------------------
    def visit_BoolOp(self, node: ast.BoolOp):
        vals = [self.visit(v) for v in node.values]
        fn = "and_" if isinstance(node.op, ast.And) else "or_"
        expr = vals[-1]
        for v in reversed(vals[:-1]):
            expr = _call(_helper(fn), [_thunk(v), _thunk(expr)])
        return ast.copy_location(expr, node)

    def visit_UnaryOp(self, node: ast.UnaryOp):
        node.operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return ast.copy_location(_call(_helper("not_"), [node.operand]), node)
        return node

    def visit_IfExp(self, node: ast.IfExp):
        test, body, orelse = self.visit(node.test), self.visit(node.body), self.visit(node.orelse)
        return ast.copy_location(_call(_helper("if_exp"), [test, _thunk(body), _thunk(orelse)]), node)

    def visit_Call(self, node: ast.Call):
        node.args = [self.visit(a) for a in node.args]
        node.keywords = [self.visit(k) for k in node.keywords]
        f = node.func
        if isinstance(f, ast.Name) and f.id in _NO_CONVERT_CALLS:
            return node
        # the callee is converted, the call stays in the user's frame (sys._getframe, tracebacks)
        node.func = ast.copy_location(_call(_helper("fn"), [self.visit(f)]), f)
        return node

    def visit_NamedExpr(self, node):
        raise ConversionError("assignment expressions (:=)")

    def visit_Yield(self, node):
        raise ConversionError("generators")

    visit_YieldFrom = visit_Await = visit_Yield


def _at(new, node):
    """`new` placed at the start of the user's statement `node` (one line)."""
    new.lineno = new.end_lineno = node.lineno
    new.col_offset = new.end_col_offset = node.col_offset
    return new


def _thunk_out(call: ast.Call, target: str):
    """lambda _td_out: call, with out=<target> replaced by out=_td_out."""
    for kw in call.keywords:
        if kw.arg == "out" and isinstance(kw.value, ast.Name) and kw.value.id == target:
            kw.value = _name("_td_out")
    return ast.Lambda(
        args=ast.arguments(
            posonlyargs=[], args=[ast.arg(arg="_td_out")], kwonlyargs=[], kw_defaults=[], defaults=[]
        ),
        body=call,
    )


def _contains_jump(stmts, kind) -> bool:
    for s in stmts:
        if isinstance(s, kind):
            return True
        if isinstance(s, (ast.For, ast.While, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for child in ast.iter_child_nodes(s):
            if isinstance(child, ast.stmt) and _contains_jump([child], kind):
                return True
    return False


def _lower_jumps(stmts, brk, cnt) -> list:
    """Replace this loop's break/continue by setting flags; guard what follows."""
    out = []
    for i, s in enumerate(stmts):
        if isinstance(s, ast.Break):
            out.append(ast.copy_location(_assign(brk, _const(True)), s))
            return out
        if isinstance(s, ast.Continue):
            out.append(ast.copy_location(_assign(cnt, _const(True)), s))
            return out
        if _jumps([s]):
            if not isinstance(s, ast.If):
                raise ConversionError("break/continue inside with/try")
            s.body = _lower_jumps(s.body, brk, cnt)
            s.orelse = _lower_jumps(s.orelse, brk, cnt)
            out.append(s)
            rest = stmts[i + 1 :]
            if rest:
                flags = [_name(f) for f in (brk, cnt) if f]
                test = ast.UnaryOp(
                    op=ast.Not(),
                    operand=flags[0] if len(flags) == 1 else ast.BoolOp(op=ast.Or(), values=flags),
                )
                out.append(
                    ast.copy_location(ast.If(test=test, body=_lower_jumps(rest, brk, cnt), orelse=[]), s)
                )
            return out
        out.append(s)
    return out


def _lift_returns(stmts: list) -> list:
    """Make every `if` holding a return return on all its paths, moving the
    statements after it into the branches that fall through."""
    out = []
    for i, s in enumerate(stmts):
        if (
            isinstance(s, ast.If)
            and _has_return([s])
            and not _contains(s.body + s.orelse, (ast.For, ast.While))
        ):
            rest = stmts[i + 1 :]
            if not _always_returns(s.body):
                s.body = s.body + [_copy(r) for r in rest]
            if not _always_returns(s.orelse):
                s.orelse = s.orelse + [_copy(r) for r in rest]
            s.body = _lift_returns(s.body)
            s.orelse = _lift_returns(s.orelse)
            for br in (s.body, s.orelse):
                if not _always_returns(br):
                    br.append(ast.copy_location(ast.Return(value=_const(None)), s))
            out.append(s)
            return out
        out.append(s)
    return out


def _fix_locations(node, lineno: int, col: int) -> None:
    """Generated nodes take their parent's line, on one line: a call's position then
    names the user's statement (ast.fix_missing_locations would give a generated call
    the parent's whole span, and CPython reports a multi-line callee at its last line)."""
    if "lineno" in node._attributes:
        if getattr(node, "lineno", None) is None:
            node.lineno, node.end_lineno = lineno, lineno
            node.col_offset, node.end_col_offset = col, col
        else:
            lineno, col = node.lineno, node.col_offset
            if getattr(node, "end_lineno", None) is None:
                node.end_lineno, node.end_col_offset = lineno, col
    for child in ast.iter_child_nodes(node):
        _fix_locations(child, lineno, col)


def _copy(node):
    import copy

    return copy.deepcopy(node)


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
    """The converted function (cached), or `fn` itself when it cannot be converted."""
    if isinstance(fn, types.MethodType):
        f = convert(fn.__func__)
        return fn if f is fn.__func__ else types.MethodType(f, fn.__self__)
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
        tree = ast.parse(src)
    except SyntaxError:
        tree, wrap = ast.parse("def _td_wrap_():\n" + textwrap.indent(src, "    ")), 1
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
    if len(found) != 1:
        raise ConversionError("lambda not found by position")
    lam = found[0]
    ast.increment_lineno(lam, first - 1 - wrap)
    node = _fn("_td_lambda_", [], [ast.copy_location(ast.Return(value=lam.body), lam.body)])
    node.args = lam.args
    node.args.defaults, node.args.kw_defaults = [], [None] * len(lam.args.kwonlyargs)
    return ast.copy_location(node, lam)


def _convert(fn: types.FunctionType) -> Callable:
    if fn.__name__ == "<lambda>":
        node = _lambda_def(fn)
        tree = ast.Module(body=[node], type_ignores=[])
    else:
        src = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(src)
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
        node.body = _lift_returns(node.body)
    conv = _Converter(glob, nonloc)
    body = conv.block(node.body)
    declare = sorted(conv.state_names - params - glob - nonloc)
    if declare:  # bind every changed name in the function, so `nonlocal` finds it
        targets = [_name(n, ast.Store()) for n in declare]
        body = [
            ast.If(test=_helper("NEVER"), body=[ast.Assign(targets=targets, value=_const(None))], orelse=[])
        ] + body
    node.body = body
    free = list(fn.__code__.co_freevars)
    factory = _fn("_td_factory_", ["_td_"] + free, [node, ast.Return(value=_name(node.name))])
    mod = ast.Module(body=[factory], type_ignores=[])
    _fix_locations(mod, 1, 0)
    code = compile(mod, fn.__code__.co_filename, "exec")
    fcode = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    inner = next(c for c in fcode.co_consts if isinstance(c, types.CodeType) and c.co_name == node.name)
    from . import control

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
