"""Tracing regions (branches, loop bodies) and merging their results: the traced
`if`, conditional expressions, `and`/`or`/`not`."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..builder import Builder, bind, pop_builder, push_builder
from ..core import IR, Aval, Var
from ..numpy_api.inplace import Ambiguous, refresh_views, restore_localized
from ..prims.control import cond_p
from ..provenance import at, user_src
from ..tracer import Tracer, TracerError


class Undefined:
    """The value of a local variable that a traced branch leaves unassigned."""

    __slots__ = ("name", "src")

    def __init__(self, name: str, src: str = ""):
        self.name, self.src = name, src

    def _fail(self, *args, **kwargs):
        raise UnboundLocalError(
            f"local variable {self.name!r} is not assigned on every path through a traced "
            f"`if`{at(self.src)}: assign it before the `if` or in every branch"
        )

    __bool__ = __array__ = __getattr__ = __call__ = __iter__ = __len__ = _fail
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = _fail
    __rtruediv__ = __pow__ = __rpow__ = __matmul__ = __rmatmul__ = __neg__ = __getitem__ = _fail
    __lt__ = __le__ = __gt__ = __ge__ = _fail

    def __repr__(self) -> str:
        return f"<undefined {self.name}>"


def _is_traced(x) -> bool:
    return isinstance(x, Tracer)


def _arraylike(x) -> bool:
    return isinstance(x, (Tracer, np.ndarray, np.generic, numbers.Number)) and not isinstance(x, complex)


def _test_value(t, what: str):
    """A traced condition as a 0-d bool (Python's truth value of a number)."""
    if t.aval.shape != ():
        raise ValueError(
            f"the truth value of a traced array {t.aval} is ambiguous ({what}){at(user_src())}; "
            "use np.any(...) or np.all(...)"
        )
    if t.aval.dtype != np.dtype(bool):
        t = t != 0
    return t


# --- tracing a region -----------------------------------------------------------------


class Region:
    """One traced branch or loop body: its builder, input tracers, what it
    produced (Python values or tracers) and the enclosing roots it updated."""

    def __init__(self, fn: Callable, in_avals: Sequence[Aval] = (), inputs_for: Sequence = ()):
        self.b = b = Builder(region=True)
        push_builder(b)
        try:
            self.args = [b.new_arg(a) for a in in_avals]
            # enclosing roots carried as inputs: moved into the region as those inputs
            for root, arg in zip(inputs_for, self.args[len(self.args) - len(inputs_for) :]):
                b.localized[id(root)] = (root, root.builder, root.tvar)
                root.builder, root.tvar = b, arg.tvar
                refresh_views(root)
            self.result = fn(*self.args[: len(self.args) - len(inputs_for)])
        finally:
            pop_builder(b)
            self.roots = restore_localized(b)

    def root_value(self, root: Tracer):
        """The root's value at the end of the region (its input value if untouched)."""
        for r, var in self.roots:
            if r is root:
                return Tracer(self.b, var)
        return root

    def close(self, outs: Sequence[Any], operands: Sequence[Tracer]) -> IR:
        """The region as a program of (its inputs..., `operands`...) -> `outs`."""
        b = self.b
        outvars = [b.atom(o) for o in outs]
        invars = list(b.invars)
        for t in operands:
            hit = b.captured.get(id(t))
            invars.append(hit[1] if hit is not None else Var(t.aval))
        b.alive = False
        return IR(invars, b.eqns, outvars)


def _captures(*regions: Region) -> list[Tracer]:
    """The enclosing values any of the regions read, each once."""
    seen, out = set(), []
    for r in regions:
        for t, _ in list(r.b.captured.values()):
            if id(t) not in seen:
                seen.add(id(t))
                out.append(t)
    return out


def _root_set(*regions: Region) -> list[Tracer]:
    seen, out = set(), []
    for r in regions:
        for root, _ in r.roots:
            if id(root) not in seen:
                seen.add(id(root))
                out.append(root)
    return out


def _join(name: str, vals: Sequence[Any], what: str, src: str) -> Aval | None:
    """The common type of one variable's values at the end of each region, or None
    when they are all the same Python object (nothing to merge)."""
    first = vals[0]
    if all(v is first for v in vals):
        return None
    if any(isinstance(v, Undefined) for v in vals):
        return Aval((), np.dtype(object))  # marks "undefined after the `if`"
    if not all(_arraylike(v) for v in vals):
        kinds = " and ".join(sorted({type(v).__name__ for v in vals}))
        raise TracerError(
            f"a traced {what} gives {name!r} values of different Python types ({kinds}){at(src)}; "
            "only arrays and numbers can depend on a traced condition"
        )
    from ..numpy_api.common import aval_of, result_dtype

    avals = [aval_of(v) for v in vals]
    shapes = {a.shape for a in avals}
    strong = [a for a in avals if not a.weak]
    dts = {a.dtype for a in strong} or {a.dtype for a in avals}
    if len(shapes) > 1 or len(dts) > 1:
        raise TracerError(
            f"a traced {what} gives {name!r} different types: "
            + " and ".join(str(a) for a in avals)
            + f"{at(src)}; every branch (and every loop iteration) must give it one shape and dtype"
        )
    dt = result_dtype(*avals) if not strong else next(iter(dts))
    return Aval(avals[0].shape, dt, weak=not strong)


def _as_type(v, aval: Aval, b: Builder):
    """`v` (a Python value or a tracer) as a value of type `aval` in builder `b`."""
    from ..numpy_api.ufuncs import astype
    from ..prims.elementwise import convert_p

    if isinstance(v, Tracer):
        if v.dtype != aval.dtype or v.aval.weak != aval.weak:
            return bind(convert_p, v, dtype=aval.dtype, weak=aval.weak)
        return v
    lit = b.const(np.asarray(v, aval.dtype), None, aval.weak)
    t = b.emit(convert_p, [lit], {"dtype": aval.dtype, "weak": aval.weak})[0]
    return t if aval.shape == () else astype(t, aval.dtype)


# --- if -------------------------------------------------------------------------------


def if_stmt(test, body: Callable, orelse: Callable, get: Callable, set_: Callable, names: Sequence[str]):
    """`if test: body() else: orelse()`; returns what the branch returns (the
    converter makes branches return only when both return)."""
    if not _is_traced(test):
        return body() if test else orelse()
    src = user_src()
    t = _test_value(test, "an `if`")
    init = get()

    snap = _snapshot(init)

    def run(fn):
        set_(init)
        region = Region(lambda: (fn(), get()))
        changed = _containers_changed(snap)
        if changed is not None:
            set_(init)
            raise TracerError(
                f"a traced `if` changes the {type(init[changed]).__name__} {names[changed]!r} in a "
                f"branch{at(src)}; only arrays and numbers can depend on a traced condition (build "
                "the list after the `if`, or choose its elements with np.where)"
            )
        return region

    r_true = run(body)
    r_false = run(orelse)
    set_(init)
    state, ret = _merge_cond(t, [r_false, r_true], names, src, "`if`")
    set_(tuple(state))
    return ret


def _plan(name: str, vals: list, regions, outs_per, what: str, src: str):
    """How one variable's values at the end of each branch merge: ("keep", v), ("undef",),
    ("out", ambiguous) (one cond output; the branch values are appended to outs_per), or
    ("tree", container type, treedef, plans) for tuples/lists/dicts of one structure."""
    from .. import pytree

    first = vals[0]
    if all(v is first for v in vals):
        return ("keep", first)
    if name.startswith("_td_rv") and not all(isinstance(v, Undefined) for v in vals):
        # the value a `return` inside a loop stores (pyconv's _loop_returns): read only
        # where its flag is set, so zeros stand for it on the paths that did not return
        like = next(v for v in vals if not isinstance(v, Undefined))
        vals = [_zeros_like(like) if isinstance(v, Undefined) else v for v in vals]
    if any(isinstance(v, Undefined) for v in vals):
        return ("undef",)
    if all(isinstance(v, (tuple, list, dict)) for v in vals) and len({type(v) for v in vals}) == 1:
        flat = [pytree.flatten(v) for v in vals]
        if len({str(f[1]) for f in flat}) != 1:
            raise TracerError(f"a traced {what} gives {name!r} values of different structures{at(src)}")
        subs = [
            _plan(f"{name}[{j}]", [f[0][j] for f in flat], regions, outs_per, what, src)
            for j in range(len(flat[0][0]))
        ]
        return ("tree", flat[0][1], subs)
    aval = _join(name, vals, what, src)
    for k, (r, v) in enumerate(zip(regions, vals)):
        outs_per[k].append(_in_region(r, v, aval))
    ambiguous = any(
        isinstance(v, Tracer) and (v.builder is not r.b or v._alias is not None)
        for v, r in zip(vals, regions)
    )
    return ("out", ambiguous)


def _zeros_like(v):
    from .. import pytree

    leaves, tree = pytree.flatten(v)
    return pytree.unflatten(tree, [np.zeros(np.shape(x), _dtype_of(x)) for x in leaves])


def _dtype_of(x):
    return x.aval.dtype if isinstance(x, Tracer) else np.asarray(x).dtype


def _rebuild(plan, it, name: str, src: str):
    from .. import pytree

    kind = plan[0]
    if kind == "keep":
        return plan[1]
    if kind == "undef":
        return Undefined(name, src)
    if kind == "tree":
        return pytree.unflatten(plan[1], [_rebuild(p, it, name, src) for p in plan[2]])
    t = next(it)
    if plan[1]:
        t._alias = Ambiguous(src)  # a view of one array or another: chosen at run time
    return t


def _merge_cond(index, regions: list[Region], names, src, what):
    """Emit the cond of `regions` (index k runs regions[k]); returns (merged state,
    merged return value)."""
    results = [r.result for r in regions]
    states = [res[1] for res in results]
    rets = [res[0] for res in results]
    outs_per: list[list[Any]] = [[] for _ in regions]
    plans = [
        _plan(names[i], [s[i] for s in states], regions, outs_per, what, src) for i in range(len(states[0]))
    ]
    ret_plan = _plan("the returned value", rets, regions, outs_per, what, src)
    if ret_plan[0] == "undef":
        raise TracerError(f"a traced {what} returns an undefined value{at(src)}")
    roots = _root_set(*regions)
    for k, r in enumerate(regions):
        outs_per[k].extend(r.root_value(root) for root in roots)
    # every branch sees the same operands: whatever any of them read
    for k, r in enumerate(regions):
        for o in outs_per[k]:
            r.b.atom(o)  # captures now, so the operand list is complete
    operands = _captures(*regions)
    progs = tuple(r.close(outs_per[k], operands) for k, r in enumerate(regions))
    merged = bind(cond_p, index, *operands, branches=progs)
    it = iter(merged if isinstance(merged, list) else [merged])
    new_state = [_rebuild(p, it, names[i], src) for i, p in enumerate(plans)]
    ret = _rebuild(ret_plan, it, "the returned value", src)
    for root in roots:
        _update_root(root, next(it))
    return new_state, ret


def _in_region(r: Region, v, aval: Aval):
    if isinstance(v, Tracer) and v.builder is r.b and v.aval == aval:
        return v
    push_builder(r.b)
    try:
        return _as_type(v, aval, r.b)
    finally:
        pop_builder(r.b)


def _update_root(root: Tracer, new: Tracer) -> None:
    """An enclosing array a region updated now holds the region's result."""
    from ..numpy_api.inplace import _check_owner, _rebind

    _check_owner(root)
    _rebind(root, new)


# --- containers a region must not change ------------------------------------------------


def _snapshot(state) -> list:
    return [(v, list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else None) for v in state]


def _containers_changed(snap) -> int | None:
    """Restores any list or dict of the state whose contents changed; returns the
    index of the first that did (None: none did)."""
    changed = None
    for i, (v, old) in enumerate(snap):
        if old is None:
            continue
        now = list(v) if isinstance(v, list) else dict(v)
        same = len(now) == len(old) and (
            all(a is b for a, b in zip(now, old))
            if isinstance(v, list)
            else all(k in old and old[k] is x for k, x in now.items())
        )
        if not same:
            changed = i if changed is None else changed
            if isinstance(v, list):
                v[:] = old
            else:
                v.clear()
                v.update(old)
    return changed


# --- while ----------------------------------------------------------------------------


def _is_bool(v) -> bool:
    return isinstance(v, (bool, np.bool_)) or (_is_traced(v) and v.dtype == np.dtype(bool))


def _select(x, y, what: str):
    """Python's `x and y` / `x or y` for a traced `x` (y evaluated too): for bools
    a logical op; else `y if x else x` (and), `x if x else y` (or), of one type."""
    t = _test_value(x, what)
    if _is_bool(x) and _is_bool(y):
        return (np.logical_and if what == "`and`" else np.logical_or)(t, _truth(y))
    _join(f"the value of {what}", [x, y], what, user_src())  # one type, or a clear error
    return np.where(t, y, x) if what == "`and`" else np.where(t, x, y)


def _short_circuit(x, b: Callable, what: str):
    """`x and b()` / `x or b()` for a traced `x`. `b` is traced as a branch first: where
    it computes anything, it runs only where Python would run it (a cond): it may raise
    (`i < n and a[i] > 0` reads a[n] when i == n), update an array in place, or have
    an infinite derivative where it is not taken (`x and np.sqrt(x)` at 0: computed
    and not chosen, its gradient would be 0 * inf). A value made before is chosen."""
    r = Region(lambda: (b(), ()))
    if r.roots or r.b.eqns:
        keep = Region(lambda: (x, ()))
        branches = [keep, r] if what == "`and`" else [r, keep]  # (index 0: x is false)
        _, ret = _merge_cond(_test_value(x, what), branches, (), user_src(), what)
        return ret
    r.b.alive = False
    return _select(x, r.result[0], what)


def and_(a: Callable, b: Callable):
    """`a and b` (thunks), short-circuit as in Python."""
    x = a()
    if not _is_traced(x):
        return b() if x else x
    return _short_circuit(x, b, "`and`")


def or_(a: Callable, b: Callable):
    x = a()
    if not _is_traced(x):
        return x if x else b()
    return _short_circuit(x, b, "`or`")


def not_(x):
    if not _is_traced(x):
        return not x
    return np.logical_not(_test_value(x, "`not`"))


def _truth(y):
    return _test_value(y, "`and`/`or`") if _is_traced(y) else bool(y)


def if_exp(test, body: Callable, orelse: Callable):
    """`body() if test else orelse()`."""
    if not _is_traced(test):
        return body() if test else orelse()
    src = user_src()
    t = _test_value(test, "a conditional expression")
    regions = [Region(lambda f=f: (f(), ())) for f in (orelse, body)]
    _, ret = _merge_cond(t, regions, (), src, "conditional expression")
    return ret


# --- what converted code calls besides control flow ------------------------------------
