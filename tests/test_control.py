"""Control flow and in-place updates: one regression per behaviour the source
transformation, the region primitives and the functional stores must keep.

The broad table of dynamic programs is tests/test_dynamic.py; here each case
pins one rule (where a region's work runs, which loops are compiled, what an
in-place update reaches, which errors name which line)."""

from __future__ import annotations

import ast

import numpy as np
import pytest

import tracediff as td
from tracediff.prims.control import cond_p, loop_p, while_p
from tracediff.prims.scan import scan_p


def _prims(ir):
    out = []
    for e in ir.eqns:
        out.append(e.prim)
        for v in e.params.values():
            for sub in v if isinstance(v, tuple) else (v,):
                if hasattr(sub, "eqns"):
                    out.extend(_prims(sub))
    return out


def _both(f, *args):
    """f's value eagerly (NumPy), interpreted and compiled, all equal; returns it."""
    want = f(*[np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args])
    for target in ("interpret", "cpu"):
        got = td.jit(f, target=target)(*args)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)
    return want


# --- where a branch's work runs -----------------------------------------------------


def sqrt_or_zero(x):
    if x > 0:
        y = np.sqrt(x)
    else:
        y = 0.0 * x
    return y


def test_branch_work_stays_in_its_branch():
    # sqrt(-1) in the untaken branch would make the gradient 0 * inf = nan
    for grad in (td.grad(sqrt_or_zero), td.jit(td.grad(sqrt_or_zero))):
        assert grad(-1.0) == 0.0
        assert grad(4.0) == 0.25
    ir = td.make_ir(sqrt_or_zero, 2.0)
    assert [e.prim for e in ir.eqns].count(cond_p) == 1
    assert all(e.prim.name != "sqrt" for e in ir.eqns)  # only inside the branch


def test_concrete_condition_is_plain_python():
    def f(x, flag):
        if flag:  # a Python bool: no cond, as before the transformation
            return np.sum(x)
        return np.sum(x * 2)

    ir = td.make_ir(f, np.ones(3), True)
    assert cond_p not in _prims(ir)
    assert td.jit(f, static_argnums=1)(np.ones(3), False) == 6.0


# --- loops --------------------------------------------------------------------------


def scan_sum(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + x[i] * i
    return s


def test_long_loop_is_one_compiled_loop():
    x = np.linspace(0, 1, 200)
    ir = td.make_ir(scan_sum, x)
    assert loop_p in _prims(ir) and len(ir.eqns) < 10
    assert np.isclose(_both(scan_sum, x), np.sum(x * np.arange(200)))
    np.testing.assert_allclose(td.jit(td.grad(scan_sum))(x), np.arange(200.0))


def test_short_loop_is_unrolled():
    ir = td.make_ir(scan_sum, np.ones(4))
    assert loop_p not in _prims(ir)


def newton_sqrt(a):
    x = a
    while np.abs(x * x - a) > 1e-12:
        x = 0.5 * (x + a / x)
    return x


def test_while_value_and_reverse_gradient():
    assert np.isclose(_both(newton_sqrt, 2.0), np.sqrt(2.0))
    assert while_p in _prims(td.make_ir(newton_sqrt, 2.0))
    for grad in (td.grad(newton_sqrt), td.jit(td.grad(newton_sqrt))):
        assert np.isclose(grad(4.0), 0.25, rtol=1e-9)


def test_while_forward_mode_and_second_order():
    y, t = td.jvp(newton_sqrt, (4.0,), (1.0,))
    assert np.isclose(y, 2.0) and np.isclose(t, 0.25, rtol=1e-9)
    for hess in (td.grad(td.grad(newton_sqrt)), td.jit(td.grad(td.grad(newton_sqrt)))):
        assert np.isclose(hess(4.0), -1 / 32, rtol=1e-9)  # d2/dc2 sqrt(c) = -c**-1.5 / 4
    assert scan_p in _prims(td.make_ir(td.grad(td.grad(newton_sqrt)), 4.0))


def test_loop_appending_to_a_list_is_unrolled():
    def f(x):
        out = []
        for i in range(12):  # a staged body would leave a region's value in the list
            out.append(x[i] * 2)
        return np.sum(np.stack(out))

    x = np.arange(12.0)
    assert _both(f, x) == 132.0
    np.testing.assert_allclose(td.grad(f)(x), 2 * np.ones(12))


def test_break_in_a_loop():
    def f(x):
        s = 0.0
        for i in range(5):
            s = s + x[i]
            if s > 1.0:
                break
        return s

    assert _both(f, np.array([0.5, -0.2, 0.3, 0.9, 0.1])) == 1.5
    assert _both(f, np.full(5, 0.1)) == pytest.approx(0.5)


def test_thomas_solver_is_linear_in_n():
    def thomas(a, b, c, d):
        n = d.shape[0]
        cp = np.zeros(n)
        dp = np.zeros(n)
        x = np.zeros(n)
        cp[0] = c[0] / b[0]
        dp[0] = d[0] / b[0]
        for i in range(1, n):
            m = b[i] - a[i] * cp[i - 1]
            cp[i] = c[i] / m
            dp[i] = (d[i] - a[i] * dp[i - 1]) / m
        x[n - 1] = dp[n - 1]
        for i in range(n - 2, -1, -1):
            x[i] = dp[i] - cp[i] * x[i + 1]
        return np.sum(x * x)

    rng = np.random.default_rng(0)
    n = 30
    a, c, d = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n), rng.normal(size=n)
    b = 4 + rng.uniform(0, 1, n)
    _both(thomas, a, b, c, d)
    g = td.jit(td.grad(thomas, argnums=(0, 1, 2, 3)))(a, b, c, d)
    want = td.grad(thomas, argnums=(0, 1, 2, 3))(a, b, c, d)
    for x, y in zip(g, want):
        np.testing.assert_allclose(x, y, rtol=1e-12)
    td.check_grads(thomas, (a, b, c, d), order=1, modes=("rev",))
    # the compiled stores are in place: no copy of an n-array inside the loops
    src = td.dump(td.jit(td.grad(thomas, argnums=3)), a, b, c, d, stage="source")
    body = src[src.index("for ") :]
    assert ".copy()" not in "\n".join(ln for ln in body.splitlines() if ln.startswith("        "))


