"""td.report: the NaN-unsafe-select check on a table of programs (both kinds),
td.jit(nan_safe=True), the other trust checks, and the cost model's figures."""

from __future__ import annotations

import numpy as np
import pytest

import tracediff as td

# --- programs whose gradient is NaN through an np.where, at the inputs below -------

X = np.array([0.0, 0.5, 2.0, -1.0, 3.0, 0.0, 1.5, -0.25])
W = np.array([0.3, -0.7, 1.1, 0.2, 0.9, -0.4, 0.6, 1.3])


def sqrt_at_zero(x):
    return np.sum(np.where(x > 0, np.sqrt(x), 0.0))


def sqrt_ge(x):  # sqrt'(0) = inf behind x >= 0 is still taken at 0: the masked side is x < 0
    return np.sum(np.where(x > 0.1, np.sqrt(x), x))


def log_at_zero(x):
    return np.sum(np.where(x > 0, np.log(x), 0.0))


def masked_division(x):
    return np.sum(np.where(x != 0, np.sin(x) / x, 1.0))


def division_by_masked_zero_w(w, x):
    return np.sum(np.where(x != 0, w / x, w))


def arcsin_at_boundary(x):
    u = x / 3.0
    return np.sum(np.where(np.abs(u) < 0.9, np.arcsin(u), u))


def power_half(x):
    return np.sum(np.where(x > 0, x**0.5, 0.0))


def false_side(x):  # the unsafe value on the false side
    return np.sum(np.where(x <= 0, 0.0, np.log(x) * x))


def nested(x):
    return np.sum(np.where(x > -0.5, np.where(x > 0, np.sqrt(x), 0.0), x))


def exp_overflow(x):
    big = x * 1000.0
    return np.sum(np.where(big < 100.0, np.exp(big), 0.0))


def reciprocal_2d(x):
    m = x.reshape(2, 4)
    return np.sum(np.where(m != 0, 1.0 / m, 0.0) ** 2)


def data_nan_times_weight(w, x):  # sqrt of data (NaN where x < 0) times the weight
    return np.sum(np.where(x >= 0, np.sqrt(x) * w, 0.0))


UNSAFE = [
    (sqrt_at_zero, (X,), 0),
    (sqrt_ge, (X,), 0),
    (log_at_zero, (X,), 0),
    (masked_division, (X,), 0),
    (division_by_masked_zero_w, (W, X), 0),
    (arcsin_at_boundary, (X * 3.0 + 0.5,), 0),
    (power_half, (X,), 0),
    (false_side, (X,), 0),
    (nested, (X,), 0),
    (exp_overflow, (X,), 0),
    (reciprocal_2d, (X,), 0),
    (data_nan_times_weight, (W, X), 0),
]


# --- programs whose gradient is finite (no finding expected) ---------------------


def relu(x):
    return np.sum(np.where(x > 0, x, 0.0) ** 2)


def double_where(x):
    safe = np.where(x > 0, x, 1.0)
    return np.sum(np.where(x > 0, np.sqrt(safe), 0.0))


def both_sides_smooth(x):
    return np.sum(np.where(x > 0, np.sin(x), np.cos(x)))


def sqrt_positive_inputs(x):  # sqrt is risky, but no untaken position is at the edge
    return np.sum(np.where(x > 0, np.sqrt(np.abs(x) + 1.0), 0.0))


def division_nonzero(x):
    return np.sum(np.where(x > 1, 1.0 / (x + 2.0), x))


def unsafe_on_data_only(w, x):  # log of data, not differentiated, and not multiplied by w
    return np.sum(np.where(x > 0, np.log(np.abs(x) + 1.0), 0.0) + w * w)


def shared_value(x):  # sqrt(x) is used elsewhere too: not the where's alone, the NaN is real
    s = np.sqrt(np.abs(x) + 1.0)
    return np.sum(np.where(x > 0, s, 0.0) + s)


def clip_like(x):
    return np.sum(np.where(x > 1, 1.0, np.where(x < -1, -1.0, x)) * 3.0)


def huber(x):
    a = np.abs(x)
    return np.sum(np.where(a < 1.0, 0.5 * x * x, a - 0.5))


def where_of_exp_small(x):
    return np.sum(np.where(x < 1.0, np.exp(x), 1.0 + x))


SAFE = [
    (relu, (X,), 0),
    (double_where, (X,), 0),
    (both_sides_smooth, (X,), 0),
    (sqrt_positive_inputs, (X,), 0),
    (division_nonzero, (X,), 0),
    (unsafe_on_data_only, (W, X), 0),
    (shared_value, (X,), 0),
    (clip_like, (X,), 0),
    (huber, (X,), 0),
    (where_of_exp_small, (X,), 0),
]


