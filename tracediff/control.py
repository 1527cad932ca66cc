"""Python control flow on traced values: the helpers converted code calls.

The source transformation (`pyconv`) rewrites `if`, `while`, `for`, `and`,
`or`, `not`, conditional expressions and in-place stores into calls of the
functions here. Each decides at trace time: a concrete condition runs as plain
Python (static branches, unrolled loops), so nothing that worked before
changes; a traced one becomes a `cond`, `while` or `loop` equation whose
regions are the branches and bodies, traced as sub-programs.

The state a region changes is (1) the local variables it assigns (read and
written through the `get`/`set` functions the converter makes) and (2) traced
arrays of the enclosing trace it updates in place (moved into the region while
it is traced, see `tracing.localize`). Both become outputs of the region.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .core import IR, Aval, Var
from .numpy_api.inplace import Ambiguous
from .prims.control import cond_p, loop_p, while_p
from .tracing import (
    Builder,
    Tracer,
    TracerError,
    at,
    bind,
    current_builder,
    is_tracing,
    pop_builder,
    push_builder,
    restore_localized,
    user_src,
)

# a `for` over a concrete range runs as Python (unrolled) up to this many
# iterations when its body does not use the loop variable, and up to
# UNROLL_ALWAYS iterations in any case; longer loops become `loop` equations
UNROLL_UNUSED = 64
UNROLL_ALWAYS = 8


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
                from .numpy_api.inplace import refresh_views

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
    from .numpy_api.common import aval_of, result_dtype

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
    from .numpy_api.ufuncs import astype
    from .prims.elementwise import convert_p

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
    from . import pytree

    first = vals[0]
    if all(v is first for v in vals):
        return ("keep", first)
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


def _rebuild(plan, it, name: str, src: str):
    from . import pytree

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
    from .numpy_api.inplace import _check_owner, _rebind

    _check_owner(root)
    _rebind(root, new)


# --- containers a region must not change ------------------------------------------------


class Unstageable(Exception):
    """A loop body did something a staged loop cannot hold (changed a list...)."""


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


def while_stmt(test: Callable, body: Callable, get: Callable, set_: Callable, names: Sequence[str]) -> None:
    """`while test(): body()`: iterations run as Python while the test is concrete;
    once it is traced, the remaining iterations become one `while` equation."""
    while True:
        t = test()
        if not _is_traced(t):
            if not t:
                return
            body()
            continue
        _staged_while(test, body, get, set_, names, user_src())
        return


def _carry_plan(init, names, what, src):
    """Which state entries a loop may carry: arrays and numbers (and variables the
    body defines, found by a first trace)."""
    from .numpy_api.common import aval_of

    return {i: aval_of(v) for i, v in enumerate(init) if _arraylike(v)}


def _trace_body(step: Callable, init, carried: dict, roots: list, set_, get, extra_avals=()):
    """Trace one loop iteration with the carried entries and roots as inputs.
    `step(*extra_args)` runs the iteration; returns the region."""
    idx = sorted(carried)
    n_extra = len(extra_avals)

    def fn(*args):
        st = list(init)
        for i, a in zip(idx, args[n_extra:]):
            st[i] = a
        set_(tuple(st))
        snap = _snapshot(st)
        out = step(*args[:n_extra])
        if _containers_changed(snap) is not None:
            raise Unstageable("the loop body changes a list or dict")
        return get(), out

    in_avals = list(extra_avals) + [carried[i] for i in idx] + [r.aval for r in roots]
    try:
        return Region(fn, in_avals, inputs_for=roots)
    finally:
        set_(tuple(init))


def _fixpoint(step, init, names, set_, get, what, src, extra_avals=()):
    """Trace the body until the carried types and the updated roots stop changing."""
    from .numpy_api.common import aval_of

    carried = _carry_plan(init, names, what, src)
    roots: list[Tracer] = []
    for _ in range(6):
        reg = _trace_body(step, init, carried, roots, set_, get, extra_avals)
        state, _ = reg.result
        changed = False
        cidx = sorted(carried)
        for i, v in enumerate(state):
            if i in cidx:
                arg = reg.args[len(extra_avals) + cidx.index(i)]
                j = _join(names[i], [arg, v], what, src)
                if j is None or j == carried[i]:
                    continue
                if j.dtype == np.dtype(object):
                    raise TracerError(f"a traced {what} leaves {names[i]!r} undefined{at(src)}")
                carried[i] = j
                changed = True
            elif v is not init[i]:
                if isinstance(init[i], Undefined) and _arraylike(v):
                    carried[i] = aval_of(v)  # defined by the body: carried from a zero start
                    changed = True
                else:
                    raise TracerError(
                        f"a traced {what} changes {names[i]!r}, a {type(init[i]).__name__}{at(src)}; "
                        "only arrays and numbers can change in a loop with a traced condition"
                    )
        for root, _ in reg.roots:
            if all(root is not r for r in roots):
                roots.append(root)
                changed = True
        if not changed:
            return reg, carried, roots
        reg.b.alive = False
    raise TracerError(f"the types of the values a traced {what} carries do not settle{at(src)}")


def _initial(init, carried, roots):
    """The carried entries' values before the loop, of their carried types."""
    b = current_builder()
    vals = []
    for i in sorted(carried):
        v = init[i]
        if isinstance(v, Undefined):
            a = carried[i]
            v = np.zeros(a.shape, a.dtype)
        vals.append(_as_type(v, carried[i], b))
    return vals + list(roots)


