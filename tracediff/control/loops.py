"""Loops whose test or counter is traced: `while` and counted `for` loops staged as
one equation, with the carried values found by tracing the body to a fixed point."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..builder import bind, current_builder, is_tracing
from ..core import IR, Aval
from ..prims.control import loop_p, regions, while_p
from ..provenance import at, user_src
from ..tracer import Tracer, TracerError
from .regions import (
    Region,
    Undefined,
    _arraylike,
    _as_type,
    _captures,
    _containers_changed,
    _in_region,
    _is_traced,
    _join,
    _snapshot,
    _test_value,
    _update_root,
)

# a `for` over a concrete range runs as Python (unrolled) up to UNROLL_ALWAYS
# iterations; up to UNROLL_UNUSED when its body does not use the loop variable
# and the unrolled body stays under UNROLL_BUDGET equations (so fusion runs
# through the steps of a time-stepped model: W4's 40 steps of 5 become one loop
# over the elements); longer loops become `loop` equations. Without the budget
# 40 steps of an RK4 integrator unrolled into a 5,600-line kernel that Numba
# could not compile (and its Hessian into 23,000 lines).
UNROLL_UNUSED = 64
UNROLL_ALWAYS = 8
UNROLL_BUDGET = 512


class Unstageable(Exception):
    """A loop body did something a staged loop cannot hold (changed a list...)."""


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
    from ..numpy_api.common import aval_of

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
    from ..numpy_api.common import aval_of

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
                if isinstance(init[i], Undefined) and isinstance(v, Undefined):
                    continue  # set only on some paths of the body (before a `break`): not carried
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


def _mutated(reg: Region, carried, n_extra: int = 0) -> set[int]:
    """The carried entries the body only updates in place: its last value is the very
    array the iteration started with (`y[i] = ...`, never `y = ...`)."""
    state, _ = reg.result
    return {i for k, i in enumerate(sorted(carried)) if state[i] is reg.args[n_extra + k]}


class _Peel(Exception):
    """Run the loop's first iteration as Python, then stage the others."""


def _updated_then_rebound(reg: Region, carried, init, n_extra: int = 0) -> int | None:
    """The state entry the body updates in place and then rebinds, or None. In
    NumPy the first iteration's update reaches the array the name held before the
    loop, and every other name bound to it, which a loop's results cannot."""
    state, _ = reg.result
    for k, i in enumerate(sorted(carried)):
        arg = reg.args[n_extra + k]
        if isinstance(init[i], Tracer) and state[i] is not arg and arg.tvar is not reg.b.invars[n_extra + k]:
            return i
    return None


def _set_results(results, init, carried, roots, set_, mutated=frozenset()):
    results = results if isinstance(results, list) else [results]
    st = list(init)
    idx = sorted(carried)
    for i, v in zip(idx, results):
        t = init[i]
        if (
            i in mutated
            and isinstance(t, Tracer)
            and t.aval.shape == v.aval.shape
            and t.aval.dtype == v.aval.dtype
        ):
            # NumPy's loop updated the array the name held before it: every other
            # name bound to it (`z = y`) and every view of it sees the updates
            _write_back(t, v)
            v = t
        st[i] = v
    set_(tuple(st))
    for root, v in zip(roots, results[len(idx) :]):
        _update_root(root, v)


def _write_back(t: Tracer, v) -> None:
    """The array `t` (a root, or a view written through to its root) now holds `v`."""
    from ..numpy_api.inplace import View

    if isinstance(t._alias, View):
        t[...] = v
    else:
        _update_root(t, v)


def _staged_while(test, body, get, set_, names, src, iterated=()):
    init = tuple(get())
    reg, carried, roots = _fixpoint(lambda: body(), init, names, set_, get, "`while`", src)
    _no_update_of_iterated(reg, roots, iterated, carried, init)
    i = _updated_then_rebound(reg, carried, init)
    if i is not None:  # (its first iteration cannot run as Python: whether it runs is traced)
        reg.b.alive = False
        raise TracerError(
            f"a traced `while` updates {names[i]!r} in place and then rebinds it{at(src)}: in NumPy "
            "the first iteration's update changes the array the name held before the loop (and every "
            f"name sharing it), which a compiled loop cannot follow; update a copy ({names[i]} = "
            f"{names[i]}.copy() first in the body) or only rebind it"
        )
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
    _set_results(results, init, carried, roots, set_, _mutated(reg, carried))


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


def _iterated_roots(it) -> list:
    """The traced arrays a `for` iterates over (their roots, for views)."""
    from ..numpy_api.inplace import View

    if isinstance(it, Tracer):
        return [it._alias.root if isinstance(it._alias, View) else it]
    if isinstance(it, Enumerate):
        return _iterated_roots(it.x)
    if isinstance(it, Zip):
        return [r for x in it.xs for r in _iterated_roots(x)]
    return []