def _ids(table):
    return [f.__name__ for f, _, _ in table]


def _where_line(fn) -> int:
    import inspect

    lines, start = inspect.getsourcelines(fn)
    hits = [start + k for k, s in enumerate(lines) if "np.where(" in s and "safe = " not in s]
    return hits[-1]


@pytest.mark.parametrize("fn,args,argnums", UNSAFE, ids=_ids(UNSAFE))
def test_nan_unsafe_select_is_found_and_nan_safe_fixes_it(fn, args, argnums):
    r = td.report(fn, *args, argnums=argnums, target="interpret", measure=False)
    found = [f for f in r.findings if f.kind == "nan-unsafe-select"]
    assert found, str(r)
    assert found[0].line.endswith(f":{_where_line(fn)}"), (found[0].line, str(r))
    assert "nan_safe=True" in found[0].fix and "double where" in found[0].fix
    plain = td.jit(td.grad(fn, argnums), target="interpret")(*args)
    safe = td.jit(td.grad(fn, argnums), target="interpret", nan_safe=True)(*args)
    assert np.isnan(plain).any()
    assert np.isfinite(safe).all()
    # where the gradient was finite, nan_safe changes nothing
    ok = np.isfinite(plain)
    np.testing.assert_array_equal(safe[ok], plain[ok])


@pytest.mark.parametrize("fn,args,argnums", SAFE, ids=_ids(SAFE))
def test_safe_programs_have_no_nan_finding(fn, args, argnums):
    r = td.report(fn, *args, argnums=argnums, target="interpret", measure=False)
    assert "nan-unsafe-select" not in r.kinds(), str(r)
    assert "non-finite-gradient" not in r.kinds(), str(r)
    plain = td.jit(td.grad(fn, argnums), target="interpret")(*args)
    safe = td.jit(td.grad(fn, argnums), target="interpret", nan_safe=True)(*args)
    np.testing.assert_array_equal(plain, safe)


def test_nan_safe_compiled_matches_a_hand_written_double_where():
    def hand(x):
        c = x > 0
        return np.sum(
            np.where(c, np.sqrt(np.where(c, x, 1.0)), 0.0)
            + np.where(x != 0, np.sin(x) / np.where(x != 0, x, 1.0), 1.0)
        )

    def naive(x):
        return np.sum(np.where(x > 0, np.sqrt(x), 0.0) + np.where(x != 0, np.sin(x) / x, 1.0))

    for dt in (np.float32, np.float64):
        x = X.astype(dt)
        want = td.jit(td.grad(hand), eager_first=False)(x)
        assert np.isnan(td.jit(td.grad(naive), eager_first=False)(x)).any()
        got = td.jit(td.grad(naive), eager_first=False, nan_safe=True)(x)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        # second order through the guarded program (hessian of the taken side)
        h = td.jit(td.hessian(naive), target="interpret", nan_safe=True)(x)
        assert np.isfinite(h).all()


def test_nan_safe_under_an_outer_jit_of_a_training_step():
    def loss(w, x):
        return np.sum(np.where(x > 0, np.sqrt(x * w * w), 0.0))

    @td.jit(nan_safe=True, target="interpret")
    def step(w, x):
        return w - 0.1 * td.grad(loss)(w, x)

    w = np.ones(8)
    assert np.isfinite(step(w, X)).all()
    assert np.isnan(td.jit(lambda w, x: w - 0.1 * td.grad(loss)(w, x), target="interpret")(w, X)).any()


# --- the other checks --------------------------------------------------------------------


def test_promotion_and_int_argnum_and_finite_difference_checks():
    def promoted(w, n):
        return np.sum((w * np.float64(2.0)) ** 2) * n

    w = np.arange(1.0, 5.0, dtype=np.float32)
    r = td.report(promoted, w, 3, argnums=(0, 1), target="interpret", measure=False)
    kinds = r.kinds()
    assert "promotion" in kinds and "int-argnum" in kinds, str(r)
    assert r.fd is not None and r.fd[2] < 1e-2  # float32 gradient against a float64 difference

    def wrong(x):  # a custom rule off by a factor: the finite-difference check sees it
        return np.sum(bad_square(x))

    r = td.report(wrong, np.linspace(0.5, 2.0, 6), target="interpret", measure=False)
    assert "finite-differences" in r.kinds(), str(r)


@td.custom_vjp
def bad_square(x):
    return x * x


def _bad_fwd(x):
    return x * x, x


def _bad_bwd(x, ct):
    return (3.0 * x * ct,)


bad_square.defvjp(_bad_fwd, _bad_bwd)