def _body_outputs(reg: Region, carried, roots):
    state, _ = reg.result
    outs = [_in_region(reg, state[i], carried[i]) for i in sorted(carried)]
    return outs + [reg.root_value(r) for r in roots]


def _set_results(results, init, carried, roots, set_):
    results = results if isinstance(results, list) else [results]
    st = list(init)
    idx = sorted(carried)
    for i, v in zip(idx, results):
        st[i] = v
    set_(tuple(st))
    for root, v in zip(roots, results[len(idx) :]):
        _update_root(root, v)


def _staged_while(test, body, get, set_, names, src):
    init = tuple(get())
    reg, carried, roots = _fixpoint(lambda: body(), init, names, set_, get, "`while`", src)
    n_carry = len(carried) + len(roots)

    def test_fn(*args):
        st = list(init)
        for i, a in zip(sorted(carried), args):
            st[i] = a
        set_(tuple(st))
        t = test()
        if not _is_traced(t):
            t = bool(t)
        else:
            t = _test_value(t, "a `while`")
        return t

    in_avals = [carried[i] for i in sorted(carried)] + [r.aval for r in roots]
    try:
        treg = Region(test_fn, in_avals, inputs_for=roots)
    finally:
        set_(init)
    if treg.roots:
        raise TracerError(f"the test of a traced `while` updates an array in place{at(src)}")
    outs = _body_outputs(reg, carried, roots)
    for o in outs:
        reg.b.atom(o)
    t_out = _in_region(treg, treg.result, Aval((), np.dtype(bool)))
    treg.b.atom(t_out)
    operands = _captures(reg, treg)
    body_prog = reg.close(outs, operands)
    test_prog = treg.close([t_out], operands)
    results = bind(
        while_p, *_initial(init, carried, roots), *operands, cond=test_prog, body=body_prog, n_carry=n_carry
    )
    _set_results(results, init, carried, roots, set_)


# --- for ------------------------------------------------------------------------------


class Enumerate:
    """`enumerate(x)` in a converted `for`: iterated by index when x is an array."""

    def __init__(self, x, start=0):
        self.x, self.start = x, start

    def __iter__(self):
        return iter(enumerate(self.x, self.start))


class Zip:
    """`zip(*xs)` in a converted `for`."""

    def __init__(self, *xs, strict=False):
        self.xs, self.strict = xs, strict

    def __iter__(self):
        return iter(zip(*self.xs, strict=self.strict))