def _no_update_of_iterated(reg, roots, iterated, carried=(), init=(), n_extra: int = 0) -> None:
    """A body that updates the array its loop iterates over in place (`X[i] = row * 2`,
    `X[0] += 1` in `for row in X`): NumPy's rows see the updates of earlier iterations,
    which a counted loop reading the array as it was cannot; unrolled, they do."""
    updated = list(roots)
    for k, i in enumerate(sorted(carried)):  # a carried name the body updates in place
        if reg.args[n_extra + k].tvar is not reg.b.invars[n_extra + k]:
            updated.append(init[i])
    if any(r is x for r in updated for x in iterated):
        reg.b.alive = False
        raise Unstageable("the body updates the array the loop iterates over")


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
    iterated = _iterated_roots(it)
    if n > UNROLL_ALWAYS and broke is not None:
        init = tuple(get())
        try:
            _staged_for_break(
                n, start, step, item, isinstance(it, range), body, get, set_, names, broke, iterated
            )
            return
        except (TracerError, Unstageable):
            set_(init)  # the body needs concrete counters (or changes a list): unroll it
    first = 0  # iterations run as Python before the staged loop
    if n > UNROLL_ALWAYS and broke is None:
        # a short loop not using its counter is unrolled if its body is small
        budget = UNROLL_BUDGET if not uses_target and n <= UNROLL_UNUSED else None
        init = tuple(get())
        try:
            try:
                _staged_for(
                    n, start, step, item, body, get, set_, names, user_src(), budget, iterated=iterated
                )
                return
            except _Peel:
                # the first iteration updates the array the name held before the loop
                # (which other names may share), then rebinds the name: run it as
                # Python, the others (on arrays of their own) as the loop
                set_(init)
                body(item(start))
                first, init = 1, tuple(get())
                _staged_for(
                    n - 1,
                    start + step,
                    step,
                    item,
                    body,
                    get,
                    set_,
                    names,
                    user_src(),
                    budget,
                    True,
                    iterated,
                )
                return
        except (TracerError, Unstageable):
            set_(init)  # the body needs concrete counters (or changes a list), or is small: unroll it
    for k in range(first, n):
        body(item(start + k * step))  # (an array's rows, enumerate, zip: start 0, step 1)
        if broke is not None and _true(broke()):
            return


def _staged_for_break(n, start, step, item, ranged: bool, body, get, set_, names, broke, iterated=()) -> None:
    """A counted loop with a `break`: one `while` equation carrying the counter with
    the state, its test `counter < n and not broken` (unrolled, a bisection of 200
    steps made 6,400 lines of nested branches and minutes of compiling)."""
    count = [0]

    def get_():
        return (*get(), count[0])

    def set_with(st):
        set_(tuple(st[:-1]))
        count[0] = st[-1]

    def test():
        more, b = count[0] < n, broke()
        if _is_traced(more) or _is_traced(b):
            return np.logical_and(more, np.logical_not(b))
        return more and not b

    flags = [i for i, nm in enumerate(names) if nm.startswith("_td_brk_")]

    def step_():
        # the test let this iteration run: no `break` yet (concrete, so the converted
        # body's guard `if not broken:` is no branch leaving its values undefined)
        st = list(get())
        for i in flags:
            st[i] = False
        set_(tuple(st))
        k = count[0]
        body(item(start + k * step if ranged else k))
        count[0] = k + 1

    _staged_while(test, step_, get_, set_with, [*names, "the loop counter"], user_src(), iterated)


def _size(prog: IR) -> int:
    """The number of equations in a program, those of its nested regions included."""
    return sum(1 + sum(_size(r) for r in regions(e.params)) for e in prog.eqns)


def _true(flag) -> bool:
    """A concrete `break` flag that is set (a traced one guards the rest instead)."""
    return not _is_traced(flag) and bool(flag)


def _staged_for(
    n, start, step, item, body, get, set_, names, src, unroll_budget=None, peeled=False, iterated=()
):
    """Bind `loop` for the body; raise Unstageable instead where `unroll_budget`
    is given and n copies of the body would stay within it, and _Peel where the
    body updates a carried array in place and then rebinds its name (unless
    `peeled`: the first iteration ran as Python)."""
    init = tuple(get())
    counter = Aval((), np.dtype(np.int64), weak=True)  # a Python int, as range gives
    reg, carried, roots = _fixpoint(
        lambda i: body(item(i)), init, names, set_, get, "`for` loop", src, extra_avals=[counter]
    )
    _no_update_of_iterated(reg, roots, iterated, carried, init, 1)
    if not peeled and _updated_then_rebound(reg, carried, init, 1) is not None:
        reg.b.alive = False
        raise _Peel
    outs = _body_outputs(reg, carried, roots)
    for o in outs:
        reg.b.atom(o)
    operands = _captures(reg)
    prog = reg.close(outs, operands)
    if unroll_budget is not None and n * _size(prog) <= unroll_budget:
        raise Unstageable("a small body: unrolled")
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
    _set_results(results, init, carried, roots, set_, _mutated(reg, carried, 1))


# --- expressions ----------------------------------------------------------------------
