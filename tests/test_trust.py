"""Regression tests of the defects found when tracediff was tried as a new user would
(issue 10): aliasing, argument checks, exact rewrites, integer semantics, threads,
caching, randomness, complex inputs and exceptions."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest

import tracediff as td
from tracediff import staging
from tracediff.backend import cache
from tracediff.core import with_context

TARGETS = ["interpret", "cpu"]


def same_bits(a, b) -> bool:
    """Equal values, NaNs in the same places, zeros of the same sign, same dtype."""
    a, b = np.asarray(a), np.asarray(b)
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and np.array_equal(a, b, equal_nan=True)
        and np.array_equal(np.signbit(a), np.signbit(b))
    )


# --- 1. no result aliases the caller's data -----------------------------------------


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("n", [10, 100])  # small constants were folded, large ones held by reference
def test_gradient_is_not_the_captured_constant(target, n):
    c = np.arange(float(n))
    g = td.jit(td.grad(lambda x: np.sum(x * c)), target=target)(np.ones(n))
    assert g is not c and not np.shares_memory(g, c)
    g *= 10  # writing into the result changes neither the constant nor later results
    np.testing.assert_array_equal(c, np.arange(float(n)))
    np.testing.assert_array_equal(td.jit(td.grad(lambda x: np.sum(x * c)), target=target)(np.ones(n)), c)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(
    "fn",
    [
        lambda x: x,
        lambda x: x.T,
        lambda x: x.reshape(-1),
        lambda x: x[1:, ::2],
        lambda x: np.broadcast_to(x, (2, 3, 4)),
        lambda x: td.stop_gradient(x),
        lambda x: (x, x),
        lambda x: (x * 2, x * 2),  # one value after CSE: two results all the same
    ],
    ids=["identity", "T", "reshape", "slice", "broadcast", "stop_gradient", "twice", "cse"],
)
def test_results_never_share_memory(target, fn):
    x = np.arange(12.0).reshape(3, 4)
    keep = x.copy()
    outs = td.jit(fn, target=target)(x)
    outs = outs if isinstance(outs, tuple) else (outs,)
    for i, o in enumerate(outs):
        assert not np.shares_memory(o, x)
        for p in outs[i + 1 :]:
            assert not np.shares_memory(o, p)
        o[...] = -1
    np.testing.assert_array_equal(x, keep)


@pytest.mark.parametrize("target", TARGETS)
def test_constant_results_are_fresh_each_call(target):
    f = td.jit(lambda x: (x * 2, np.arange(70.0)), target=target)
    _, k = f(np.ones(2))
    k[:] = 0
    np.testing.assert_array_equal(f(np.ones(2))[1], np.arange(70.0))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("n", [3, 1000])
def test_constants_are_captured_by_value_at_trace_time(target, n):
    c = np.ones(n)
    f = td.jit(lambda x: x * c, target=target)
    np.testing.assert_array_equal(f(np.ones(n)), np.ones(n))
    c[:] = 5.0  # a later change to the captured array is not seen, whatever its size
    np.testing.assert_array_equal(f(np.ones(n)), np.ones(n))


# --- 2. argnums as any sequence of ints -------------------------------------------------


def test_argnums_as_list():
    def f(x, y, z):
        return np.sum(x * y * z)

    a, b, c = np.full(2, 2.0), np.full(2, 3.0), np.full(2, 5.0)
    ga, gc = td.grad(f, argnums=[0, 2])(a, b, c)
    np.testing.assert_allclose(ga, b * c)
    np.testing.assert_allclose(gc, a * b)
    (v, (ga2, gb2)) = td.value_and_grad(f, argnums=[0, 1])(a, b, c)
    np.testing.assert_allclose(gb2, a * c)
    ja, jb = td.jacobian(lambda x, y: x * y, argnums=[0, 1])(a, b)
    np.testing.assert_allclose(ja, np.diag(b))
    jf = td.jacfwd(lambda x, y: x * y, argnums=[np.int64(1)])(a, b)
    np.testing.assert_allclose(jf[0], np.diag(a))
    h = td.hessian(lambda x, y: np.sum(x * x * y), argnums=[0])(a, b)
    np.testing.assert_allclose(h[0][0], np.diag(2 * b))
    g = td.jit(lambda x, k: x * k, static_argnums=[1])(a, 3)
    np.testing.assert_allclose(g, 3 * a)
    with pytest.raises(TypeError, match="argnums must be an int or a sequence of ints"):
        td.grad(f, argnums=[0, "y"])


# --- 3. algebraic rewrites are exact under IEEE rules ------------------------------------


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(
    "fn",
    [
        lambda x: x + 0.0,
        lambda x: 0.0 + x,
        lambda x: x + -0.0,
        lambda x: x - 0.0,
        lambda x: x - -0.0,
        lambda x: x * 1.0,
        lambda x: x / 1.0,
        lambda x: x**1.0,
        lambda x: x**2,
        lambda x: x**0.5,
        lambda x: np.power(x, 0.5),
        lambda x: x**-1,
        lambda x: np.negative(-x),
    ],
)
def test_rewrites_keep_signed_zeros_nan_and_inf(target, fn):
    x = np.array([-0.0, 0.0, -np.inf, np.inf, np.nan, -2.5, 3.0, 1e-310])
    with np.errstate(all="ignore"):
        ref = fn(x)
        got = td.jit(fn, target=target)(x)
    assert same_bits(got, ref), (got, ref)


def test_rewrites_with_optimizer_off():
    from tracediff.interpret import Interpreter
    from tracediff.passes.pipeline import optimize

    x = np.array([-0.0, -np.inf, 4.0])
    for fn in (lambda x: x + 0.0, lambda x: x**0.5):
        ir = optimize(td.make_ir(fn, x), enabled=False)
        with np.errstate(all="ignore"):
            assert same_bits(Interpreter(ir)(x)[0], fn(x))


# --- 4. integer semantics and boolean scalar indices ---------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_integer_negative_power_raises(target):
    x = np.arange(1, 4)
    with pytest.raises(ValueError, match="negative integer powers"):
        td.jit(lambda x: x**-1, target=target)(x)
    f = td.jit(lambda x, y: x**y, target=target)
    np.testing.assert_array_equal(f(x, np.array([3, 2, 1])), x ** np.array([3, 2, 1]))
    with pytest.raises(ValueError, match="negative integer powers"):
        f(x, np.array([1, -1, 2]))  # a traced exponent: checked when it runs


def test_integer_negative_power_raises_in_a_parallel_loop():
    big = np.arange(2_000_000) % 7
    f = td.jit(lambda x, y: x**y)
    np.testing.assert_array_equal(f(big, np.full_like(big, 2)), big**2)
    with pytest.raises(ValueError, match="negative integer powers"):
        f(big, np.full_like(big, -1))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("decimals", [0, 2, -1, -2])
@pytest.mark.parametrize("dt", [np.int64, np.int32, np.uint8, np.float32, np.float64])
def test_round_keeps_numpy_dtypes(target, decimals, dt):
    x = np.array([15, 25, 35, 149, 150, 251, 99], dt)
    if dt in (np.float32, np.float64):
        x = x / np.asarray(7, dt)
    ref = np.round(x, decimals)
    got = td.jit(lambda x: np.round(x, decimals), target=target)(x)
    assert same_bits(got, ref), (got, ref)
    assert same_bits(td.jit(lambda x: x.round(decimals), target=target)(x), ref)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize(
    "idx",
    [np.True_, True, False, np.False_, np.array(True), (slice(None), True), (Ellipsis, False), (None, False)],
    ids=repr,
)
def test_boolean_scalar_index(target, idx):
    x = np.arange(24.0).reshape(2, 3, 4)
    ref = x[idx]
    got = td.jit(lambda a: a[idx], target=target)(x)
    assert same_bits(got, ref)


def test_boolean_scalar_index_with_integers_is_a_clear_error():
    with pytest.raises(NotImplementedError, match="boolean scalar index"):
        td.jit(lambda a: a[True, 0], target="interpret")(np.ones((2, 3)))


# --- 5. integer matmul, argmax of empty axes ----------------------------------------------------


@pytest.mark.parametrize("dt", [np.int64, np.int32, np.int8, np.uint8, bool])
@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((2, 3, 4), (2, 4, 5)), ((4,), (4,)), ((3, 4), (4,))])
def test_integer_and_bool_matmul_under_jit(dt, shapes):
    r = np.random.default_rng(0)
    a, b = (r.integers(-100, 100, s).astype(dt) for s in shapes)
    ref = a @ b
    assert same_bits(td.jit(lambda a, b: a @ b)(a, b), ref)
    assert same_bits(td.jit(lambda a, b: np.dot(a, b), target="interpret")(a, b), np.dot(a, b))


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("fn", [np.argmax, np.argmin])
def test_argmax_of_an_empty_axis_raises(target, fn):
    with pytest.raises(ValueError, match="empty sequence"):
        td.jit(lambda x: fn(x, axis=1), target=target)(np.ones((3, 0)))
    with pytest.raises(ValueError, match="empty sequence"):
        td.jit(lambda x: fn(x), target=target)(np.ones((0,)))
    np.testing.assert_array_equal(
        td.jit(lambda x: fn(x, axis=0), target=target)(np.ones((3, 0))), fn(np.ones((3, 0)), 0)
    )


# --- 6. jacfwd's aux, weak results of any shape ---------------------------------------------------


def test_jacfwd_has_aux_returns_the_value():
    jac, aux = td.jacfwd(lambda x: (x * 2, np.sum(x)), has_aux=True)(np.ones(2))
    np.testing.assert_allclose(jac, 2 * np.eye(2))
    assert type(aux) is np.float64 and aux == 2.0
    out, t, aux = td.jvp(lambda x: (np.sin(x), {"n": np.sum(x)}), (np.zeros(2),), (np.ones(2),), has_aux=True)
    np.testing.assert_allclose(t, np.ones(2))
    assert aux["n"] == 0.0


@pytest.mark.parametrize("target", TARGETS)
def test_python_float_reshaped(target):
    out = td.jit(lambda s: np.reshape(s, (1,)), target=target)(2.0)
    assert type(out) is np.ndarray and out.dtype == np.float64 and out.tolist() == [2.0]
    assert type(td.jit(lambda s: s * 2, target=target)(2.0)) is float


# --- 7. one fast path per signature -----------------------------------------------------------


def test_alternating_signatures_keep_their_fast_paths(monkeypatch):
    made = []
    orig = staging.make_fast_path

    def counting(entry, args):
        made.append(1)
        return orig(entry, args)

    monkeypatch.setattr(staging, "make_fast_path", counting)
    f = td.jit(lambda x: x * 2.0, target="interpret")
    a, b = np.ones(3), np.ones(4, np.float32)
    for _ in range(50):
        f(a)
        f(b)
    assert len(made) == 2, "a fast path is made once per signature, not on every switch"
    assert f(a).shape == (3,) and f(b).dtype == np.float32


# --- 8. arguments are never silently ignored ----------------------------------------------------


def test_unknown_jit_option_raises():
    with pytest.raises(TypeError, match="unknown option 'paralel'.*did you mean 'parallel'"):
        td.jit(lambda x: x, paralel=True)
    with pytest.raises(ValueError, match="math must be"):
        td.jit(lambda x: x, math="fastest")


def test_static_argnums_out_of_range_raises():
    with pytest.raises(ValueError, match="static_argnums 3 is out of range"):
        td.jit(lambda x: x, static_argnums=3)(np.ones(2))


OUT = np.zeros(())


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: x.sum(out=OUT),
        lambda x: np.sum(x, out=OUT),
        lambda x: np.mean(x, out=OUT),
        lambda x: x.max(out=OUT),
        lambda x: np.argmax(x, out=OUT),
        lambda x: np.var(x, out=OUT),
        lambda x: x.std(out=OUT),
        lambda x: np.cumsum(x, out=np.zeros(4)),
        lambda x: np.clip(x, 0, 1, out=np.zeros(4)),
        lambda x: np.dot(x, x, out=OUT),
        lambda x: np.matmul(x, x, out=OUT),
        lambda x: np.exp(x, out=np.zeros(4)),
        lambda x: np.add.reduce(x, out=OUT),
        lambda x: np.round(x, out=np.zeros(4)),
        lambda x: np.concatenate([x, x], out=np.zeros(8)),
        lambda x: np.take(x, [0, 1], out=np.zeros(2)),
    ],
)
def test_out_argument_raises(fn):
    with pytest.raises(td.TracerError, match="out=.*existing array") as e:
        td.jit(fn, target="interpret")(np.ones(4))
    assert "test_trust.py" in str(e.value)


@pytest.mark.parametrize(
    "fn, match",
    [
        (lambda x: np.add(x, 1, casting="unsafe"), "casting='unsafe'"),
        (lambda x: np.sort(x, order="f"), "order="),
        (lambda x: np.quantile(x, 0.5, weights=x), "weights="),
        (lambda x: np.concatenate([x, x], casting="no"), "casting"),
        (lambda x: np.einsum("i->", x, out=OUT), "out="),
        (lambda x: np.clip(x, 0, 1, where=x > 0), "where"),
        (lambda x: x.reshape(2, 2, order="F"), "order='F'"),
        (lambda x: x.ravel(order="F"), "order='F'"),
    ],
)
def test_unsupported_keywords_raise(fn, match):
    with pytest.raises((NotImplementedError, td.TracerError), match=match):
        td.jit(fn, target="interpret")(np.ones(4))


@pytest.mark.parametrize("target", TARGETS)
def test_var_with_a_precomputed_mean(target):
    x = np.random.default_rng(1).standard_normal((3, 4))
    m = x.mean(axis=1, keepdims=True)
    for fn in (
        lambda x, m: np.var(x, axis=1, mean=m),
        lambda x, m: np.std(x, axis=1, mean=m, ddof=1),
        lambda x, m: x.var(axis=1, mean=m, keepdims=True),
    ):
        np.testing.assert_allclose(td.jit(fn, target=target)(x, m), fn(x, m), rtol=1e-12)
    with pytest.raises(ValueError, match="mean= must have the shape"):
        td.jit(lambda x: np.var(x, axis=1, mean=np.ones(3)), target=target)(x)


@pytest.mark.parametrize("mode", ["wrap", "clip", "raise"])
def test_take_modes(mode):
    x = np.arange(5.0)
    idx = np.array([-7, 0, 4, 9]) if mode != "raise" else np.array([-5, 0, 4])
    ref = np.take(x, idx, mode=mode)
    np.testing.assert_array_equal(td.jit(lambda x: np.take(x, idx, mode=mode))(x), ref)
    np.testing.assert_array_equal(td.jit(lambda x, i: x.take(i, mode=mode), target="interpret")(x, idx), ref)


# --- 9. the disk cache key, the corrupt-entry fallback ------------------------------------------


def test_cache_key_covers_the_helpers_generated_code_imports(tmp_path, monkeypatch):
    helper = tmp_path / "tracediff_helper_for_test.py"
    helper.write_text("def f(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    src = "from tracediff_helper_for_test import f\n\ndef kernel(a):\n    return f(a)\n"
    k1 = cache.module_key(src)
    helper.write_text("def f(x):\n    return x + 1\n")
    cache._runtime_digest.cache_clear()
    assert cache.module_key(src) != k1, "editing a helper must not reuse code compiled against it"
    assert cache.module_key(src.replace("f(a)", "f(a) ")) != cache.module_key(src)


def test_real_header_helpers_are_in_the_key():
    from tracediff.backend.cpu import HEADER

    imports = cache._IMPORT_RE.findall("\n".join(HEADER))
    assert ("tracediff.backend", "vmath", "") in imports
    assert ("tracediff.backend.memory", "advise_huge_pages", "") in imports


def test_fresh_module_is_not_the_imported_one():
    src = "def kernel(a):\n    return a\n"
    a = cache.load_module(src, use_disk=False)
    assert cache.load_module(src, use_disk=False) is a
    b = cache.load_module(src, fresh=True)
    assert b is not a and b.__name__ != a.__name__ and b.kernel(3) == 3


# --- 10. trace state is per thread ----------------------------------------------------------------


def test_two_threads_tracing_at_once_keep_their_equations():
    barrier = threading.Barrier(2, timeout=30)

    def f(x):
        y = np.sin(x) * 2.0
        barrier.wait()  # both traces are now half done
        z = y + np.ones(3)  # constants staged while the other thread traces too
        barrier.wait()
        return np.sum(z * z)

    def g(x):
        y = np.cos(x) - 1.0
        barrier.wait()
        z = y * np.full(3, 3.0)
        barrier.wait()
        return np.sum(np.exp(z))

    x = np.linspace(0.0, 1.0, 3)
    results, errors = {}, []

    def run(name, fn):
        try:
            results[name] = td.jit(td.grad(fn), target="interpret")(x)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n, fn)) for n, fn in (("f", f), ("g", g))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    np.testing.assert_allclose(results["f"], 2 * (2 * np.sin(x) + 1) * 2 * np.cos(x))
    np.testing.assert_allclose(results["g"], np.exp(3 * (np.cos(x) - 1)) * 3 * -np.sin(x))


def test_a_tracer_of_another_thread_is_a_clear_error():
    leaked, errors = [], []

    def f(x):
        leaked.append(x)
        go.set()
        done.wait(30)
        return x

    go, done = threading.Event(), threading.Event()
    t = threading.Thread(target=lambda: td.jit(f, target="interpret")(np.ones(2)))
    t.start()
    go.wait(30)
    try:
        td.jit(lambda y: y + leaked[0], target="interpret")(np.ones(2))
    except td.TracerError as e:
        errors.append(e)
    finally:
        done.set()
        t.join()
    assert errors and "another thread" in str(errors[0])


# --- 11. vjp with integer primals, cotangent checks, one result type ------------------------------


def _gathered(w, idx):
    return np.sum(w[idx] ** 2)


def test_vjp_with_an_integer_primal_inside_grad():
    def outer(w, idx):
        _, fn = td.vjp(_gathered, w, idx)
        gw, gidx = fn(1.0)
        assert gidx.dtype == idx.dtype
        return np.sum(gw * w)

    w, idx = np.array([1.0, 2.0, 3.0]), np.array([0, 2])
    np.testing.assert_allclose(td.grad(outer)(w, idx), [4.0, 0.0, 12.0])
    td.check_grads(_gathered, (w, idx), order=2)


def test_vjp_fn_checks_the_cotangent_dtype():
    _, fn = td.vjp(lambda x: x * 2, np.ones(2))
    with pytest.raises(TypeError, match="cotangent of an output f64\\[2\\] must be a float"):
        fn(np.ones(2, int))
    np.testing.assert_allclose(fn(np.ones(2, np.float32))[0], [2.0, 2.0])


@pytest.mark.parametrize("target", TARGETS)
def test_gradient_of_a_python_float_is_a_python_float(target):
    def f(x):
        return x * x

    assert type(td.grad(f)(1.5)) is float
    assert type(td.jit(td.grad(f), target=target)(1.5)) is float
    assert type(td.jit(td.grad(f), target=target)(np.float64(1.5))) is np.float64
    v, g = td.jit(td.value_and_grad(f), target=target)(1.5)
    assert type(v) is float and type(g) is float and g == 3.0
    # weak inside a trace too: the gradient does not promote a float32 array
    h = td.jit(lambda x, a: td.grad(f)(x) * a, target=target)(1.5, np.ones(2, np.float32))
    assert h.dtype == np.float32


# --- 12. random draws while tracing ------------------------------------------------------------


_RNG = np.random.default_rng(0)


class _Dropout:
    def __init__(self):
        self.rng = np.random.default_rng(1)

    def loss(self, w):
        return np.sum(w * (self.rng.random(w.shape) < 0.5))


def _noise(shape):
    return _RNG.normal(size=shape)


@pytest.mark.parametrize(
    "make",
    [
        lambda: td.grad(lambda w: np.sum(w * np.random.rand(3))),
        lambda: td.jit(td.grad(lambda w: np.sum(w * (np.random.random(3) < 0.5)))),
        lambda: td.grad(lambda w: np.sum(w * _RNG.normal(size=3))),
        lambda: td.grad(lambda w: np.sum(w * _noise(3))),  # through a helper function
        lambda: td.grad(_Dropout().loss),  # a generator held by the object of a method
        lambda: td.jit(lambda w: w * random.random(), target="interpret"),
    ],
    ids=["np.random", "jit-grad", "global Generator", "helper", "method", "python random"],
)
def test_random_draws_while_tracing_raise(make):
    with pytest.raises(td.TracerError, match="drew random numbers.*pass them in as arguments") as e:
        make()(np.ones(3))
    assert "test_trust.py" in str(e.value)


def test_random_generator_as_a_static_argument_raises():
    f = td.jit(lambda w, g: w * g.normal(size=3), static_argnums=1, target="interpret")
    with pytest.raises(td.TracerError, match="Generator"):
        f(np.ones(3), np.random.default_rng(0))


def test_random_arrays_passed_in_are_fine():
    rng = np.random.default_rng(0)
    step = td.jit(td.grad(lambda w, mask: np.sum(w * mask)))
    for _ in range(3):
        mask = (rng.random(3) < 0.5).astype(float)
        np.testing.assert_array_equal(step(np.ones(3), mask), mask)
    # a generator created and seeded inside is deterministic: nothing is frozen wrongly
    f = td.jit(lambda w: w * np.random.default_rng(0).normal(size=3), target="interpret")
    np.testing.assert_array_equal(f(np.ones(3)), np.random.default_rng(0).normal(size=3))


def test_another_threads_draws_from_random_are_not_the_traced_functions():
    """Dask's workers draw from Python's `random` in one thread while tasks trace in
    others: tracing is not blamed for them, and a draw of its own still raises."""
    stop = threading.Event()

    def draw():
        while not stop.is_set():
            random.random()
            stop.wait(0.0002)

    t = threading.Thread(target=draw, daemon=True)
    t.start()
    try:
        for n in range(1, 40):
            td.grad(lambda x: np.sum(np.tanh(x) ** 2))(np.ones(n))
        for own in (
            lambda w: np.sum(w * random.random()),
            lambda w: np.sum(w * random.uniform(1, 2)),
            lambda w: np.sum(w * random.gauss(0, 1)),  # (keeps a second value between calls)
            lambda w: np.sum(w * random.choice([1.0, 2.0])),
            lambda w: np.sum(w) + (random.seed(3) or 0.0),  # (moves the state once only)
        ):
            with pytest.raises(td.TracerError, match="Python's random module"):
                td.grad(own)(np.ones(3))
    finally:
        stop.set()
        t.join()


# --- 13. complex inputs are rejected everywhere -------------------------------------------------


Z = np.ones(2, complex)


@pytest.mark.parametrize(
    "call,match",
    [
        # complex values are traced (JAX's conventions); what has no meaning for
        # them raises, naming the reason: a complex scalar to grad, a Jacobian of a
        # function not declared holomorphic, an ordering
        (lambda: td.grad(lambda x: np.sum(x))(Z), "holomorphic=True"),
        (lambda: td.value_and_grad(lambda x: np.sum(x))(Z), "holomorphic=True"),
        (lambda: td.jacobian(lambda x: x * 2)(Z), "holomorphic=True"),
        (lambda: td.jacfwd(lambda x: x * 2)(Z), "holomorphic=True"),
        (lambda: td.hessian(lambda x: np.sum(x))(Z), "holomorphic=True"),
        (lambda: td.jit(lambda x: np.sort(x))(Z), "complex"),
    ],
)
def test_complex_misuse_raises(call, match):
    with pytest.raises(TypeError, match=match):
        call()


def test_complex_values_are_traced():
    w = np.array([1.0 + 2.0j, -0.5j])
    assert np.allclose(td.jit(lambda x, c: x * c)(np.ones(2), 1j), 1j * np.ones(2))
    assert np.allclose(td.jit(lambda x: x * 2, target="interpret")(w), 2 * w)
    assert np.allclose(td.vjp(lambda x: x * 2, w)[1](np.ones(2, complex))[0], 2)
    assert np.allclose(td.jvp(lambda x: x * 2, (w,), (w,))[1], 2 * w)
    assert np.allclose(td.grad(lambda x: np.sum(x * x), holomorphic=True)(w), 2 * w)
    # a real loss of a complex made inside: JAX's convention, conj of the ascent direction
    g = td.grad(lambda x: np.sum(np.abs(x * np.array([1j, 2j])) ** 2))(np.ones(2))
    assert np.allclose(g, [2.0, 8.0])
    td.check_grads(lambda x: np.sum(np.abs(x) ** 2), (w,))
    assert td.make_ir(lambda x: x, {"a": w}).invars[0].aval.dtype == np.complex128


def test_complex_cotangents_and_tangents_of_real_values_raise():
    with pytest.raises(TypeError, match="float scalar"):
        td.grad(lambda x: np.sum(x * np.array([1j, 2j])))(np.ones(2))
    _, fn = td.vjp(lambda x: x * 2, np.ones(2))
    with pytest.raises(TypeError, match="cotangent"):
        fn(Z)
    with pytest.raises(TypeError, match="tangent"):
        td.jvp(lambda x: x * 2, (np.ones(2),), (Z,))


# --- 14. exceptions keep their type and arguments ------------------------------------------------


class TwoArgError(Exception):
    def __init__(self, a, b):
        super().__init__(a, b)
        self.a, self.b = a, b


def test_exceptions_with_other_constructors_are_not_rebuilt(monkeypatch):
    from tracediff.prims import elementwise as ew

    def boom(x):
        raise TwoArgError(1, 2)

    monkeypatch.setattr(ew.sin_p, "impl", boom)
    with pytest.raises(TwoArgError) as e:
        td.jit(lambda x: np.sin(x) + 1.0, target="interpret")(np.ones(2))
    assert e.value.args == (1, 2) and (e.value.a, e.value.b) == (1, 2)
    notes = getattr(e.value, "__notes__", [])
    assert not notes or any("sin" in n and "test_trust.py" in n for n in notes)


def test_with_context():
    from numpy._core._exceptions import _UFuncNoLoopError

    new = with_context(ValueError("bad"), "op: bad (at f.py:1)")
    assert (
        type(new) is ValueError
        and str(new) == "op: bad (at f.py:1)"
        and isinstance(new.__cause__, ValueError)
    )
    e = _UFuncNoLoopError(np.add, (np.dtype("U1"), np.dtype("U1")))
    assert with_context(e, "add: (at f.py:1)") is e  # its constructor takes a ufunc and dtypes
    user = TwoArgError(3, 4)
    assert with_context(user, "where") is user and user.args == (3, 4)


def test_user_exceptions_pass_through_unchanged():
    def f(x):
        raise TwoArgError("a", "b")

    for t in (td.grad(f), td.jit(f), td.jit(td.grad(f), target="interpret")):
        with pytest.raises(TwoArgError) as e:
            t(np.ones(2))
        assert e.value.args == ("a", "b")