def test_long_float32_sum_is_flagged():
    def total(x):
        return np.sum(x * x)

    ir_len = 10_000_001
    x = np.ones(ir_len, np.float32)
    from tracediff.report.checks import float32_sums

    found = float32_sums(td.make_ir(total, x))
    assert found and found[0].kind == "float32-sum"
    assert not float32_sums(td.make_ir(total, np.ones(1000, np.float32)))


# --- the cost model --------------------------------------------------------------------


def mlp_loss(w1, w2, x, y):
    h = np.tanh(x @ w1)
    return np.mean((h @ w2 - y) ** 2)


def test_report_of_an_mlp_counts_flops_bytes_and_kept_memory():
    rng = np.random.default_rng(0)
    m, d, k, o = 512, 256, 512, 8
    x, y = rng.standard_normal((m, d)), rng.standard_normal((m, o))
    w1, w2 = rng.standard_normal((d, k)) * 0.05, rng.standard_normal((k, o)) * 0.05
    r = td.report(mlp_loss, w1, w2, x, y, argnums=(0, 1))
    fwd, grad = r.forward, r.gradient
    # the forward's matrix products, exactly; the gradient does three more
    assert fwd.cost.total.gemm_flops == 2 * m * d * k + 2 * m * k * o
    assert grad.cost.total.gemm_flops == 2 * (2 * m * d * k + 2 * m * k * o) + 2 * m * k * o
    # the backward reads tanh(x @ w1) (or its derivative): at least one m x k array kept
    assert grad.cost.kept_bytes >= m * k * 8
    # memory: what is kept is alive at once, so the measured peak holds it
    if grad.peak_measured is not None:
        assert grad.peak_measured >= 0.9 * grad.cost.kept_bytes, str(r)
        assert grad.peak_measured <= 3 * grad.cost.peak_bytes + (4 << 20), str(r)
    assert fwd.seconds > 0 and grad.seconds > 0 and r.ratio is not None
    assert fwd.loops and grad.loops and fwd.compile_s is not None
    text = str(r)
    for needle in ("kept for the backward", "t(grad)/t(f)", "costliest source lines", "checks:"):
        assert needle in text
    assert "<table>" in r._repr_html_()
    dot = td.report(mlp_loss, w1, w2, x, y, argnums=(0, 1), format="dot", measure=False)
    assert dot.startswith("digraph") and "keeps" in dot and "FLOP" in dot


def test_report_command_line(tmp_path):
    import subprocess
    import sys

    src = tmp_path / "model.py"
    src.write_text(
        "import numpy as np\n\ndef loss(w, x):\n    return np.sum(np.where(x > 0, np.sqrt(x), 0.0) * w)\n"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracediff",
            "report",
            f"{src}:loss",
            "--arg",
            "w=f64[16]",
            "--arg",
            "x=f64[16]",
            "--grad",
            "0,1",
            "--target",
            "interpret",
            "--no-measure",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "nan-unsafe-select" in out.stdout and "model.py:4" in out.stdout


# --- selects inside loops and branches ---------------------------------------------------


def in_a_loop(x):
    s = 0.0
    for _ in range(3):
        x = np.where(x > 0, np.sqrt(x), x * 0.5)
        s = s + np.sum(x)
    return s


def in_a_branch(x):
    if np.sum(x) > 0:
        y = np.where(x > 0, np.log(x), 0.0)
    else:
        y = x
    return np.sum(y)


def in_a_while(x):
    while np.sum(x) < 10.0:
        x = np.where(x > 0, np.sqrt(x) + x, x + 1.0)
    return np.sum(x)


CONTROL = [in_a_loop, in_a_branch, in_a_while]


@pytest.mark.parametrize("fn", CONTROL, ids=[f.__name__ for f in CONTROL])
def test_selects_in_loops_and_branches(fn):
    x = np.array([0.0, 1.0, -2.0, 4.0])
    r = td.report(fn, x, target="interpret", measure=False)
    found = [f for f in r.findings if f.kind == "nan-unsafe-select"]
    assert found and found[0].line.endswith(f":{_where_line(fn)}"), str(r)
    for target in ("interpret", "cpu"):
        plain = td.jit(td.grad(fn), target=target, eager_first=False)(x)
        safe = td.jit(td.grad(fn), target=target, eager_first=False, nan_safe=True)(x)
        assert np.isnan(plain).any() and np.isfinite(safe).all()
        ok = np.isfinite(plain)
        np.testing.assert_allclose(safe[ok], plain[ok], rtol=1e-15)
    # inside the domain everywhere, the NaN-safe gradient is the gradient
    xn = np.array([0.3, 1.0, 2.0, 4.0])
    np.testing.assert_allclose(
        td.jit(td.grad(fn), target="interpret", nan_safe=True)(xn), td.grad(fn)(xn), rtol=1e-15
    )