def _sequence(it):
    """(n, start, step, item) when `it` can be iterated by a counter: item(i)
    gives the element for the counter value i (range(start, ..., step))."""
    if isinstance(it, range):
        return len(it), it.start, it.step, lambda i: i
    if isinstance(it, (Tracer, np.ndarray)) and np.ndim(it) > 0:
        return np.shape(it)[0], 0, 1, lambda i: it[i]
    if isinstance(it, Enumerate):
        inner = _sequence(it.x)
        if inner is None or inner[1:3] != (0, 1):
            return None
        n, _, _, item = inner
        return n, 0, 1, lambda i: (i + it.start, item(i))
    if isinstance(it, Zip):
        subs = [_sequence(x) for x in it.xs]
        if not subs or any(s is None or s[1:3] != (0, 1) for s in subs):
            return None
        n = min(s[0] for s in subs)
        if it.strict and any(s[0] != n for s in subs):
            return None
        return n, 0, 1, lambda i: tuple(s[3](i) for s in subs)
    return None


def for_stmt(
    it,
    body: Callable,
    get: Callable,
    set_: Callable,
    names: Sequence[str],
    uses_target: bool = True,
    broke: Callable | None = None,
) -> None:
    """`for v in it: body(v)`. A loop over a range or an array's rows runs
    unrolled when short (or when its body does not use the loop variable and
    it is not long), else becomes one counted `loop` equation; any other
    iterable runs as Python. `broke()` reads the loop's `break` flag."""
    seq = _sequence(it) if is_tracing() else None
    if seq is None:
        for v in it:
            body(v)
            if broke is not None and _true(broke()):
                return
        return
    n, start, step, item = seq
    short = n <= UNROLL_ALWAYS or (not uses_target and n <= UNROLL_UNUSED)
    if not short and broke is None:
        init = tuple(get())
        try:
            _staged_for(n, start, step, item, body, get, set_, names, user_src())
            return
        except (TracerError, Unstageable):
            set_(init)  # the body needs concrete counters (or changes a list): unroll it
    for k in range(n):
        body(item(start + k * step if isinstance(it, range) else k))
        if broke is not None and _true(broke()):
            return


def _true(flag) -> bool:
    """A concrete `break` flag that is set (a traced one guards the rest instead)."""
    return not _is_traced(flag) and bool(flag)


def _staged_for(n, start, step, item, body, get, set_, names, src):
    init = tuple(get())
    counter = Aval((), np.dtype(np.int64), weak=True)  # a Python int, as range gives
    reg, carried, roots = _fixpoint(
        lambda i: body(item(i)), init, names, set_, get, "`for` loop", src, extra_avals=[counter]
    )
    outs = _body_outputs(reg, carried, roots)
    for o in outs:
        reg.b.atom(o)
    operands = _captures(reg)
    prog = reg.close(outs, operands)
    results = bind(
        loop_p,
        *_initial(init, carried, roots),
        *operands,
        body=prog,
        start=int(start),
        step=int(step),
        n=int(n),
        n_carry=len(carried) + len(roots),
    )
    _set_results(results, init, carried, roots, set_)


# --- expressions ----------------------------------------------------------------------


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


def and_(a: Callable, b: Callable):
    """`a and b` (thunks): for a traced `a`, both are evaluated and one is chosen."""
    x = a()
    if not _is_traced(x):
        return b() if x else x
    return _select(x, b(), "`and`")


def or_(a: Callable, b: Callable):
    x = a()
    if not _is_traced(x):
        return x if x else b()
    return _select(x, b(), "`or`")


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

NEVER = False  # `if _td_.NEVER: x = None` binds x in the function for `nonlocal`


def load(thunk: Callable, name: str):
    """A local's value, or Undefined when it is not assigned yet."""
    try:
        return thunk()
    except NameError:
        return Undefined(name)


def fn(f):
    """A callee in converted code: a user function is converted first (lazily)."""
    if is_tracing():
        from .pyconv import convert

        return convert(f)
    return f


