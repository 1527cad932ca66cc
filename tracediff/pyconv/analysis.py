"""Reading a function's syntax tree: which names a block assigns, where its
returns, breaks and continues are, and the rewrites that lower them (flags for
break/continue, returns lifted out of `if`s)."""

from __future__ import annotations

import ast
import sys

_MUTATORS = {"append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault", "popitem", "sort",
             "reverse", "add", "discard"}  # fmt: skip
_NO_CONVERT_CALLS = {"super", "locals", "globals", "vars", "eval", "exec", "print", "isinstance", "len",
                     "range", "enumerate", "zip", "type", "getattr", "hasattr", "setattr"}  # fmt: skip
_PREFIX = "_td_"


class ConversionError(Exception):
    """A construct the converter does not handle: the function is traced unconverted."""


# --- analysis ---------------------------------------------------------------------------


class _Assigned(ast.NodeVisitor):
    """Local names a block assigns (not inside nested functions, classes or comprehensions),
    the names of arrays it stores into, and of lists/dicts it changes by method."""

    def __init__(self, known: set[str] | None = None):
        self.names: list[str] = []
        # the function's own variables (None: any name): `np.add(...)` or `np.sort(...)`
        # is no method changing a local `np`, which a region would then carry
        self.known = known

    def add(self, n: str):
        if n not in self.names:
            self.names.append(n)

    def add_changed(self, n: str):
        """A name whose object a call changes (a method, `np.add.at(x, ...)`, `out=x`)."""
        if self.known is None or n in self.known:
            self.add(n)

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
            self.add_changed(f.value.id)
        if (
            isinstance(f, ast.Attribute)
            and f.attr == "at"
            and node.args
            and isinstance(node.args[0], ast.Name)
        ):
            self.add_changed(node.args[0].id)
        for kw in node.keywords:
            if kw.arg == "out" and isinstance(kw.value, ast.Name):
                self.add_changed(kw.value.id)
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


def assigned(stmts, known: set[str] | None = None) -> list[str]:
    """The names `stmts` bind or change; a changed object counts only when its name
    is in `known` (the function's variables), when given."""
    v = _Assigned(known)
    for s in stmts:
        v.visit(s)
    return [
        n
        for n in v.names
        if not n.startswith(_PREFIX) or n.startswith(("_td_brk", "_td_cnt", "_td_rf", "_td_rv"))
    ]


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


def _loop_returns(stmts: list, fresh) -> list:
    """Lower a `return` inside a loop: it stores its value, sets a flag and breaks;
    after the loop, `if flag: return value` (which `_lift_returns` then lifts).
    Innermost loops first; a loop with an `else` or with a return this cannot move
    (inside a `with`/`try`) stays as it is. `fresh()` numbers the names."""
    out = []
    for s in stmts:
        if isinstance(s, ast.If):
            s.body, s.orelse = _loop_returns(s.body, fresh), _loop_returns(s.orelse, fresh)
        elif isinstance(s, (ast.For, ast.While)):
            s.body = _loop_returns(s.body, fresh)
            if not s.orelse and _has_return(s.body):
                k = fresh()
                flag, value = f"_td_rf_{k}", f"_td_rv_{k}"
                body = _returns_to_breaks(s.body, flag, value)
                if not _has_return(body):
                    s.body = body
                    out.append(ast.copy_location(_assign(flag, _const(False)), s))
                    out.append(s)
                    back = ast.If(test=_name(flag), body=[ast.Return(value=_name(value))], orelse=[])
                    out.append(ast.copy_location(back, s))
                    continue
        out.append(s)
    return out


def _returns_to_breaks(stmts: list, flag: str, value: str) -> list:
    out = []
    for s in stmts:
        if isinstance(s, ast.Return):
            v = s.value if s.value is not None else _const(None)
            out += [
                ast.copy_location(_assign(value, v), s),
                ast.copy_location(_assign(flag, _const(True)), s),
                ast.copy_location(ast.Break(), s),
            ]
            return out
        if isinstance(s, ast.If):
            s = _copy(s)
            s.body = _returns_to_breaks(s.body, flag, value)
            s.orelse = _returns_to_breaks(s.orelse, flag, value)
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
            # a return inside a loop here is one `_loop_returns` could not lower
            and not _loop_has_return(s.body + s.orelse)
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


def _loop_has_return(stmts) -> bool:
    for s in stmts:
        for n in [s, *_walk_shallow(s)]:
            if isinstance(n, (ast.For, ast.While)) and _has_return(n.body + n.orelse):
                return True
    return False


def _copy(node):
    import copy

    return copy.deepcopy(node)