# --- in-place updates and aliasing ----------------------------------------------------


def test_alias_and_view_updates_follow_numpy():
    def f(x, X):
        y = x
        y += 1.0  # x changes too
        v = X[0]
        v *= 2.0  # a view: X changes
        t = X.T
        t[1] = x[:2]  # X[:, 1] = x[:2]
        return np.sum(x * y) + np.sum(X * X)

    x, X = np.array([1.0, 2.0, 3.0]), np.arange(4.0).reshape(2, 2)
    x0, X0 = x.copy(), X.copy()
    _both(f, x, X)
    np.testing.assert_array_equal(x, x0)  # the caller's arrays are never written
    np.testing.assert_array_equal(X, X0)
    td.check_grads(f, (x, X), order=2)


def test_numpy_array_filled_with_traced_values():
    def f(x):
        h = np.zeros(3)
        h[0] = x[1]
        h[1:] += x[:2] ** 2
        return h

    np.testing.assert_array_equal(_both(f, np.array([1.0, 2.0, 3.0])), [2.0, 1.0, 4.0])


TABLE = np.arange(10.0) ** 2
EMBED = np.arange(20.0).reshape(10, 2)


def test_numpy_table_indexed_by_traced_values():
    """A NumPy lookup table or embedding indexed by a traced index (an argument, or
    computed), also on the left of `+=`: NumPy's own indexing cannot take a traced index."""

    def lookup(x, idx):
        return np.sum(x * TABLE[idx])

    def embed(x, idx):
        return np.sum(EMBED[idx, :] * x[:, None]) + np.sum(EMBED[idx][:, 1])

    def scatter(x, idx):
        y = np.zeros(5)
        y[idx] += x  # repeated indices: the last store wins, as in NumPy
        return np.sum(y * np.arange(5.0))

    def computed(x):
        return np.sum(TABLE[(x * 2).astype(np.int64)] * x)

    x, idx = np.array([1.0, 2.0, 3.0]), np.array([4, 1, 4])
    cases = [
        (lookup, (x, idx), 66.0, [16.0, 1.0, 16.0]),
        (embed, (x, idx), 99.0, [17.0, 5.0, 17.0]),
        (scatter, (x, idx), 14.0, [0.0, 1.0, 4.0]),
        (computed, (x,), 144.0, [4.0, 16.0, 36.0]),
    ]

    def row_update(x):  # a row of an array the function made, picked by a traced scalar
        y = np.zeros((3, 2))
        y[np.argmax(x)] += x[:2]
        return np.sum(y * np.arange(6.0).reshape(3, 2))

    def row_by_array(x):
        return np.sum(EMBED[np.atleast_1d(np.argmax(x))][0] * x[:2])

    cases += [(row_update, (x,), 14.0, [4.0, 5.0, 0.0]), (row_by_array, (x,), 14.0, [4.0, 5.0, 0.0])]
    for f, args, value, grad in cases:
        assert _both(f, *args) == value
        np.testing.assert_array_equal(td.grad(f)(*args), grad)
        np.testing.assert_array_equal(td.jit(td.grad(f))(*args), grad)

    def row_view(x):  # NumPy gives a view of EMBED, which a traced copy could not follow
        return np.sum(EMBED[np.argmax(x)] * x[:2])

    with pytest.raises(td.TracerError, match=r"float64\[10, 2\] with traced values .*np.atleast_1d"):
        td.grad(row_view)(x)


