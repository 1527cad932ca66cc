"""The syntax-tree transformer: control flow, stores and calls rewritten into
calls of `tracediff.control` (imported in converted code as `_td_`)."""

from __future__ import annotations

import ast

from .analysis import (
    ConversionError,
    _always_returns,
    _assign,
    _call,
    _const,
    _contains_jump,
    _fn,
    _has_return,
    _helper,
    _jumps,
    _lower_jumps,
    _name,
    _thunk,
    assigned,
)

_NO_CONVERT_CALLS = {"super", "locals", "globals", "vars", "eval", "exec", "print", "isinstance", "len",
                     "range", "enumerate", "zip", "type", "getattr", "hasattr", "setattr"}  # fmt: skip


# --- the transformer --------------------------------------------------------------------


class _Converter(ast.NodeTransformer):
    def __init__(self, declared_global: set[str], declared_nonlocal: set[str], known: set[str] | None = None):
        self.n = 0
        self.known = known  # the function's variables (`assigned`)
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
        names = assigned(node.body + node.orelse, self.known)
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

    def _loop_flags(self, node, k, first=()):
        """Lower break/continue of this loop into flags; returns (body, brk, cnt).
        `first`: statements that open each iteration (a for loop's target)."""
        has_brk = _contains_jump(node.body, ast.Break)
        has_cnt = _contains_jump(node.body, ast.Continue)
        brk = f"_td_brk_{k}" if has_brk else None
        cnt = f"_td_cnt_{k}" if has_cnt else None
        body = list(first) + (_lower_jumps(node.body, brk, cnt) if (brk or cnt) else node.body)
        if brk and isinstance(node, ast.For):
            # iterations after a traced break do nothing, not even bind the target: after
            # the loop it holds the item the loop broke at, as in Python
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
        names = assigned(body, self.known)
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
        bind = ast.copy_location(ast.Assign(targets=[node.target], value=_name(f"_td_it_{k}")), node)
        body, brk, cnt = self._loop_flags(node, k, [bind])
        target_names = assigned([ast.Assign(targets=[node.target], value=_const(None))])
        names = assigned(body, self.known)
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
        obj, idx = self.visit(t.value), _index_arg(self.visit(t.slice))
        if isinstance(t.value, ast.Name):
            new = _assign(t.value.id, _call(_helper("setitem"), [obj, idx, node.value]))
        else:
            held = _const(ast.unparse(t.value))
            new = ast.Expr(value=_call(_helper("setitem"), [obj, idx, node.value, held]))
        return ast.copy_location(new, node)

    def visit_AugAssign(self, node: ast.AugAssign):
        op = type(node.op).__name__
        value = self.visit(node.value)
        t = node.target
        if isinstance(t, ast.Name):
            new = _assign(t.id, _call(_helper("aug"), [_name(t.id), _const(op), value]))
            return ast.copy_location(new, node)
        if isinstance(t, ast.Subscript):
            obj, idx = self.visit(t.value), _index_arg(self.visit(t.slice))
            if isinstance(t.value, ast.Name):
                new = _assign(t.value.id, _call(_helper("aug_item"), [obj, idx, _const(op), value]))
            else:
                held = _const(ast.unparse(t.value))
                new = ast.Expr(value=_call(_helper("aug_item"), [obj, idx, _const(op), value, held]))
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

    def visit_Subscript(self, node: ast.Subscript):
        self.generic_visit(node)
        v = node.value  # np.r_[a, b], np.c_[...]: the index trick objects get traced forms
        name = getattr(v, "attr", None) or getattr(v, "id", None)
        if not isinstance(node.ctx, ast.Load):
            return node
        if name in ("r_", "c_"):
            node.value = ast.copy_location(_call(_helper("fn"), [v]), v)
            return node
        # a[i] -> _td_.getitem(a, i): a NumPy array indexed by traced values
        return ast.copy_location(_call(_helper("getitem"), [v, _index_arg(node.slice)]), node)

    def visit_NamedExpr(self, node):
        raise ConversionError("assignment expressions (:=)")

    def visit_Yield(self, node):
        raise ConversionError("generators")

    visit_YieldFrom = visit_Await = visit_Yield


def _index_arg(idx):
    """An index as a call's argument: with slices, `_td_.index[...]` around it (the
    tuple of slices it means; a bare `1:` is no Python outside brackets)."""
    parts = idx.elts if isinstance(idx, ast.Tuple) else [idx]
    if not any(isinstance(p, ast.Slice) for p in parts):
        return idx
    return ast.copy_location(ast.Subscript(value=_helper("index"), slice=idx, ctx=ast.Load()), idx)


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