def _lift_array(arr: np.ndarray, *traced_with) -> Tracer:
    """A NumPy array of the function that receives traced values: a traced copy
    of it, in the innermost trace (the name is rebound to it)."""
    import sys

    from .prims.elementwise import copy_p
    from .tracing import innermost_builder

    b = innermost_builder(traced_with) or current_builder()
    # a view of an array someone else holds (z and v = z[1:]): the update must reach z,
    # which a name-by-name rebinding cannot do
    if arr.base is not None and sys.getrefcount(arr.base) > 2:
        raise TracerError(
            f"storing traced values into a view of a NumPy array{at(user_src())}: the update would "
            "have to reach the array it views, which stays a NumPy array; make that array traced "
            "first (e.g. z = np.zeros(n) + 0 * x) or build the result with np.concatenate/np.where"
        )
    if arr.dtype.kind not in "biuf":
        raise TracerError(
            f"cannot store traced values into a NumPy array of dtype {arr.dtype}{at(user_src())}"
        )
    return b.emit(copy_p, [np.array(arr, copy=True)], {})[0]


def _traced_in(*xs) -> list:
    out = []
    for x in xs:
        if isinstance(x, Tracer):
            out.append(x)
        elif isinstance(x, tuple):
            out.extend(_traced_in(*x))
    return out


def setitem(obj, idx, value):
    """`obj[idx] = value`; returns what the name should hold afterwards."""
    if isinstance(obj, np.ndarray) and is_tracing():
        tr = _traced_in(value, idx)
        if tr:
            obj = _lift_array(obj, *tr)
    obj[idx] = value
    return obj


_AUG = {
    "Add": "__iadd__",
    "Sub": "__isub__",
    "Mult": "__imul__",
    "Div": "__itruediv__",
    "FloorDiv": "__ifloordiv__",
    "Mod": "__imod__",
    "Pow": "__ipow__",
    "MatMult": "__imatmul__",
    "BitAnd": "__iand__",
    "BitOr": "__ior__",
    "BitXor": "__ixor__",
    "LShift": "__ilshift__",
    "RShift": "__irshift__",
}


def aug(obj, op: str, value):
    """`obj op= value`; returns what the name holds afterwards."""
    import operator

    if isinstance(obj, np.ndarray) and obj.ndim > 0 and is_tracing() and _traced_in(value):
        obj = _lift_array(obj, *_traced_in(value))
    fn = getattr(operator, _AUG[op].strip("_"))
    return fn(obj, value)


_BINARY = {"Add": "add", "Sub": "sub", "Mult": "mul", "Div": "truediv", "FloorDiv": "floordiv", "Mod": "mod",
           "Pow": "pow", "MatMult": "matmul", "BitAnd": "and_", "BitOr": "or_", "BitXor": "xor",
           "LShift": "lshift", "RShift": "rshift"}  # fmt: skip


def aug_item(obj, idx, op: str, value):
    """`obj[idx] op= value`; returns what the name holds afterwards."""
    import operator

    mask = idx[0] if isinstance(idx, tuple) and len(idx) == 1 else idx
    if (
        isinstance(obj, Tracer)
        and isinstance(mask, Tracer)
        and mask.dtype == np.dtype(bool)
        and mask.aval.shape == obj.aval.shape
    ):
        # x[mask] op= v with a traced mask: a fixed-shape select of x op v
        from .numpy_api.inplace import setitem_where

        setitem_where(obj, mask, getattr(operator, _BINARY[op])(obj, value))
        return obj
    return setitem(obj, idx, aug(obj[idx], op, value))


def ufunc_at(ufunc, obj, *args):
    """`ufunc.at(obj, ...)`; returns what the name holds afterwards."""
    if isinstance(obj, np.ndarray) and is_tracing():
        tr = _traced_in(*args)
        if tr:
            obj = _lift_array(obj, *tr)
    ufunc.at(obj, *args)
    return obj


def call_out(fn: Callable, out):
    """`f(..., out=out)`; returns what the name holds afterwards."""
    if isinstance(out, np.ndarray) and is_tracing():
        try:
            fn(out)
            return out
        except TracerError:
            out = _lift_array(out)
    fn(out)
    return out