def test_add_at_accumulates_repeated_indices():
    def f(w):
        h = np.zeros(3)
        np.add.at(h, np.array([0, 0, 2]), w)
        return h * h

    w = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(_both(f, w), [9.0, 0.0, 9.0])
    td.check_grads(lambda w: np.sum(f(w)), (w,), order=2)


def test_view_chosen_by_a_traced_branch_is_not_written_through():
    def f(X, s):
        if s > 0:
            v = X[0]
        else:
            v = X[1]
        v += 1.0  # which row would change depends on s: refused
        return np.sum(X)

    with pytest.raises(td.TracerError, match="copy it first"):
        td.jit(f)(np.ones((2, 2)), 1.0)


def test_traced_index_out_of_bounds_raises():
    def f(x, i):
        return x[i] * 2

    for target in ("interpret", "cpu"):
        with pytest.raises(IndexError, match="out of bounds"):
            td.jit(f, target=target)(np.ones(3), np.int64(3))
        assert td.jit(f, target=target)(np.arange(3.0), np.int64(-1)) == 4.0


# --- what the conversion keeps --------------------------------------------------------


def test_errors_name_the_users_line():
    def f(x):
        if x > 0:  # an array condition: ambiguous, as in NumPy
            return np.sum(x)
        return 0.0

    line = f.__code__.co_firstlineno + 1
    with pytest.raises(ValueError, match=rf"ambiguous.*test_control.py:{line}\b"):
        td.grad(f)(np.ones(2))


def test_branches_must_agree_on_types():
    def f(x):
        if np.sum(x) > 0:
            y = x[:2]
        else:
            y = x
        return np.sum(y)

    with pytest.raises(
        td.TracerError, match=r"'y' different types: f64\[2\] and f64\[3\]|f64\[3\] and f64\[2\]"
    ):
        td.jit(f)(np.ones(3))


def test_lambdas_and_called_functions_are_converted():
    def helper(x):
        return np.sum(x) if np.sum(x) > 0 else -np.sum(x)

    g = lambda x: helper(x) * 2.0  # noqa: E731
    assert td.jit(g)(-np.ones(3)) == 6.0
    np.testing.assert_array_equal(td.grad(g)(-np.ones(3)), -2 * np.ones(3))


def test_and_or_not_on_traced_values():
    def f(x):
        s = np.sum(x)
        inside = s > 0 and s < 10
        return 1.0 if inside or not (s > -1) else -1.0

    assert _both(f, np.ones(3)) == 1.0
    assert _both(f, -np.ones(3) * 0.1) == -1.0
    assert _both(f, -np.ones(3)) == 1.0


def test_and_or_run_their_right_side_only_where_python_does():
    """`x and np.sqrt(x)` at 0 is x, with derivative 1: the right side is a branch, not
    computed and discarded (its derivative, infinite at 0, gave 0 * inf = NaN)."""

    def f(x):
        return x and np.sqrt(x)

    def g(x):
        return x and np.log(x) or 2.0 * x  # log(x) at x = 0.5, 2x at 0 and 1

    for grad in (td.grad(f), td.jit(td.grad(f), eager_first=False)):
        assert grad(0.0) == 1.0 and grad(4.0) == 0.25
    np.testing.assert_array_equal(td.vmap(td.grad(f))(np.array([0.0, 4.0])), [1.0, 0.25])
    np.testing.assert_array_equal(td.vmap(td.grad(g))(np.array([0.0, 0.5, 1.0])), [2.0, 2.0, 2.0])


# --- loops differentiate to any order, with checkpoints if asked ----------------------


def rnn(x, w):
    h = np.zeros(x.shape[1])
    for t in range(x.shape[0]):  # a counted loop (not unrolled)
        h = np.tanh(w * h + x[t])
    return np.sum(h * h)


def spring(p0, k):
    p, v, t = p0, np.zeros_like(p0), 0.0
    while t < 3.0:  # an adaptive step: the trip count depends on the values
        a = -k * p - 0.1 * v * np.abs(v)
        dt = 0.2 / (1.0 + np.max(np.abs(a)))
        v = v + dt * a
        p = p + dt * v
        t = t + dt
    return np.sum(p * p) + np.sum(v * v)


def nested(x, w):
    s = x * 1.0
    for i in range(12):
        while np.sum(s * s) > 1.0:  # a while loop inside a counted one
            s = s * w
        s = s + 0.3 * np.sin(s + i)
    return np.sum(s * s)


def _scan_rows(ir) -> list[int]:
    """The leading dimension of every array a scan stacks (its tapes), in all regions."""
    out = []
    for e in ir.eqns:
        if e.prim is scan_p:
            out += [v.aval.shape[0] for v in e.outvars[e.params["n_carry"] + 1 :]]
        for v in e.params.values():
            for sub in v if isinstance(v, tuple) else (v,):
                if hasattr(sub, "eqns"):
                    out += _scan_rows(sub)
    return out


LOOP_CASES = [
    (rnn, (np.random.default_rng(0).uniform(-1, 1, (50, 3)), 0.7)),
    (spring, (np.random.default_rng(1).standard_normal(6), np.float64(2.0))),
    (nested, (np.array([0.9, -0.4, 0.7]), 0.6)),
]


@pytest.mark.parametrize("f, args", LOOP_CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_loops_differentiate_to_second_order(f, args):
    td.check_grads(f, args, order=2)
    hess = td.grad(td.grad(f, argnums=1), argnums=1)
    np.testing.assert_allclose(td.jit(hess)(*args), hess(*args), rtol=1e-10)
    assert scan_p in _prims(td.make_ir(hess, *args))


@pytest.mark.parametrize("k", [1, 7, 10])
@pytest.mark.parametrize("f, args", LOOP_CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_loop_checkpoints_give_the_same_gradient(f, args, k):
    want = td.grad(f, argnums=(0, 1))(*args)
    for g in (
        td.grad(f, argnums=(0, 1), loop_checkpoint=k),
        td.jit(td.grad(f, argnums=(0, 1), loop_checkpoint=k)),
    ):
        for a, b in zip(g(*args), want):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    if k == 7:  # and they differentiate again
        g2 = td.grad(td.grad(f, argnums=1, loop_checkpoint=k), argnums=1)
        np.testing.assert_allclose(g2(*args), td.grad(td.grad(f, argnums=1), argnums=1)(*args), rtol=1e-10)


def test_loop_checkpoints_bound_the_tape():
    x = np.random.default_rng(2).uniform(-1, 1, (1000, 3))
    plain = td.make_ir(td.grad(rnn, argnums=1), x, 0.5)
    assert 1000 in _scan_rows(plain)  # a tape row per iteration
    ir = td.make_ir(td.grad(rnn, argnums=1, loop_checkpoint=25), x, 0.5)
    rows = _scan_rows(ir)
    assert 40 in rows and all(r in (40, -1) for r in rows), rows  # a checkpoint per block
    np.testing.assert_allclose(
        td.jit(td.grad(rnn, argnums=1, loop_checkpoint=25))(x, 0.5),
        td.grad(rnn, argnums=1)(x, 0.5),
        rtol=1e-12,
    )


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_loop_checkpoint_must_be_a_positive_int(bad):
    with pytest.raises(TypeError, match="loop_checkpoint must be a positive int"):
        td.grad(rnn, loop_checkpoint=bad)


def _body_prims(ir, prim) -> list:
    """The primitives inside the bodies of `prim` equations (fused regions opened)."""
    return [p for e in ir.eqns if e.prim is prim for p in _prims(e.params["body"])]


def test_loop_invariant_code_is_hoisted():
    def f(x, c):
        for i in range(20):
            x = x * np.exp(c) + np.sum(np.cos(c)) * i  # exp(c) and the sum: loop invariants
        return x

    x, c = np.linspace(0.0, 1.0, 5), np.linspace(-1.0, 0.5, 5)
    ir = td.make_ir(td.jit(f), x, c, stage="optimized")
    inside = {p.name for p in _body_prims(ir, loop_p)}
    assert not inside & {"exp", "cos", "reduce_sum"}, inside
    _both(f, x, c)
    td.check_grads(f, (x, c), order=1)


def test_dead_loop_values_are_pruned():
    def f(x, w):
        y, n = x * 1.0, x * 0.0
        for _ in range(100):
            y = np.sin(y * w)
            n = n + y * y  # never read afterwards: the loop stops carrying it
        return np.sum(y)

    x = np.linspace(0.1, 1.0, 4)
    ir = td.make_ir(td.jit(f), x, 0.9, stage="optimized")
    (loop,) = [e for e in ir.eqns if e.prim is loop_p]
    assert loop.params["n_carry"] == 1
    # forward mode through the loop carries tangents, not the sums of the invariants' cotangents
    jv = td.make_ir(td.jit(lambda x, t: td.jvp(f, (x, 0.9), (t, 0.0))[1]), x, x, stage="optimized")
    scans = [e for e in jv.eqns if e.prim is scan_p]
    assert scans and all(e.params["n_carry"] <= 2 for e in scans), [e.params["n_carry"] for e in scans]
    np.testing.assert_allclose(
        td.jit(lambda x, t: td.jvp(f, (x, 0.9), (t, 0.0))[1])(x, x),
        td.jvp(f, (x, 0.9), (x, 0.0))[1],
        rtol=1e-12,
    )


def test_dump_shows_the_converted_python():
    def helper(v):
        return np.maximum(v, 0.0)

    def f(x):
        if np.sum(x) > 0:
            x = helper(x)
        return np.sum(x)

    text = td.dump(td.grad(f), np.ones(3), stage="python")
    assert "_td_.if_stmt(" in text and "def f(x):" in text and "def helper(v):" in text
    assert "== python ==" in td.dump(f, np.ones(3), stage="all")


def test_dump_of_converted_slices_is_python():
    """Converted code passes indexes to helpers; a slice among them printed as a bare
    `:-1` argument, and td.dump raised SyntaxError re-reading its own source."""

    def f(ws, x):
        y = np.zeros(4)
        for w in ws[:-1]:  # (an MLP's `for W, b in params[:-1]`)
            x = np.tanh(x * w)
        y[1:] = x[::-1]
        y[:2, ...] += x[0]
        return np.sum(y * y)

    ws, x = [np.full(3, 0.5), np.full(3, 2.0), np.ones(3)], np.array([0.3, -0.2, 0.7])
    text = td.dump(td.grad(f, argnums=1), ws, x, stage="python")
    ast.parse(text)
    assert "_td_.index[:-1]" in text and "_td_.index[1:]" in text and "_td_.index[:2, ...]" in text
    td.check_grads(lambda x: f(ws, x), (x,), order=1)


def _rk2(z0, p):
    z = z0
    for _ in range(20):  # a compiled loop; its backward resets three carries to one zero
        k1 = np.array([p[0] * z[0], p[1] * z[1]])
        w = z + 0.025 * k1
        k2 = np.array([p[0] * w[0], p[1] * w[1]])
        z = z + 0.05 * k2
    return np.sum(z**2)


def test_loop_results_never_share_a_buffer():
    """A loop body whose results were one array (three carries of the backward reset
    to the same zeros) passed them on as one buffer: the next iteration's in-place
    update of one carry changed the others (jit(grad) 6x off, found by a bug hunt)."""
    z0, p = np.array([1.0, 0.5]), np.array([1.1, 0.4])
    want = td.grad(_rk2, argnums=(0, 1))(z0, p)
    got = td.jit(td.grad(_rk2, argnums=(0, 1)), eager_first=False)(z0, p)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    td.check_grads(_rk2, (z0, p), order=1, modes=("rev",))


def _reset_each_step(x):
    s = 0.0
    a, b = np.zeros(3), np.zeros(3)
    for step in range(20):  # a loop (it uses its counter): each carry ends as a literal
        a[0] = a[0] + x[0] + step
        b[1] = b[1] + x[1] + step
        s = s + np.sum(a) * np.sum(b)
        a, b = np.zeros(3), np.zeros(3)
    return s


def test_interpreted_loop_never_writes_into_a_literal():
    """Carries reset to `np.zeros(3)` each step were the literal's own array: the
    interpreter's next in-place update wrote into the program's constant (3080 came
    out as 25937, and its gradient was wrong; a bug hunt)."""
    x = np.array([1.0, 2.0, 3.0])
    for f in (td.jit(_reset_each_step, target="interpret"), td.jit(_reset_each_step, eager_first=False)):
        assert f(x) == _reset_each_step(x) == f(x)  # twice: the constant is intact
    td.check_grads(_reset_each_step, (x,), order=1, modes=("rev",))


def _alias_before_loop(x):
    y = x.copy()
    z = y  # the same array as y
    v = y[1:]  # a view of it
    for i in range(20):  # a compiled loop updating y in place only
        y[i % 3] = y[i % 3] * 1.1 + 1.0
    while y[0] < 50.0:  # and a traced while
        y[0] = y[0] * 2.0
    return np.sum(z * z) + np.sum(v * x[1:])


def test_a_loop_updates_the_array_every_alias_sees():
    """`z = y` or a view of y taken before a compiled loop that updates y in place:
    the loop's result went to the name y only, and z kept the value from before the
    loop (NumPy: z is y; a bug hunt)."""
    x = np.array([1.0, 0.5, -0.25])
    want = _alias_before_loop(x)
    for f in (td.jit(_alias_before_loop, target="interpret"), td.jit(_alias_before_loop, eager_first=False)):
        np.testing.assert_allclose(f(x), want, rtol=1e-13)
    td.check_grads(_alias_before_loop, (x,), order=1, modes=("rev",))


def _numpy_functions_named_like_methods(x):
    out, s = np.zeros(0), np.zeros(2)
    for i in range(3):  # np.append/np.add/np.sort: `np` is no list changed by a method
        out = np.append(out, x[i] ** 2)
        s = np.add(s, x[i : i + 2]) + np.sort(x)[i]
    if np.sum(x) > 0:
        s = np.add(s, 1.0)
    return np.sum(out) + np.sum(s * s)


def test_numpy_functions_named_like_list_methods_convert():
    """`np.add(...)` inside a loop or traced `if` made the converter carry a local
    `np` (add/append/sort are also set/list methods): UnboundLocalError (a bug hunt)."""
    x = np.array([0.5, -1.0, 2.0, 0.25])
    f = _numpy_functions_named_like_methods
    np.testing.assert_allclose(td.jit(f, target="interpret")(x), f(x), rtol=1e-14)
    td.check_grads(f, (x,), order=1, modes=("rev",))


def _until_large(x, n=30):
    s = x * 0.0
    for i in range(n):
        t = np.sin(x * (i + 1)) * 0.3  # defined in the body, read after the loop
        s = s + t * x
        if np.sum(s * s) > 4.0:
            break
    return np.sum(s * s) + np.sum(t)


def _bisect(c, n=200):
    lo, hi = 0.0, 10.0
    for _ in range(n):
        mid = 0.5 * (lo + hi)  # (only in the body)
        if mid * mid - c > 0:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-10:
            break
    return 0.5 * (lo + hi)


def test_for_loop_with_a_traced_break_is_one_while():
    """A long `for` with a traced `break` was unrolled into nested branches: a
    200-step bisection made 6,400 lines and minutes of compiling (a bug hunt). It
    is one `while` carrying the counter; values and gradients as in Python."""
    x = np.array([0.7, -0.4, 1.1])
    ir = td.make_ir(_bisect, 2.0, stage="optimized")
    assert [e.prim.name for e in ir.eqns].count("while") == 1 and len(ir.eqns) < 10
    np.testing.assert_allclose(td.jit(_bisect, eager_first=False)(2.0), np.sqrt(2.0), rtol=1e-10)
    for f in (td.jit(_until_large, target="interpret"), td.jit(_until_large, eager_first=False)):
        np.testing.assert_allclose(f(x), _until_large(x), rtol=1e-14)
    want = td.grad(_until_large)(x)
    np.testing.assert_allclose(td.jit(td.grad(_until_large), eager_first=False)(x), want, rtol=1e-12)
    td.check_grads(_until_large, (x,), order=1, modes=("rev",))


def _return_from_nested_loops(x):
    s = 0.0
    for i in range(4):
        for j in range(3):
            s = s + x[i] * x[j]
            if s > 2.0:
                return s * 10.0  # leaves both loops
        s = s * 0.5
    return -s


def _return_from_while(x):
    y = x * 1.0
    k = 0
    while k < 50:
        y = y * 1.1
        if np.sum(y) > 5.0:
            return np.sum(y * y)
        k += 1
    return 0.0


def _return_a_row(x):
    for r in x[:3]:  # (unrolled: three rows)
        if np.sum(r) > 0:
            return r * 2.0
    return x[0]


def test_return_inside_loops():
    """A `return` inside a loop, under a traced `if`, stores its value, sets a flag
    and breaks; after the loop `if flag: return value`. Such loops ran as Python
    and raised on the traced test (a bug hunt)."""
    for x in (np.linspace(0.1, 1.0, 10), np.linspace(0.01, 0.02, 10), np.linspace(-1.0, -0.55, 10)):
        for f, args in (
            (_return_from_nested_loops, (x,)),
            (_return_from_while, (x,)),
            (_return_a_row, (x.reshape(5, 2),)),
        ):
            for g in (td.jit(f, target="interpret"), td.jit(f, eager_first=False)):
                np.testing.assert_allclose(g(*args), f(*args), rtol=1e-13)
        td.check_grads(_return_from_while, (x,), order=1, modes=("rev",))
        td.check_grads(_return_from_nested_loops, (x,), order=1, modes=("rev",))


def _return_after_a_loop_in_a_branch(x):
    if x.sum() > 0:  # a traced if whose branch holds a loop and then returns
        for _ in range(3):
            x = x * 1.5
        return np.sum(x**2)
    return -np.sum(x)


def _return_from_a_loop_in_a_branch(x):
    if x[0] > 0:
        for i in range(4):
            if x[i] > 1:
                return x[i] * 2.0
        return -1.0 * x[0]
    return np.sum(x)


def test_return_in_a_branch_that_holds_a_loop():
    """A traced `if` whose branch holds a loop and returns was left unconverted
    (a TracerError at the `if`; a bug hunt)."""
    for x in ([0.3, -0.7, 1.2, 0.5], [-0.3, -0.7, 1.2, 0.5], [2.3, 0.7, 1.2, 0.5], [0.3, 0.7, 0.2, 0.5]):
        x = np.array(x)
        for f in (_return_after_a_loop_in_a_branch, _return_from_a_loop_in_a_branch):
            for g in (td.jit(f, target="interpret"), td.jit(f, eager_first=False)):
                np.testing.assert_allclose(g(x), f(x), rtol=1e-13)
            td.check_grads(f, (x,), order=1, modes=("rev",))


def _scale_rows(X):
    for i, row in enumerate(X):  # writes the rows it iterates over
        X[i] = row * (i + 1)
    return np.sum(X * X)


def _bump_first_row(X):
    s = 0.0
    for row in X:  # row 0 sees the update of its own iteration
        X[0] += 1.0
        s = s + np.sum(row)
    return s


def _first_above(x):
    s = 0.0
    for i in range(4):  # unrolled, with a traced break
        s = s + x[i] ** 2
        if s > 0.5:
            break
    return s * i  # the index the loop broke at, as in Python


def test_loops_over_arrays_they_update_and_targets_after_a_break():
    """Three wrong numbers from a bug hunt: a long loop over the rows of an array
    its body updates in place applied each update twice (a staged loop, then an
    unrolled rerun after a stale view failed to refresh) or read the rows as they
    were before the loop; after an unrolled loop's traced break, the loop variable
    held the last item instead of the one the loop broke at."""
    for n in (4, 10, 20):
        X = np.linspace(0.5, 1.5, 2 * n).reshape(n, 2)
        for f in (_scale_rows, _bump_first_row):
            for g in (td.jit(f, target="interpret"), td.jit(f, eager_first=False)):
                np.testing.assert_allclose(g(X.copy()), f(X.copy()), rtol=1e-13)
            td.check_grads(f, (X,), order=1, modes=("rev",))
    x = np.array([0.3, -0.7, 1.2, 0.5])
    for g in (td.jit(_first_above, target="interpret"), td.jit(_first_above, eager_first=False)):
        np.testing.assert_allclose(g(x), _first_above(x), rtol=1e-13)
    np.testing.assert_allclose(td.grad(_first_above)(x), [0.6, -1.4, 0.0, 0.0])


def _update_then_rebind(x):
    y = x.copy()
    z = y  # shares y's array until the loop rebinds y
    for i in range(20):
        y[i % 3] = y[i % 3] + 1.0  # reaches z in the first iteration only
        y = y * 1.01
    return np.sum(z * x) + np.sum(y * y)


def test_a_loop_that_updates_then_rebinds_reaches_the_old_array_once():
    """A body that updates y in place and then rebinds it: in NumPy the first
    iteration's update reaches the array y held before the loop (and z); the loop's
    results could not (z lost that update). The first iteration runs as Python."""
    x = np.array([1.0, 2.0, 3.0])
    f = _update_then_rebind
    assert [e.prim.name for e in td.make_ir(f, x, stage="optimized").eqns].count("loop") == 1
    for g in (td.jit(f, target="interpret"), td.jit(f, eager_first=False)):
        np.testing.assert_allclose(g(x), f(x), rtol=1e-14)
    td.check_grads(f, (x,), order=1, modes=("rev",))


def test_jacobians_and_hessians_through_a_while_loop():
    def f(x):
        y = x * 1.0
        while np.sum(y * y) > 1.0:  # converted inside td.jacfwd/jacrev/hessian too
            y = y * 0.9 + 0.01 * np.sin(y)
        return y**3

    x = np.array([1.0, 2.0, -0.5])
    jr, jf = td.jacrev(f)(x), td.jacfwd(f)(x)
    np.testing.assert_allclose(jr, jf, rtol=1e-12, atol=1e-15)
    hess = td.hessian(lambda x: np.sum(f(x)))
    h = hess(x)
    np.testing.assert_allclose(td.jit(hess)(x), h, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(h, h.T, rtol=1e-12, atol=1e-15)
    td.check_grads(lambda x: np.sum(f(x)), (x,), order=2)


def test_a_while_loops_tape_buffers_are_reused_across_calls_and_threads():
    import threading

    def f(p, k):
        t = 0.0
        while t < 2.0:  # the trip count depends on k: tapes of different lengths
            p = p - 0.05 * k * np.sin(p)
            t = t + 0.05 * (1.0 + np.max(np.abs(p)))
        return np.sum(p * p)

    p = np.random.default_rng(3).standard_normal(10_000)  # rows of 80 kB: a pooled tape
    g = td.jit(td.grad(f, argnums=(0, 1)), eager_first=False)  # (the compiled tapes)
    g(p, 1.0)
    assert "pool.pop()" in g.entry(p, 1.0).runner.call_src
    cases = [(p, 1.0), (p * 3.0, 0.5), (p * 0.1, 2.0), (p, 1.0)]
    want = [td.grad(f, argnums=(0, 1))(*c) for c in cases]
    for c, w in zip(cases, want):  # longer and shorter tapes in turn
        for a, b in zip(g(*c), w):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)
    got = [None] * 8

    def work(i):
        got[i] = g(*cases[i % 4])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        for a, b in zip(got[i], want[i % 4]):
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)


def test_hessian_of_a_loop_with_a_branch_compiles():
    """The Hessian of a compiled loop holding a value-dependent `if`: its kernel takes
    many constant arrays, and their names once collided with a loop counter's
    (`for k10 in range(...)` rebinding the constant `k10`: a Numba TypingError)."""

    def f(x):
        s = 0.0
        for i in range(x.shape[0]):
            if x[i] > 0:
                s = s + x[i] ** 3
            else:
                s = s + np.sin(x[i]) * x[0]
        return s

    x = np.random.default_rng(0).standard_normal(12)
    want = td.hessian(f)(x)
    got = td.jit(td.hessian(f), eager_first=False)(x)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    d = np.where(x > 0, 6 * x, -np.sin(x) * x[0])  # the diagonal by hand (x[0]'s entry aside)
    np.testing.assert_allclose(np.delete(np.diag(got), 0), np.delete(d, 0), rtol=1e-12)


def test_unused_counter_loop_unrolls_only_a_small_body():
    """A `for _ in range(40)` is unrolled while 40 copies of its body stay small (fusion
    then runs through the steps), else it is one `loop` (40 RK4 steps once unrolled
    into a kernel Numba could not compile)."""

    def chain(x, w):
        for _ in range(40):
            x = x + 0.1 * np.tanh(x * w)
        return np.sum(x * x)

    def rk4(theta, y):
        dt = 0.05
        for _ in range(40):
            k1 = -theta[0] * y + np.sin(theta[1] * y)
            k2 = -theta[0] * (y + dt / 2 * k1) + np.sin(theta[1] * (y + dt / 2 * k1))
            k3 = -theta[0] * (y + dt / 2 * k2) + np.sin(theta[1] * (y + dt / 2 * k2))
            k4 = -theta[0] * (y + dt * k3) + np.sin(theta[1] * (y + dt * k3))
            y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return np.sum(y**2)

    x = np.linspace(-1, 1, 5)
    assert loop_p not in _prims(td.make_ir(chain, x, 0.7))
    th, y0 = np.array([0.7, 1.3]), np.array([0.1, -0.5, 1.0])
    ir = td.make_ir(rk4, th, y0)
    assert loop_p in _prims(ir) and len(ir.eqns) < 20

    _both(rk4, th, y0)  # NumPy, interpreted and compiled agree
    td.check_grads(rk4, (th, y0), order=1, modes=("rev",))


def _while_update_then_rebind(x):
    y = x.copy()
    z = y
    while np.sum(y) < 30.0:
        y[0] = y[0] + 1.0  # in NumPy: reaches z in the first iteration only
        y = y * 1.5
    return np.sum(z) + np.sum(y)


def test_a_traced_while_that_updates_then_rebinds_is_refused():
    """Its first iteration cannot run as Python (whether it runs is traced), and the
    loop's results cannot reach the array the name held before it: a clear error
    naming the line, never z without the first update."""
    x = np.array([1.0, 2.0])
    with pytest.raises(
        td.TracerError, match=r"updates 'y' in place and then rebinds it \(at test_control\.py:\d+\)"
    ):
        td.jit(_while_update_then_rebind, target="interpret")(x)


class _Layer:
    def __init__(self, w):
        self.w = w

    def __call__(self, v):
        if np.sum(v) > 0:  # a traced if in a callable object's __call__
            return np.tanh(v * self.w)
        return v * 0.1


def _scaled(v, s):
    if np.sum(v) > 0:
        return v * s
    return -v


def test_callable_objects_and_partials_are_converted():
    """A callable object's __call__ and a functools.partial's function were not
    converted (a TracerError at their traced if; a bug hunt)."""
    import functools

    layer = _Layer(0.7)
    part = functools.partial(_scaled, s=3.0)
    for x in (np.array([0.3, -0.7, 1.2, 0.5]), np.array([-0.3, -0.7, 1.2, -0.5])):
        for f in (layer, part, lambda x: np.sum(layer(x) ** 2) + np.sum(part(x))):
            want = f(x)
            np.testing.assert_allclose(td.jit(f, target="interpret")(x), want, rtol=1e-14)
            np.testing.assert_allclose(td.jit(f, eager_first=False)(x), want, rtol=1e-14)
        td.check_grads(lambda x: np.sum(layer(x) ** 2) + np.sum(part(x)), (x,), order=1, modes=("rev",))
